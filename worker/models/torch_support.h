// The parts of a training run that every model shares (docs/models.md, "Training"): the device,
// the learning-rate schedule, per-step seeds, model files and checkpoints, the EMA of the weights,
// and the loop that ties them together with progress reports and resumption. Internal to
// worker/models. LibTorch types are only forward-declared here, so the header stays cheap.
#ifndef DND_WORKER_MODELS_TORCH_SUPPORT_H_
#define DND_WORKER_MODELS_TORCH_SUPPORT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "protocol/status.h"
#include "worker/models/training.h"

namespace torch {
namespace nn {
class Module;
}  // namespace nn
namespace optim {
class Optimizer;
}  // namespace optim
}  // namespace torch

namespace dnd::models {

// "cpu" or "cuda" for TrainOptions::device ("auto" picks CUDA when LibTorch has a device).
// InvalidArgument for other names; FailedPrecondition for "cuda" without one.
StatusOr<std::string> ResolveDevice(const std::string& requested);

// The learning rate at `step` (0-based): linear warm-up to options.learning_rate over
// warmup_steps, then a cosine down to 10% of it at options.steps.
double LearningRate(const TrainOptions& options, int step);
// A seed for draw stream `stream` at `step` of a run seeded with `seed` (SplitMix64 of the three),
// so that a resumed run draws exactly what an uninterrupted one would.
uint64_t StepSeed(uint64_t seed, int step, uint64_t stream);

// A model file: the module's parameters and buffers plus metadata (JSON text).
Status SaveModelFile(torch::nn::Module& module, const std::string& metadata_json,
                     const std::string& path);
// Loads parameters and buffers into `module` (same architecture); returns the metadata.
// NotFound, or DataLoss for a file that is not a model file of this architecture.
StatusOr<std::string> LoadModelFile(torch::nn::Module& module, const std::string& path);
// The metadata of a model file without loading its weights (to learn the architecture first).
StatusOr<std::string> ReadModelMetadata(const std::string& path);
// 8 hex digits of an FNV-1a hash of the module's parameters (identifies a latent space).
std::string WeightsHash(torch::nn::Module& module);

// ema <- decay * ema + (1 - decay) * model, parameter by parameter (buffers copied).
void UpdateEma(torch::nn::Module& ema, torch::nn::Module& model, double decay);

// The training loop. `step_fn(step)` runs optimiser step `step` (0-based; it sets nothing but
// gradients and parameters) and returns its loss. The loop sets the learning rate of every
// parameter group of `optimizer` before each step, updates `ema` (if not null) with `ema_decay`,
// checkpoints every options.checkpoint_every steps and at the end (model, EMA, optimiser, step,
// and `config_json`, which a resumed run must match), and reports progress. With options.resume
// it continues from the checkpoint. Returns the steps this call ran and its wall time.
struct LoopResult {
  int steps_run = 0;
  double seconds = 0.0;
  double final_loss = 0.0;  // mean over the last 50 steps
  bool finished = true;     // false when options.stop_after stopped it (checkpoint written)
};
StatusOr<LoopResult> RunTrainingLoop(torch::nn::Module& model, torch::nn::Module* ema,
                                     double ema_decay, torch::optim::Optimizer& optimizer,
                                     const TrainOptions& options, const std::string& config_json,
                                     const std::function<double(int)>& step_fn,
                                     const ProgressFn& progress);

// The report of a run that options.stop_after stopped before the end (no model file written).
TrainReport StoppedReport(const TrainOptions& options, const std::string& device,
                          const LoopResult& loop);

// The checkpoint path of a run: options.checkpoint, or options.out + ".ckpt".
std::string CheckpointPath(const TrainOptions& options);

}  // namespace dnd::models

#endif  // DND_WORKER_MODELS_TORCH_SUPPORT_H_
