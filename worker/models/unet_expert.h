// An organisation's private expert (docs/models.md, "Experts"): a UNet over the shared 4x16x16
// latent with a time embedding and cross-attention from spatial features to a two-token sequence
// [start, concept] (the unconditional pass puts the null token in the concept slot). The attention
// weight on the concept token at 16x16 is the localisation map of the attention-based utility.
// Trained with classifier-free dropout on canvases of the organisation's classes, encoded with the
// shared autoencoder. No LibTorch in this header.
#ifndef DND_WORKER_MODELS_UNET_EXPERT_H_
#define DND_WORKER_MODELS_UNET_EXPERT_H_

#include <memory>
#include <string>
#include <vector>

#include "protocol/status.h"
#include "worker/experts/expert.h"
#include "worker/models/training.h"

namespace dnd::models {

struct ExpertTrainConfig {
  TrainOptions train;
  std::string name;                   // the expert's name, e.g. "footwear"
  std::vector<std::string> concepts;  // Fashion-MNIST class names (fashion_mnist.h)
  std::string autoencoder;            // the shared autoencoder's model file
  int channels = 64;                  // UNet width at 16x16 (twice that at 8x8)
  int heads = 4;                      // cross-attention heads
  int token_dim = 64;                 // token embedding width
  double cfg_dropout = 0.1;           // probability of training with the null token
  double position_prior_std_px = 7.0; // the training canvases' position prior
  int pool_canvases = 16384;          // encoded canvases drawn from (items x positions)
  double ema_decay = 0.999;           // the shipped weights are the EMA
  // Weight of the attention loss: mean squared difference between the concept token's attention
  // map and the item's footprint at 16x16 (conditional samples only). 0 = unsupervised attention.
  double attention_loss_weight = 1.0;
};

// Trains an expert (resumable, see TrainOptions), writes train.out with its name, concepts and
// the autoencoder's latent space id, and reports "final_train_loss".
StatusOr<TrainReport> TrainExpert(const ExpertTrainConfig& config, const ProgressFn& progress);

// The worker backend "neural": config.model_path is a file written by TrainExpert; config.concepts
// empty = all of the file's concepts, else a subset. Prediction type epsilon, timesteps of the
// scaled_linear 1000-step schedule; utilities score and attention; gradients by autograd. Errors:
// NotFound (no file), DataLoss (not an expert file), InvalidArgument (a concept it does not know).
StatusOr<std::unique_ptr<experts::Expert>> CreateNeuralExpert(const experts::ExpertConfig& config);

// Any backend: "neural" here, the others through experts::CreateExpert.
StatusOr<std::unique_ptr<experts::Expert>> CreateAnyExpert(const experts::ExpertConfig& config);

}  // namespace dnd::models

#endif  // DND_WORKER_MODELS_UNET_EXPERT_H_
