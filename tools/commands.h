// The `dnd` subcommands that talk to a coordinator, one file each (submit_command.cc, ...). Each
// Register function adds its subcommand to the top-level app; `connection` holds the shared
// connection flags (connection_flags.h) and must outlive parsing. A failing command ends through
// ExitWith (command_support.h) with an exit code of exit_codes.h.
#ifndef DND_TOOLS_COMMANDS_H_
#define DND_TOOLS_COMMANDS_H_

#include "tools/connection_flags.h"

namespace CLI {
class App;
}  // namespace CLI

namespace dnd::tools {

// dnd submit --expert E:C ... [job flags] [--wait [--timeout S] [--out DIR] [--force]] [--json]
void RegisterSubmitCommand(CLI::App& app, const ConnectionFlags& connection);
// dnd status [JOB] [--json]
void RegisterStatusCommand(CLI::App& app, const ConnectionFlags& connection);
// dnd watch JOB [--json] [--timeout S]
void RegisterWatchCommand(CLI::App& app, const ConnectionFlags& connection);
// dnd cancel JOB [--json]
void RegisterCancelCommand(CLI::App& app, const ConnectionFlags& connection);
// dnd experts [--json]
void RegisterExpertsCommand(CLI::App& app, const ConnectionFlags& connection);
// dnd result JOB [--out DIR] [--force] [--json]
void RegisterResultCommand(CLI::App& app, const ConnectionFlags& connection);

}  // namespace dnd::tools

#endif  // DND_TOOLS_COMMANDS_H_
