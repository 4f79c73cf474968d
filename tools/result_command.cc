// `dnd result JOB --out DIR`: fetches a finished job's files (image.png, allocation.png,
// allocation_steps.png, record.json) into DIR and prints their paths; never overwrites without
// --force. Exit 1 when the job failed or was cancelled (it has no results), 64 while it runs.
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "tools/command_support.h"
#include "tools/commands.h"
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
  const std::filesystem::path dir =
      flags.out_dir.empty() ? DefaultResultDir(flags.job_id) : std::filesystem::path(flags.out_dir);
  auto paths = FetchResultsInto(*connection->client, flags.job_id, dir, flags.force);
  if (!paths.ok()) ExitWithStatus("result", paths.status());
  if (flags.json) {
    std::cout << ResultPathsJson(flags.job_id, protocol::JobState::kSucceeded, *paths).dump()
              << "\n";
    return;
  }
  for (const auto& path : *paths) std::cout << path.string() << "\n";
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
