// The `dnd` command line. Each subcommand lives in its own file and registers itself here with one
// line; main() does nothing else.
#include <CLI/CLI.hpp>

#include "protocol/startup.h"
#include "tools/keygen_command.h"

int main(int argc, char** argv) {
  dnd::InitProcess();
  CLI::App app{"dnd: fair composition of private diffusion experts (Divide-and-Denoise)", "dnd"};
  app.require_subcommand(1);
  dnd::tools::RegisterKeygenCommand(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
