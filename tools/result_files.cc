// Writing result files (result_files.h).
#include "tools/result_files.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <set>
#include <string>
#include <system_error>

namespace dnd::tools {
namespace {

constexpr std::array<const char*, 4> kKnownOrder = {"image.png", "allocation.png",
                                                    "allocation_steps.png", "record.json"};

size_t OrderKey(const std::string& name) {
  for (size_t i = 0; i < kKnownOrder.size(); ++i) {
    if (name == kKnownOrder[i]) return i;
  }
  return kKnownOrder.size();
}

}  // namespace

StatusOr<std::vector<std::filesystem::path>> WriteResultFiles(const protocol::ResultFiles& result,
                                                              const std::filesystem::path& dir,
                                                              bool force) {
  std::set<std::string> names;
  for (const protocol::ResultFile& file : result.files) {
    const std::string& n = file.name;
    if (n.empty() || n == "." || n == ".." || n.find('/') != std::string::npos ||
        n.find('\0') != std::string::npos) {
      return InvalidArgumentError("the coordinator sent a result file with a bad name '" + n + "'");
    }
    if (!names.insert(n).second) {
      return InvalidArgumentError("the coordinator sent result file '" + n + "' twice");
    }
  }
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec)) {
    return FailedPreconditionError(dir.string() + " exists and is not a directory");
  }
  if (!force) {
    std::string existing;
    for (const std::string& n : names) {
      if (std::filesystem::exists(dir / n, ec)) existing += (existing.empty() ? "" : ", ") + n;
    }
    if (!existing.empty()) {
      return AlreadyExistsError("not overwriting " + existing + " in " + dir.string() +
                                "; use --force to replace them, or another --out");
    }
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) return InternalError("cannot create " + dir.string() + ": " + ec.message());

  std::vector<const protocol::ResultFile*> ordered;
  for (const protocol::ResultFile& file : result.files) ordered.push_back(&file);
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto* a, const auto* b) {
    const size_t ka = OrderKey(a->name), kb = OrderKey(b->name);
    return ka != kb ? ka < kb : a->name < b->name;
  });
  std::vector<std::filesystem::path> paths;
  for (const protocol::ResultFile* file : ordered) {
    const std::filesystem::path final_path = dir / file->name;
    const std::filesystem::path temp_path = dir / ("." + file->name + ".partial");
    {
      std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(file->data.data()),
                static_cast<std::streamsize>(file->data.size()));
      out.close();
      if (!out) {
        std::filesystem::remove(temp_path, ec);
        return InternalError("cannot write " + temp_path.string());
      }
    }
    std::filesystem::rename(temp_path, final_path, ec);
    if (ec) {
      const std::string why = ec.message();
      std::filesystem::remove(temp_path, ec);
      return InternalError("cannot move the result into " + final_path.string() + ": " + why);
    }
    paths.push_back(final_path);
  }
  return paths;
}

}  // namespace dnd::tools
