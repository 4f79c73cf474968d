// `dnd-train`: `dnd train` in a binary of its own. It is the one target of the trainer-only build
// (cmake -DDND_TRAINER_ONLY=ON), which needs LibTorch, zlib and the header-only CLI11 and
// nlohmann_json and nothing else, so it builds on a GPU machine against a CUDA LibTorch
// (docs/models.md "Training on a GPU").
#include <CLI/CLI.hpp>

#include "protocol/startup.h"
#include "tools/train_command.h"
#include "worker/experts/torch_runtime.h"

int main(int argc, char** argv) {
  dnd::InitProcess({.set_compute_threads = dnd::experts::SetTorchThreads});
  CLI::App app("dnd-train: train the shared autoencoder, an organisation's expert, or the "
               "presence detector (the same as `dnd train`)");
  dnd::tools::AddTrainSubcommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Error& e) {
    return app.exit(e);
  }
  return 0;
}
