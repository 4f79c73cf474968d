// The `dnd` app (dnd_app.h): flags, subcommands, and the map from outcomes to exit codes.
#include "tools/dnd_app.h"

#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "tools/commands.h"
#include "tools/connection_flags.h"
#include "tools/exit_codes.h"
#include "tools/keygen_command.h"

namespace dnd::tools {

int RunDnd(int argc, const char* const* argv, const std::function<void(CLI::App&)>& register_more) {
  CLI::App app{
      "dnd: fair composition of private diffusion experts (Divide-and-Denoise).\n"
      "Connection flags and the config file are shared by every subcommand; "
      "`dnd SUBCOMMAND --help` shows a subcommand's own flags.",
      "dnd"};
  app.require_subcommand(1);
  app.footer(kExitCodesHelp);
  ConnectionFlags connection;
  AddConnectionFlags(app, connection);
  RegisterSubmitCommand(app, connection);
  RegisterStatusCommand(app, connection);
  RegisterWatchCommand(app, connection);
  RegisterCancelCommand(app, connection);
  RegisterExpertsCommand(app, connection);
  RegisterResultCommand(app, connection);
  RegisterKeygenCommand(app);
  if (register_more) register_more(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0, a command's own failure carries its code (RuntimeError); every
    // other parse error is bad usage.
    const int code = app.exit(e);
    if (e.get_exit_code() == 0 || e.get_name() == "RuntimeError") return code;
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "dnd: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return kExitOk;
}

int RunDnd(const std::vector<std::string>& args,
           const std::function<void(CLI::App&)>& register_more) {
  std::vector<const char*> argv = {"dnd"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return RunDnd(static_cast<int>(argv.size()), argv.data(), register_more);
}

}  // namespace dnd::tools
