// What the `dnd` subcommands share: ending a command with a message and an exit code, connecting to
// the coordinator from the connection flags, following a job to its end with a progress bar, and
// fetching its results into a directory. Used by the *_command.cc files and the demo.
#ifndef DND_TOOLS_COMMAND_SUPPORT_H_
#define DND_TOOLS_COMMAND_SUPPORT_H_

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"
#include "protocol/status.h"
#include "protocol/transport.h"
#include "tools/connection_flags.h"
#include "tools/coordinator_client.h"

namespace dnd::tools {

// Ends the running subcommand: prints "dnd <command>: <message>" on stderr and makes `dnd` exit
// with `exit_code` (throws CLI::RuntimeError, which RunDnd turns into the exit code).
[[noreturn]] void ExitWith(std::string_view command, int exit_code, std::string_view message);
// ExitWith(command, ExitCodeFor(status), status.message()). `status` must not be ok.
[[noreturn]] void ExitWithStatus(std::string_view command, const Status& status);

// A client and the ZeroMQ context it lives in (declared first, so destroyed last).
struct Connection {
  std::unique_ptr<protocol::TransportContext> context;
  std::unique_ptr<CoordinatorClient> client;
};

// Resolves the flags (ResolveClientOptions) and connects. Its errors, plus Internal when the
// ZeroMQ context cannot start.
StatusOr<Connection> ConnectToCoordinator(const ConnectionFlags& flags);

struct WaitOptions {
  std::optional<std::chrono::milliseconds> timeout;  // none = wait as long as the job runs
  std::ostream* progress = nullptr;  // where to draw the progress bar; null = no bar
  bool interactive = false;          // redraw the bar in place (a terminal)
  std::function<void(const protocol::ProgressEvent&)> on_event;  // e.g. JSON lines; may be empty
};

// Follows `job_id` to its end (CoordinatorClient::Watch). Returns the final event when the job
// succeeded; Aborted("job J failed: REASON") when it failed; Cancelled("job J was cancelled...")
// when it was cancelled; otherwise Watch's errors (DeadlineExceeded, Unavailable, NotFound, ...).
StatusOr<protocol::ProgressEvent> WaitForJob(CoordinatorClient& client, const std::string& job_id,
                                             const WaitOptions& options);

// From now on, SIGINT (Ctrl-C) and SIGTERM end the process with kExitInterrupted after printing
// "dnd: interrupted; job J keeps running ..." with the commands to follow or cancel it (the job is
// the coordinator's; leaving the watch does not stop it). Call from the main thread once the job
// id is known; calling it again replaces the job id.
void ExitWithHintOnInterrupt(const std::string& job_id);

// Fetches the job's results and writes them into `dir` (WriteResultFiles). When the coordinator
// has none, says why: Aborted / Cancelled for a job that failed / was cancelled,
// FailedPrecondition for one still queued or running.
StatusOr<std::vector<std::filesystem::path>> FetchResultsInto(CoordinatorClient& client,
                                                              const std::string& job_id,
                                                              const std::filesystem::path& dir,
                                                              bool force);

// ./dnd-results/<job id>: where results go when --out is not given.
std::filesystem::path DefaultResultDir(const std::string& job_id);

// True when stderr is a terminal (the progress bar then redraws in place).
bool StderrIsTerminal();

// Seconds on a monotonic clock, for progress timing.
double MonotonicSeconds();

// Aligns `rows` (the first is the header) into columns separated by two spaces, one line per row,
// trailing spaces trimmed. Rows may be shorter than the header.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace dnd::tools

#endif  // DND_TOOLS_COMMAND_SUPPORT_H_
