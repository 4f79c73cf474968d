// Starts a real process for integration tests (coordinator, workers, the CLI), captures its output
// to a file, and stops it: SIGTERM, then SIGKILL after a grace period. Test-only.
#ifndef DND_TESTS_SUPPORT_SUBPROCESS_H_
#define DND_TESTS_SUPPORT_SUBPROCESS_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace dnd::testing {

class Subprocess {
 public:
  // Starts argv[0] with the given arguments; stdout and stderr go to `log_path` (appended).
  // Aborts the test binary when the process cannot be started (a broken test set-up).
  Subprocess(std::vector<std::string> argv, std::string log_path);
  ~Subprocess();  // Stops the process if it still runs.
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `signal` (e.g. SIGTERM, SIGKILL, SIGSTOP).
  void Signal(int signal);
  // Waits up to `timeout` for the process to exit; returns its exit code (128 + signal when
  // killed), or nullopt when it is still running.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit code.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // The captured output so far.
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// A fresh empty directory under $TMPDIR (or /tmp) whose name starts with `prefix`.
std::string MakeTempDir(const std::string& prefix);

}  // namespace dnd::testing

#endif  // DND_TESTS_SUPPORT_SUBPROCESS_H_
