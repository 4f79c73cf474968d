// Shared pieces of the subcommands (command_support.h).
#include "tools/command_support.h"

#include <algorithm>
#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include "tools/exit_codes.h"
#include "tools/progress_bar.h"
#include "tools/result_files.h"

namespace dnd::tools {
namespace {

// The message the interrupt handler writes: built before the handler is installed, because a
// signal handler may only call async-signal-safe functions (write, _exit).
char g_interrupt_message[512];
size_t g_interrupt_message_length = 0;

void OnInterrupt(int) {
  if (write(STDERR_FILENO, g_interrupt_message, g_interrupt_message_length) < 0) {
    // Nothing more can be done from a signal handler.
  }
  _exit(kExitInterrupted);
}

}  // namespace

void ExitWithHintOnInterrupt(const std::string& job_id) {
  const std::string message = "\ndnd: interrupted; job " + job_id + " keeps running: `dnd watch " +
                              job_id + "` follows it, `dnd cancel " + job_id + "` stops it\n";
  g_interrupt_message_length = std::min(message.size(), sizeof(g_interrupt_message));
  std::memcpy(g_interrupt_message, message.data(), g_interrupt_message_length);
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void ExitWith(std::string_view command, int exit_code, std::string_view message) {
  std::cerr << "dnd " << command << ": " << message << "\n";
  std::cerr.flush();
  throw CLI::RuntimeError(exit_code);
}

void ExitWithStatus(std::string_view command, const Status& status) {
  ExitWith(command, ExitCodeFor(status), status.message());
}

StatusOr<Connection> ConnectToCoordinator(const ConnectionFlags& flags) {
  DND_ASSIGN_OR_RETURN(ClientOptions options, ResolveClientOptions(flags));
  Connection connection;
  DND_ASSIGN_OR_RETURN(connection.context, protocol::TransportContext::Create());
  DND_ASSIGN_OR_RETURN(connection.client,
                       CoordinatorClient::Connect(*connection.context, std::move(options)));
  return connection;
}

StatusOr<protocol::ProgressEvent> WaitForJob(CoordinatorClient& client, const std::string& job_id,
                                             const WaitOptions& options) {
  std::optional<ProgressBar> bar;
  if (options.progress != nullptr) bar.emplace(*options.progress, options.interactive);
  const double start = MonotonicSeconds();
  auto final_event = client.Watch(
      job_id,
      [&](const protocol::ProgressEvent& event) {
        if (bar && event.total_steps > 0 &&
            (event.state == protocol::JobState::kRunning ||
             event.state == protocol::JobState::kSucceeded)) {
          bar->Update(event.step, event.total_steps, MonotonicSeconds() - start);
        }
        if (options.on_event) options.on_event(event);
      },
      options.timeout);
  if (bar) bar->Finish();
  if (!final_event.ok()) return final_event.status();
  const std::string why = final_event->message.empty() ? "" : ": " + final_event->message;
  switch (final_event->state) {
    case protocol::JobState::kSucceeded:
      return final_event;
    case protocol::JobState::kFailed:
      return AbortedError("job " + job_id + " failed" +
                          (why.empty() ? std::string(" (no reason given)") : why));
    case protocol::JobState::kCancelled:
      return CancelledError("job " + job_id + " was cancelled" + why);
    default:
      return InternalError("the watch of job " + job_id + " ended in state " +
                           protocol::JobStateName(final_event->state));
  }
}

StatusOr<std::vector<std::filesystem::path>> FetchResultsInto(CoordinatorClient& client,
                                                              const std::string& job_id,
                                                              const std::filesystem::path& dir,
                                                              bool force) {
  auto result = client.FetchResult(job_id);
  if (!result.ok()) {
    const StatusCode code = result.status().code();
    if (code != StatusCode::kFailedPrecondition && code != StatusCode::kNotFound) {
      return result.status();
    }
    // Say why there is nothing: the job may have failed, or not be finished yet.
    auto jobs = client.GetStatus(job_id);
    if (!jobs.ok() || jobs->empty()) return result.status();
    const protocol::JobStatus& job = jobs->front();
    const std::string why = job.reason.empty() ? "" : ": " + job.reason;
    switch (job.state) {
      case protocol::JobState::kFailed:
        return AbortedError("job " + job_id + " failed" + why + "; it has no results");
      case protocol::JobState::kCancelled:
        return CancelledError("job " + job_id + " was cancelled" + why + "; it has no results");
      case protocol::JobState::kQueued:
      case protocol::JobState::kRunning:
        return FailedPreconditionError(
            "job " + job_id + " is still " + protocol::JobStateName(job.state) + " (step " +
            std::to_string(job.step) + "/" + std::to_string(job.total_steps) +
            "); wait for it with `dnd watch " + job_id + "`");
      default:
        return result.status();
    }
  }
  return WriteResultFiles(*result, dir, force);
}

std::filesystem::path DefaultResultDir(const std::string& job_id) {
  return std::filesystem::path("dnd-results") / job_id;
}

bool StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

double MonotonicSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace dnd::tools
