// `dnd result JOB --out DIR`: fetches a finished job's files (image.png, allocation.png,
// allocation_steps.png, record.json) into DIR and prints their paths; never overwrites without
// --force. A failed or cancelled job's leftovers (its record) are written too, and the exit code is
// 1 with the reason; 64 while the job is queued or running.
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "tools/command_support.h"
#include "tools/commands.h"
#include "tools/exit_codes.h"
#include "tools/json_output.h"

namespace dnd::tools {
namespace {

struct ResultFlags {
  std::string job_id;
  std::string out_dir;
  bool force = false;
  bool json = false;
};

void RunResult(const ResultFlags& flags, const ConnectionFlags& connection_flags) {
  auto connection = ConnectToCoordinator(connection_flags);
  if (!connection.ok()) ExitWithStatus("result", connection.status());
  CoordinatorClient& client = *connection->client;
  auto jobs = client.GetStatus(flags.job_id);
  if (!jobs.ok()) ExitWithStatus("result", jobs.status());
  if (jobs->empty()) ExitWith("result", kExitUsage, "unknown job " + flags.job_id);
  const protocol::JobStatus job = jobs->front();
  if (!IsTerminal(job.state)) {
    ExitWith("result", kExitUsage,
             "job " + flags.job_id + " is still " + protocol::JobStateName(job.state) + " (step " +
                 std::to_string(job.step) + "/" + std::to_string(job.total_steps) +
                 "); wait for it with `dnd watch " + flags.job_id + "`");
  }
  const std::filesystem::path dir =
      flags.out_dir.empty() ? DefaultResultDir(flags.job_id) : std::filesystem::path(flags.out_dir);
  // A failed or cancelled job may still have its record (and the steps it made): write what there
  // is, then exit 1 with the reason.
  auto paths = FetchResultsInto(client, flags.job_id, dir, flags.force);
  if (!paths.ok() && job.state == protocol::JobState::kSucceeded) {
    ExitWithStatus("result", paths.status());
  }
  if (paths.ok()) {
    if (flags.json) {
      std::cout << ResultPathsJson(flags.job_id, job.state, *paths).dump() << "\n";
    } else {
      for (const auto& path : *paths) std::cout << path.string() << "\n";
    }
  }
  if (job.state != protocol::JobState::kSucceeded) {
    const std::string what =
        job.state == protocol::JobState::kFailed ? " failed" : " was cancelled";
    const std::string why = job.reason.empty() ? "" : ": " + job.reason;
    const std::string wrote =
        paths.ok() ? "; wrote what it left (see above)" : "; it has no results";
    ExitWith("result", kExitJobFailed, "job " + flags.job_id + what + why + wrote);
  }
}

}  // namespace

void RegisterResultCommand(CLI::App& app, const ConnectionFlags& connection) {
  auto flags = std::make_shared<ResultFlags>();
  CLI::App* cmd = app.add_subcommand("result",
                                     "Fetch a finished job's image, allocation "
                                     "overlay, allocation strip and JSON record");
  cmd->add_option("job", flags->job_id, "the job id (e.g. j-000001)")->required();
  cmd->add_option("--out", flags->out_dir, "directory to write into (default ./dnd-results/JOB)");
  cmd->add_flag("--force", flags->force, "overwrite files that already exist");
  cmd->add_flag("--json", flags->json, "print {job_id, state, files} as JSON");
  cmd->callback([flags, &connection] { RunResult(*flags, connection); });
}

}  // namespace dnd::tools
