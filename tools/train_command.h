// `dnd train autoencoder|expert|detector`: trains the models of the shared latent space
// (docs/models.md). Each run reads a JSON config (configs under worker/models/configs/), takes a
// few overriding flags, shows a progress bar with loss and ETA, checkpoints, and resumes with
// --resume. Builds against LibTorch (through dnd::models) and header-only CLI11 and JSON only.
#ifndef DND_TOOLS_TRAIN_COMMAND_H_
#define DND_TOOLS_TRAIN_COMMAND_H_

namespace CLI {
class App;
}  // namespace CLI

namespace dnd::tools {

void RegisterTrainCommand(CLI::App& app);

// The subcommands autoencoder, expert and detector, added to `parent` (`dnd train`, or the
// top level of `dnd-train`).
void AddTrainSubcommands(CLI::App& parent);

}  // namespace dnd::tools

#endif  // DND_TOOLS_TRAIN_COMMAND_H_
