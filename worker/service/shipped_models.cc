// See shipped_models.h. DND_SOURCE_MODELS_DIR is set by worker/service/CMakeLists.txt.
#include "worker/service/shipped_models.h"

#include <cstdlib>
#include <string>

namespace dnd::worker {

std::filesystem::path ShippedModelsDir() {
  const char* env = std::getenv(kModelsDirEnv);
  if (env != nullptr && *env != '\0') return env;
  return DND_SOURCE_MODELS_DIR;
}

std::optional<std::filesystem::path> FindShippedModel(std::string_view file_name) {
  const std::filesystem::path path = ShippedModelsDir() / std::string(file_name);
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return path;
  return std::nullopt;
}

}  // namespace dnd::worker
