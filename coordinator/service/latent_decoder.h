// Decoders from a shared latent space to pictures, for the coordinator's result files: the public
// autoencoder that every expert of a latent space was trained on (worker/models/autoencoder.h)
// turns a job's final latent into the 64x64 canvas of image.png. The coordinator holds one decoder
// per latent space id; a job whose latent space has none gets a channel-mean preview instead.
// No LibTorch in this header (the autoencoder hides it).
#ifndef DND_COORDINATOR_SERVICE_LATENT_DECODER_H_
#define DND_COORDINATOR_SERVICE_LATENT_DECODER_H_

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"

namespace dnd::coordinator {

// A greyscale picture, row-major, values in [0, 1] (black = 0). Value type.
struct Canvas {
  int width = 0;
  int height = 0;
  std::vector<float> values;  // width * height
};

// Thread rule: Decode is thread-safe (the coordinator calls it from its serving thread).
class LatentDecoder {
 public:
  virtual ~LatentDecoder() = default;
  // The latent space it decodes, e.g. "fmnist-ae-4x16x16-1a2b3c4d".
  virtual const std::string& latent_space_id() const = 0;
  // One latent (C*H*W floats, channel-major) -> one canvas. InvalidArgument for a latent of the
  // wrong size; Internal when the model fails.
  virtual StatusOr<Canvas> Decode(std::span<const float> latent) const = 0;

 protected:
  LatentDecoder() = default;
  LatentDecoder(const LatentDecoder&) = delete;
  LatentDecoder& operator=(const LatentDecoder&) = delete;
};

// Loads an autoencoder file written by `dnd train autoencoder` (a 4x16x16 latent, 64x64 canvases).
// NotFound when the file is missing, DataLoss when it is not an autoencoder file.
StatusOr<std::unique_ptr<LatentDecoder>> LoadAutoencoderDecoder(const std::filesystem::path& file);

// Loads every file; InvalidArgument when two of them decode the same latent space id.
StatusOr<std::vector<std::shared_ptr<const LatentDecoder>>> LoadAutoencoderDecoders(
    const std::vector<std::filesystem::path>& files);

}  // namespace dnd::coordinator

#endif  // DND_COORDINATOR_SERVICE_LATENT_DECODER_H_
