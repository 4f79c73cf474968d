// `dnd watch JOB`: follows a job until it ends: a progress bar on stderr and a last line on stdout,
// or with --json one event object per line (JSON lines) on stdout. Exit code 1 when the job
// failed or was cancelled, 3 when --timeout passes first.
#include <cmath>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "tools/command_support.h"
#include "tools/commands.h"
#include "tools/exit_codes.h"
#include "tools/json_output.h"

namespace dnd::tools {
namespace {

struct WatchFlags {
  std::string job_id;
  bool json = false;
  std::optional<double> timeout_s;
};

void RunWatch(const WatchFlags& flags, const ConnectionFlags& connection_flags) {
  WaitOptions wait;
  if (flags.timeout_s) {
    if (!std::isfinite(*flags.timeout_s) || *flags.timeout_s <= 0) {
      ExitWith("watch", kExitUsage, "--timeout must be a positive number of seconds");
    }
    wait.timeout = std::chrono::milliseconds(std::llround(*flags.timeout_s * 1000));
  }
  auto connection = ConnectToCoordinator(connection_flags);
  if (!connection.ok()) ExitWithStatus("watch", connection.status());
  if (flags.json) {
    wait.on_event = [](const protocol::ProgressEvent& event) {
      std::cout << ProgressEventJson(event).dump() << std::endl;  // flushed: a pipe reads lines
    };
  } else {
    wait.progress = &std::cerr;
    wait.interactive = StderrIsTerminal();
  }
  ExitWithHintOnInterrupt(flags.job_id);
  auto final_event = WaitForJob(*connection->client, flags.job_id, wait);
  if (!final_event.ok()) ExitWithStatus("watch", final_event.status());
  if (!flags.json) {
    std::cout << "job " << flags.job_id << " succeeded; fetch it with `dnd result " << flags.job_id
              << " --out DIR`\n";
  }
}

}  // namespace

void RegisterWatchCommand(CLI::App& app, const ConnectionFlags& connection) {
  auto flags = std::make_shared<WatchFlags>();
  CLI::App* cmd = app.add_subcommand("watch", "Follow a job until it ends, with a progress bar");
  cmd->add_option("job", flags->job_id, "the job id (e.g. j-000001)")->required();
  cmd->add_flag("--json", flags->json, "print every progress event as a JSON line on stdout");
  cmd->add_option("--timeout", flags->timeout_s,
                  "give up after this many seconds (exit code 3; the job keeps running)");
  cmd->callback([flags, &connection] { RunWatch(*flags, connection); });
}

}  // namespace dnd::tools
