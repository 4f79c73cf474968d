// The exit codes of every `dnd` subcommand, so a script can tell the outcomes apart
// (docs/cli.md, `dnd --help`). Values follow sysexits.h where one fits (64 usage, 70 internal).
// ExitCodeFor maps a failed Status to the code a command returns.
#ifndef DND_TOOLS_EXIT_CODES_H_
#define DND_TOOLS_EXIT_CODES_H_

#include "protocol/status.h"

namespace dnd::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitJobFailed =
    1;  // the job failed or was cancelled (the message says which)
inline constexpr int kExitUnavailable = 2;    // cannot reach the coordinator, or it refused our key
inline constexpr int kExitTimeout = 3;        // a --timeout (or a reply deadline on a wait) expired
inline constexpr int kExitUsage = 64;         // bad flags or values, unknown job/expert/concept
inline constexpr int kExitInternal = 70;      // a bug or an unexpected failure (I/O, bad reply)
inline constexpr int kExitInterrupted = 130;  // Ctrl-C while following a job (128 + SIGINT)

// The table printed at the end of `dnd --help`.
inline constexpr const char* kExitCodesHelp =
    "Exit codes: 0 success; 1 job failed or was cancelled; 2 cannot connect to the coordinator or "
    "not authorised; 3 timeout; 64 bad usage (flags, values, unknown job, expert or concept); "
    "70 internal error; 130 interrupted (Ctrl-C) while following a job, which keeps running.";

// The exit code for a command that failed with `status` (not ok):
//   Unavailable, Unauthenticated, PermissionDenied -> 2; DeadlineExceeded -> 3;
//   InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, OutOfRange -> 64;
//   Cancelled, Aborted -> 1 (a job that ended badly); anything else -> 70. Ok -> 0.
inline int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kUnavailable:
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied:
      return kExitUnavailable;
    case StatusCode::kDeadlineExceeded:
      return kExitTimeout;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kOutOfRange:
      return kExitUsage;
    case StatusCode::kCancelled:
    case StatusCode::kAborted:
      return kExitJobFailed;
    default:
      return kExitInternal;
  }
}

}  // namespace dnd::tools

#endif  // DND_TOOLS_EXIT_CODES_H_
