// The `dnd` command line. The subcommands live in their own files and are wired in RunDnd
// (dnd_app.cc); the demo, which links the coordinator and the experts, is added here. main() does
// nothing else.
#include <CLI/CLI.hpp>

#include "protocol/startup.h"
#include "tools/bench/bench_command.h"
#include "tools/demo_command.h"
#include "tools/dnd_app.h"
#include "tools/train_command.h"
#include "worker/experts/torch_runtime.h"

int main(int argc, char** argv) {
  dnd::InitProcess({.set_compute_threads = dnd::experts::SetTorchThreads});
  return dnd::tools::RunDnd(argc, argv, [](CLI::App& app) {
    dnd::tools::RegisterDemoCommand(app);
    dnd::tools::RegisterTrainCommand(app);
    dnd::bench::RegisterBenchCommand(app);
  });
}
