// `dnd submit`: builds a JobSpec from the flags (checked locally first), submits it, and with
// --wait follows the job with a progress bar on stderr, then fetches the results and prints their
// paths on stdout. Without --wait it prints the job id alone, so `JOB=$(dnd submit ...)` works.
// Without --utility it asks the coordinator which utilities the experts report (DefaultUtility).
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>
#include <random>

#include <CLI/CLI.hpp>

#include "tools/command_support.h"
#include "tools/commands.h"
#include "tools/exit_codes.h"
#include "tools/job_spec_flags.h"
#include "tools/json_output.h"

namespace dnd::tools {
namespace {

struct SubmitFlags {
  JobSpecFlags job;
  bool wait = false;
  std::optional<double> timeout_s;
  std::string out_dir;
  bool force = false;
  bool json = false;
};

// A random token that makes a retried submission idempotent.
std::string NewClientToken() {
  std::random_device device;
  std::uniform_int_distribution<uint64_t> digits;
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "cli-%016llx",
                static_cast<unsigned long long>(digits(device)));
  return buffer;
}

void RunSubmit(const SubmitFlags& flags, const ConnectionFlags& connection_flags) {
  auto spec = BuildJobSpec(flags.job);
  if (!spec.ok()) ExitWith("submit", kExitUsage, spec.status().message());
  std::optional<std::chrono::milliseconds> timeout;
  if (flags.timeout_s) {
    if (!std::isfinite(*flags.timeout_s) || *flags.timeout_s <= 0) {
      ExitWith("submit", kExitUsage, "--timeout must be a positive number of seconds");
    }
    timeout = std::chrono::milliseconds(std::llround(*flags.timeout_s * 1000));
  }
  auto connection = ConnectToCoordinator(connection_flags);
  if (!connection.ok()) ExitWithStatus("submit", connection.status());
  CoordinatorClient& client = *connection->client;
  if (!flags.job.utility) {
    auto registry = client.ListExperts();
    if (!registry.ok()) ExitWithStatus("submit", registry.status());
    spec->utility = DefaultUtility(*spec, *registry);
    std::cerr << "utility: "
              << (spec->utility == protocol::UtilityKind::kAttention
                      ? "attention (every expert reports it)"
                      : "score (not every expert reports attention)")
              << "; --utility chooses\n";
  }

  auto job_id = client.Submit(protocol::SubmitJob{NewClientToken(), *spec});
  if (!job_id.ok()) ExitWithStatus("submit", job_id.status());
  if (!flags.wait) {
    if (flags.json) {
      std::cout << nlohmann::json{{"job_id", *job_id}}.dump() << "\n";
    } else {
      std::cout << *job_id << "\n";
      std::cerr << "submitted " << *job_id << "; follow it with `dnd watch " << *job_id
                << "`, fetch it with `dnd result " << *job_id << "`\n";
    }
    return;
  }

  if (!flags.json) std::cerr << "submitted " << *job_id << "\n";
  ExitWithHintOnInterrupt(*job_id);
  WaitOptions wait;
  wait.timeout = timeout;
  wait.progress = &std::cerr;
  wait.interactive = StderrIsTerminal();
  auto final_event = WaitForJob(client, *job_id, wait);
  if (!final_event.ok()) ExitWithStatus("submit", final_event.status());

  const std::filesystem::path dir =
      flags.out_dir.empty() ? DefaultResultDir(*job_id) : std::filesystem::path(flags.out_dir);
  auto paths = FetchResultsInto(client, *job_id, dir, flags.force);
  if (!paths.ok()) ExitWithStatus("submit", paths.status());
  if (flags.json) {
    std::cout << ResultPathsJson(*job_id, final_event->state, *paths).dump() << "\n";
  } else {
    std::cerr << "job " << *job_id << " succeeded; results in " << dir.string() << "/\n";
    for (const auto& path : *paths) std::cout << path.string() << "\n";
  }
}

}  // namespace

void RegisterSubmitCommand(CLI::App& app, const ConnectionFlags& connection) {
  auto flags = std::make_shared<SubmitFlags>();
  CLI::App* cmd = app.add_subcommand(
      "submit",
      "Submit a composition job: --expert EXPERT:CONCEPT once per expert (see `dnd experts`)");
  AddJobSpecFlags(*cmd, flags->job);
  cmd->add_flag("--wait", flags->wait,
                "follow the job with a progress bar (stderr), then fetch its results");
  cmd->add_option("--timeout", flags->timeout_s,
                  "with --wait: give up waiting after this many seconds (exit code 3; the job "
                  "keeps running)");
  cmd->add_option("--out", flags->out_dir,
                  "with --wait: directory for the results (default ./dnd-results/JOB)");
  cmd->add_flag("--force", flags->force, "with --wait: overwrite existing result files");
  cmd->add_flag("--json", flags->json, "print {\"job_id\"} (or the result paths) as JSON");
  cmd->callback([flags, &connection] { RunSubmit(*flags, connection); });
}

}  // namespace dnd::tools
