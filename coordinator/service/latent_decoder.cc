// See latent_decoder.h. A thin adapter over models::Autoencoder (whose .cc holds the LibTorch
// code), so that the coordinator's headers and its method library stay free of LibTorch.
#include "coordinator/service/latent_decoder.h"

#include <set>
#include <utility>

#include "worker/models/autoencoder.h"

namespace dnd::coordinator {
namespace {

constexpr int kCanvasSide = 64;

class AutoencoderDecoder final : public LatentDecoder {
 public:
  explicit AutoencoderDecoder(std::unique_ptr<models::Autoencoder> autoencoder)
      : autoencoder_(std::move(autoencoder)) {}

  const std::string& latent_space_id() const override { return autoencoder_->latent_space_id(); }

  StatusOr<Canvas> Decode(std::span<const float> latent) const override {
    if (latent.size() != static_cast<size_t>(models::kLatentValues)) {
      return InvalidArgumentError("autoencoder '" + latent_space_id() + "' decodes latents of " +
                                  std::to_string(models::kLatentValues) +
                                  " values (4x16x16), got " + std::to_string(latent.size()));
    }
    DND_ASSIGN_OR_RETURN(std::vector<float> values, autoencoder_->Decode(latent));
    if (values.size() != static_cast<size_t>(kCanvasSide) * kCanvasSide) {
      return InternalError("autoencoder '" + latent_space_id() + "' returned " +
                           std::to_string(values.size()) + " values, expected 64x64");
    }
    return Canvas{kCanvasSide, kCanvasSide, std::move(values)};
  }

 private:
  std::unique_ptr<models::Autoencoder> autoencoder_;
};

}  // namespace

StatusOr<std::unique_ptr<LatentDecoder>> LoadAutoencoderDecoder(const std::filesystem::path& file) {
  auto autoencoder = models::Autoencoder::Load(file.string());
  if (!autoencoder.ok()) {
    return autoencoder.status().WithContext("loading the autoencoder " + file.string());
  }
  return std::unique_ptr<LatentDecoder>(
      std::make_unique<AutoencoderDecoder>(std::move(autoencoder).value()));
}

StatusOr<std::vector<std::shared_ptr<const LatentDecoder>>> LoadAutoencoderDecoders(
    const std::vector<std::filesystem::path>& files) {
  std::vector<std::shared_ptr<const LatentDecoder>> decoders;
  std::set<std::string> ids;
  for (const auto& file : files) {
    DND_ASSIGN_OR_RETURN(std::unique_ptr<LatentDecoder> decoder, LoadAutoencoderDecoder(file));
    if (!ids.insert(decoder->latent_space_id()).second) {
      return InvalidArgumentError("two autoencoder files decode latent space '" +
                                  decoder->latent_space_id() + "' (the second is " + file.string() +
                                  "): give each latent space once");
    }
    decoders.push_back(std::move(decoder));
  }
  return decoders;
}

}  // namespace dnd::coordinator
