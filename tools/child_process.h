// A child process of `dnd demo --distributed` (dnd-coordinator, dnd-worker): started with its
// output in a log file, asked to stop with SIGTERM, killed after a grace period, and never left
// behind: the destructor stops it, and the kernel sends it SIGTERM if `dnd` itself dies
// (PR_SET_PDEATHSIG).
#ifndef DND_TOOLS_CHILD_PROCESS_H_
#define DND_TOOLS_CHILD_PROCESS_H_

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "protocol/status.h"

namespace dnd::tools {

// Resource type. Use from the thread that started it (PR_SET_PDEATHSIG follows that thread).
class ChildProcess {
 public:
  // Starts argv[0] (a path) with stdin from /dev/null and stdout+stderr appended to `log_path`.
  // NotFound when argv[0] is not an executable file; Internal when fork fails.
  static StatusOr<std::unique_ptr<ChildProcess>> Start(std::vector<std::string> argv,
                                                       std::filesystem::path log_path);
  ~ChildProcess();  // Stop() unless it has exited
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const std::filesystem::path& log_path() const { return log_path_; }

  // The exit code if the process has ended (128 + signal when killed), else nullopt. Never blocks.
  std::optional<int> Poll();
  // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit code.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // The last `max_bytes` of the log, for error messages.
  std::string LogTail(size_t max_bytes = 2000) const;

 private:
  ChildProcess(pid_t pid, std::string name, std::filesystem::path log_path);
  pid_t pid_;
  std::string name_;
  std::filesystem::path log_path_;
  std::optional<int> exit_code_;
};

}  // namespace dnd::tools

#endif  // DND_TOOLS_CHILD_PROCESS_H_
