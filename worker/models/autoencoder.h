// The shared public latent space (docs/models.md, "Autoencoder"): a convolutional autoencoder from
// 1x64x64 canvases (floats in [0, 1], black = 0) to 4x16x16 latents (m = 256 positions) and back.
// Latents are normalised per channel to zero mean and unit variance over training canvases, so
// that a diffusion schedule's x_T ~ N(0, I) fits them. Coordinators decode final latents with it;
// expert trainers encode their data with it. No LibTorch in this header.
#ifndef DND_WORKER_MODELS_AUTOENCODER_H_
#define DND_WORKER_MODELS_AUTOENCODER_H_

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"
#include "worker/models/training.h"

namespace dnd::models {

inline constexpr int kLatentChannels = 4;
inline constexpr int kLatentSide = 16;
inline constexpr int kLatentValues = kLatentChannels * kLatentSide * kLatentSide;

class Autoencoder {
 public:
  // Loads a model file written by TrainAutoencoder. NotFound, or DataLoss for a file that is not
  // one. Runs on the CPU.
  static StatusOr<std::unique_ptr<Autoencoder>> Load(const std::string& path);
  ~Autoencoder();
  Autoencoder(const Autoencoder&) = delete;
  Autoencoder& operator=(const Autoencoder&) = delete;

  // N canvases (N * 4096 floats) -> N normalised latents (N * 1024, channel-major).
  // InvalidArgument when the size is not a multiple of 4096. Thread-safe.
  StatusOr<std::vector<float>> Encode(std::span<const float> canvases) const;
  // N latents -> N canvases, clamped to [0, 1]. Thread-safe.
  StatusOr<std::vector<float>> Decode(std::span<const float> latents) const;

  // "fmnist-ae-4x16x16-" + 8 hex digits of a hash of the weights: experts trained on these latents
  // carry it, and a coordinator decodes a job only with the autoencoder of the same id.
  const std::string& latent_space_id() const;
  // The training config and metrics recorded in the file, as JSON text.
  const std::string& metadata_json() const;

  struct Impl;

 private:
  explicit Autoencoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct AutoencoderTrainConfig {
  TrainOptions train;
  int crop_side = 44;        // training crops (the network is convolutional; black = zero padding)
  double two_item_fraction = 0.3;  // crops holding two (overlapping) items
  int normalisation_canvases = 2048;  // canvases used to measure the latent's mean and std
  int eval_canvases = 1000;  // test-split canvases for the PSNR in the report
};

// Trains the autoencoder (resumable, see TrainOptions), writes train.out, and reports
// "psnr_test_db" (mean PSNR on eval_canvases test-split canvases with the experts' position prior)
// and "mse_test". Errors: data missing, a bad config, a checkpoint of another config, I/O.
StatusOr<TrainReport> TrainAutoencoder(const AutoencoderTrainConfig& config,
                                       const ProgressFn& progress);

// Mean PSNR (dB, peak 1) of encode-then-decode over `count` canvases of test-split items placed
// with the experts' position prior (seeded), and the mean squared error.
struct ReconstructionQuality {
  double psnr_db = 0.0;
  double mse = 0.0;
};
StatusOr<ReconstructionQuality> EvaluateAutoencoder(const Autoencoder& autoencoder,
                                                    const std::string& data_dir, int count,
                                                    uint64_t seed);

}  // namespace dnd::models

#endif  // DND_WORKER_MODELS_AUTOENCODER_H_
