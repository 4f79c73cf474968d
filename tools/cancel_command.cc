// `dnd cancel JOB`: asks the coordinator to cancel a job (it stops within one step). Exit 0 when
// the job is cancelled (now or before); 64 when it had already succeeded or failed, or is unknown.
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "tools/command_support.h"
#include "tools/commands.h"
#include "tools/exit_codes.h"
#include "tools/json_output.h"

namespace dnd::tools {
namespace {

struct CancelFlags {
  std::string job_id;
  bool json = false;
};

void RunCancel(const CancelFlags& flags, const ConnectionFlags& connection_flags) {
  auto connection = ConnectToCoordinator(connection_flags);
  if (!connection.ok()) ExitWithStatus("cancel", connection.status());
  auto reply = connection->client->Cancel(flags.job_id);
  if (!reply.ok()) ExitWithStatus("cancel", reply.status());
  const bool cancelled = reply->accepted || reply->state == protocol::JobState::kCancelled;
  if (flags.json) {
    std::cout << nlohmann::json{{"job_id", flags.job_id},
                                {"accepted", reply->accepted},
                                {"state", protocol::JobStateName(reply->state)}}
                     .dump()
              << "\n";
  }
  if (!cancelled) {
    ExitWith("cancel", kExitUsage,
             "job " + flags.job_id + " had already " + protocol::JobStateName(reply->state) +
                 "; nothing to cancel");
  }
  if (!flags.json) {
    std::cout << (reply->accepted ? "cancelling " : "already cancelled: ") << flags.job_id << "\n";
  }
}

}  // namespace

void RegisterCancelCommand(CLI::App& app, const ConnectionFlags& connection) {
  auto flags = std::make_shared<CancelFlags>();
  CLI::App* cmd = app.add_subcommand("cancel", "Cancel a queued or running job");
  cmd->add_option("job", flags->job_id, "the job id (e.g. j-000001)")->required();
  cmd->add_flag("--json", flags->json, "print {job_id, accepted, state} as JSON");
  cmd->callback([flags, &connection] { RunCancel(*flags, connection); });
}

}  // namespace dnd::tools
