// Writes a job's result files (image.png, allocation.png, allocation_steps.png, record.json) that
// `dnd result`, `dnd submit --wait` and `dnd demo` fetch from the coordinator into a directory,
// without ever overwriting a file unless asked to.
#ifndef DND_TOOLS_RESULT_FILES_H_
#define DND_TOOLS_RESULT_FILES_H_

#include <filesystem>
#include <vector>

#include "protocol/messages.h"
#include "protocol/status.h"

namespace dnd::tools {

// Writes every file of `result` into `dir` (created with its parents) and returns the paths in a
// fixed order: image.png, allocation.png, allocation_steps.png, record.json, then the others by
// name. Nothing is written when any check fails:
//   InvalidArgument  a file name that is empty, ".", "..", or holds '/' or a NUL (a bad reply), or
//                    the same name twice;
//   AlreadyExists    a file exists and `force` is false (the message lists them and says --force);
//   FailedPrecondition  `dir` exists and is not a directory;
//   Internal         an I/O error (the path is named).
// Each file is written to a temporary name in `dir` and renamed, so a reader never sees half a
// file. Thread-compatible.
StatusOr<std::vector<std::filesystem::path>> WriteResultFiles(const protocol::ResultFiles& result,
                                                              const std::filesystem::path& dir,
                                                              bool force);

}  // namespace dnd::tools

#endif  // DND_TOOLS_RESULT_FILES_H_
