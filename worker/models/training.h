// What every `dnd train` run shares (docs/models.md, "Training"): seeds, steps, checkpoints,
// resumption, the device, and progress reports. No LibTorch in this header.
#ifndef DND_WORKER_MODELS_TRAINING_H_
#define DND_WORKER_MODELS_TRAINING_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace dnd::models {

// Options of one training run. Value type; every field has a JSON key of the same name in the
// run's config file (tools/train_command.cc).
struct TrainOptions {
  std::string out;                 // the model file written at the end (weights + metadata)
  std::string checkpoint;          // training state; empty = out + ".ckpt"
  bool resume = false;             // continue from `checkpoint` (same config, same result)
  uint64_t seed = 1;               // every random draw of the run derives from it
  int steps = 1000;                // optimiser steps
  int batch_size = 64;
  double learning_rate = 1e-3;     // peak; linear warm-up over warmup_steps, then cosine to 10%
  int warmup_steps = 100;
  int checkpoint_every = 250;      // steps between checkpoints (and at the end)
  std::string device = "auto";     // "auto" (CUDA when LibTorch has it, else CPU), "cpu", "cuda"
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  // Stop this process after this many steps (0 = run to the end), leaving a checkpoint to
  // --resume from: time-boxed sessions. Not part of the config (a resumed run may differ).
  int stop_after = 0;
};

// One progress report, after each optimiser step.
struct TrainProgress {
  int step = 0;             // steps done
  int total_steps = 0;
  double loss = 0.0;        // running mean over the last 50 steps
  double elapsed_seconds = 0.0;  // wall time of this process's part of the run
  int first_step = 0;       // the step this process started from (> 0 after --resume)
};
using ProgressFn = std::function<void(const TrainProgress&)>;

// What a finished run measured. Value type.
struct TrainReport {
  std::string out;
  std::string device;                     // "cpu" or "cuda"
  double seconds = 0.0;                   // wall time of this process's part of the run
  int steps_run = 0;                      // steps this process ran
  bool finished = true;                   // false: stopped by stop_after; no model file yet
  std::map<std::string, double> metrics;  // model-specific (PSNR, losses, accuracies)
};

}  // namespace dnd::models

#endif  // DND_WORKER_MODELS_TRAINING_H_
