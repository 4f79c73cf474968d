// The `dnd` command line as a function: builds the CLI11 app with every subcommand, parses, runs
// the chosen command and returns the exit code of exit_codes.h (CLI11's parse errors become 64).
// main() calls it; tests call it in-process with argument vectors.
#ifndef DND_TOOLS_DND_APP_H_
#define DND_TOOLS_DND_APP_H_

#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace dnd::tools {

// Runs `dnd` with argv[0..argc). `register_more` may add subcommands the library does not link
// (the demo, which needs the coordinator and the experts). Output goes to std::cout / std::cerr.
// Not thread-safe (one command at a time per process).
int RunDnd(int argc, const char* const* argv,
           const std::function<void(CLI::App&)>& register_more = {});

// The same with the arguments after the program name, e.g. {"submit", "--expert", "a:b"}.
int RunDnd(const std::vector<std::string>& args,
           const std::function<void(CLI::App&)>& register_more = {});

}  // namespace dnd::tools

#endif  // DND_TOOLS_DND_APP_H_
