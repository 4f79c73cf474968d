// `dnd status [JOB]`: one job's state, or a table of every job the coordinator knows. Exits 0
// whatever the jobs' states (a script reads the state from --json); NotFound (64) for an unknown
// job.
#include <chrono>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "tools/command_support.h"
#include "tools/commands.h"
#include "tools/json_output.h"
#include "tools/progress_bar.h"

namespace dnd::tools {
namespace {

struct StatusFlags {
  std::string job_id;
  bool json = false;
};

int64_t NowUnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Age(int64_t unix_millis, int64_t now_millis) {
  if (unix_millis <= 0) return "-";
  return FormatDuration((now_millis - unix_millis) / 1000.0) + " ago";
}

void RunStatus(const StatusFlags& flags, const ConnectionFlags& connection_flags) {
  auto connection = ConnectToCoordinator(connection_flags);
  if (!connection.ok()) ExitWithStatus("status", connection.status());
  auto jobs = connection->client->GetStatus(flags.job_id);
  if (!jobs.ok()) ExitWithStatus("status", jobs.status());
  if (flags.json) {
    if (!flags.job_id.empty() && jobs->size() == 1) {
      std::cout << JobStatusJson(jobs->front()).dump(2) << "\n";
    } else {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& job : *jobs) all.push_back(JobStatusJson(job));
      std::cout << all.dump(2) << "\n";
    }
    return;
  }
  if (jobs->empty()) {
    std::cout << "no jobs\n";
    return;
  }
  const int64_t now = NowUnixMillis();
  std::vector<std::vector<std::string>> rows = {
      {"JOB", "STATE", "STEP", "ETA", "SUBMITTED", "REASON"}};
  for (const protocol::JobStatus& job : *jobs) {
    std::optional<double> eta;
    if (job.eta_millis >= 0) eta = job.eta_millis / 1000.0;
    rows.push_back({job.job_id, protocol::JobStateName(job.state),
                    std::to_string(job.step) + "/" + std::to_string(job.total_steps),
                    job.state == protocol::JobState::kRunning ? FormatDuration(eta) : "-",
                    Age(job.submitted_unix_millis, now), job.reason});
  }
  std::cout << FormatTable(rows);
}

}  // namespace

void RegisterStatusCommand(CLI::App& app, const ConnectionFlags& connection) {
  auto flags = std::make_shared<StatusFlags>();
  CLI::App* cmd = app.add_subcommand("status", "Show one job's state, or every job's");
  cmd->add_option("job", flags->job_id, "the job id (e.g. j-000001); omit for every job");
  cmd->add_flag("--json", flags->json, "print JSON (an object for JOB, else an array)");
  cmd->callback([flags, &connection] { RunStatus(*flags, connection); });
}

}  // namespace dnd::tools
