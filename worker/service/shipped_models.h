// Where the binaries find the model files that ship with dnd (worker/models/weights/: the shared
// autoencoder and the footwear, tops and rest experts): $DND_MODELS_DIR when it is set (container
// images set it), else the source tree's worker/models/weights, compiled in. Used by dnd-worker
// (`--backend neural --name footwear` -> footwear.pt), dnd-coordinator (the default autoencoder)
// and `dnd demo`. Thread-safe (reads the environment only).
#ifndef DND_WORKER_SERVICE_SHIPPED_MODELS_H_
#define DND_WORKER_SERVICE_SHIPPED_MODELS_H_

#include <filesystem>
#include <optional>
#include <string_view>

namespace dnd::worker {

inline constexpr const char* kModelsDirEnv = "DND_MODELS_DIR";
inline constexpr const char* kAutoencoderFile = "autoencoder.pt";

// $DND_MODELS_DIR when set and not empty, else the source tree's worker/models/weights.
std::filesystem::path ShippedModelsDir();

// ShippedModelsDir() / file_name when that is a regular file, else nullopt.
std::optional<std::filesystem::path> FindShippedModel(std::string_view file_name);

}  // namespace dnd::worker

#endif  // DND_WORKER_SERVICE_SHIPPED_MODELS_H_
