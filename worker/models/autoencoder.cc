// The autoencoder (autoencoder.h): network, training and inference.
#include "worker/models/autoencoder.h"

#include <torch/torch.h>

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "worker/models/canvases.h"
#include "worker/models/torch_support.h"

namespace dnd::models {
namespace {

torch::nn::Conv2d Conv(int in, int out, int stride = 1, int kernel = 3) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}

// Encoder: 64x64x1 -> 32x32x32 -> 16x16x64 -> 4 channels. Decoder mirrors it with nearest-neighbour
// upsampling. SiLU everywhere; no normalisation layers, so black (0) maps to one constant latent and
// the map commutes with shifts by 4 pixels (zero padding is black).
struct AutoencoderNetImpl : torch::nn::Module {
  AutoencoderNetImpl() {
    e1 = register_module("e1", Conv(1, 16));
    e2 = register_module("e2", Conv(16, 32, 2));
    e3 = register_module("e3", Conv(32, 32));
    e4 = register_module("e4", Conv(32, 64, 2));
    e5 = register_module("e5", Conv(64, 64));
    e6 = register_module("e6", Conv(64, kLatentChannels, 1, 1));
    d1 = register_module("d1", Conv(kLatentChannels, 64));
    d2 = register_module("d2", Conv(64, 64));
    d3 = register_module("d3", Conv(64, 32));
    d4 = register_module("d4", Conv(32, 32));
    d5 = register_module("d5", Conv(32, 16));
    d6 = register_module("d6", Conv(16, 1));
    // Per-channel normalisation of the latent, measured after training.
    latent_mean = register_buffer("latent_mean", torch::zeros({1, kLatentChannels, 1, 1}));
    latent_std = register_buffer("latent_std", torch::ones({1, kLatentChannels, 1, 1}));
  }
  torch::Tensor EncodeRaw(torch::Tensor x) {
    x = torch::silu(e1(x));
    x = torch::silu(e2(x));
    x = torch::silu(e3(x));
    x = torch::silu(e4(x));
    x = torch::silu(e5(x));
    return e6(x);
  }
  torch::Tensor DecodeRaw(torch::Tensor z) {
    namespace F = torch::nn::functional;
    const auto up = F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(
        torch::kNearest);
    z = torch::silu(d1(z));
    z = torch::silu(d2(z));
    z = torch::silu(d3(F::interpolate(z, up)));
    z = torch::silu(d4(z));
    z = torch::silu(d5(F::interpolate(z, up)));
    return d6(z);
  }
  torch::Tensor Encode(torch::Tensor x) { return (EncodeRaw(x) - latent_mean) / latent_std; }
  torch::Tensor Decode(torch::Tensor z) { return DecodeRaw(z * latent_std + latent_mean); }

  torch::nn::Conv2d e1{nullptr}, e2{nullptr}, e3{nullptr}, e4{nullptr}, e5{nullptr}, e6{nullptr};
  torch::nn::Conv2d d1{nullptr}, d2{nullptr}, d3{nullptr}, d4{nullptr}, d5{nullptr}, d6{nullptr};
  torch::Tensor latent_mean, latent_std;
};
TORCH_MODULE(AutoencoderNet);

nlohmann::json ConfigJson(const AutoencoderTrainConfig& c) {
  const TrainOptions& t = c.train;
  return {{"model", "autoencoder"},        {"seed", t.seed},
          {"steps", t.steps},              {"batch_size", t.batch_size},
          {"learning_rate", t.learning_rate}, {"warmup_steps", t.warmup_steps},
          {"crop_side", c.crop_side},      {"two_item_fraction", c.two_item_fraction},
          {"normalisation_canvases", c.normalisation_canvases}};
}

// A training batch: crops of crop_side^2 holding one item (or two, overlapping) of any class.
torch::Tensor TrainingBatch(const FashionMnistSplit& train, const AutoencoderTrainConfig& c,
                            uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int side = c.crop_side;
  const int b = c.train.batch_size;
  std::vector<float> data(static_cast<size_t>(b) * side * side, 0.0f);
  std::uniform_int_distribution<size_t> pick(0, train.size() - 1);
  std::uniform_int_distribution<int> offset(0, side - kItemSide);
  std::bernoulli_distribution two(c.two_item_fraction);
  std::vector<float> canvas(kCanvasPixels);
  for (int i = 0; i < b; ++i) {
    std::fill(canvas.begin(), canvas.end(), 0.0f);
    const int items = two(rng) ? 2 : 1;
    for (int k = 0; k < items; ++k) PasteItem(train.Item(pick(rng)), {offset(rng), offset(rng)}, canvas);
    for (int r = 0; r < side; ++r) {
      std::copy_n(canvas.begin() + r * kCanvasSide, side, data.begin() + (i * side + r) * side);
    }
  }
  return torch::from_blob(data.data(), {b, 1, side, side}, torch::kFloat).clone();
}

// `count` full canvases of `split`'s items placed with the experts' position prior.
torch::Tensor PriorCanvases(const FashionMnistSplit& split, int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, split.size() - 1);
  std::vector<float> data(static_cast<size_t>(count) * kCanvasPixels, 0.0f);
  for (int i = 0; i < count; ++i) {
    PasteItem(split.Item(pick(rng)), SampleCentredOffset(rng),
              std::span<float>(data).subspan(static_cast<size_t>(i) * kCanvasPixels, kCanvasPixels));
  }
  return torch::from_blob(data.data(), {count, 1, kCanvasSide, kCanvasSide}, torch::kFloat)
      .clone();
}

}  // namespace

struct Autoencoder::Impl {
  AutoencoderNet net;
  std::string id;
  std::string metadata;
};

Autoencoder::Autoencoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Autoencoder::~Autoencoder() = default;

StatusOr<std::unique_ptr<Autoencoder>> Autoencoder::Load(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  DND_ASSIGN_OR_RETURN(impl->metadata, LoadModelFile(*impl->net, path));
  impl->net->eval();
  impl->id = "fmnist-ae-4x16x16-" + WeightsHash(*impl->net);
  return std::unique_ptr<Autoencoder>(new Autoencoder(std::move(impl)));
}

StatusOr<std::vector<float>> Autoencoder::Encode(std::span<const float> canvases) const {
  if (canvases.empty() || canvases.size() % kCanvasPixels != 0) {
    return InvalidArgumentError("Encode takes whole 64x64 canvases (" +
                                std::to_string(canvases.size()) + " floats)");
  }
  const int64_t n = static_cast<int64_t>(canvases.size() / kCanvasPixels);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::from_blob(const_cast<float*>(canvases.data()),
                                           {n, 1, kCanvasSide, kCanvasSide}, torch::kFloat);
  const torch::Tensor z = impl_->net->Encode(x).contiguous();
  return std::vector<float>(z.data_ptr<float>(), z.data_ptr<float>() + z.numel());
}

StatusOr<std::vector<float>> Autoencoder::Decode(std::span<const float> latents) const {
  if (latents.empty() || latents.size() % kLatentValues != 0) {
    return InvalidArgumentError("Decode takes whole 4x16x16 latents (" +
                                std::to_string(latents.size()) + " floats)");
  }
  const int64_t n = static_cast<int64_t>(latents.size() / kLatentValues);
  torch::NoGradGuard no_grad;
  const torch::Tensor z = torch::from_blob(const_cast<float*>(latents.data()),
                                           {n, kLatentChannels, kLatentSide, kLatentSide},
                                           torch::kFloat);
  const torch::Tensor x = impl_->net->Decode(z).clamp(0.0, 1.0).contiguous();
  return std::vector<float>(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
}

const std::string& Autoencoder::latent_space_id() const { return impl_->id; }
const std::string& Autoencoder::metadata_json() const { return impl_->metadata; }

StatusOr<ReconstructionQuality> EvaluateAutoencoder(const Autoencoder& autoencoder,
                                                    const std::string& data_dir, int count,
                                                    uint64_t seed) {
  DND_ASSIGN_OR_RETURN(FashionMnistSplit test, LoadFashionMnistSplit(data_dir, "t10k"));
  const torch::Tensor canvases = PriorCanvases(test, count, seed);
  const std::span<const float> flat(canvases.data_ptr<float>(), canvases.numel());
  DND_ASSIGN_OR_RETURN(std::vector<float> z, autoencoder.Encode(flat));
  DND_ASSIGN_OR_RETURN(std::vector<float> back, autoencoder.Decode(z));
  ReconstructionQuality q;
  for (int i = 0; i < count; ++i) {
    double se = 0.0;
    for (int p = 0; p < kCanvasPixels; ++p) {
      const double d = back[static_cast<size_t>(i) * kCanvasPixels + p] -
                       flat[static_cast<size_t>(i) * kCanvasPixels + p];
      se += d * d;
    }
    const double mse = se / kCanvasPixels;
    q.mse += mse / count;
    q.psnr_db += 10.0 * std::log10(1.0 / std::max(mse, 1e-12)) / count;
  }
  return q;
}

StatusOr<TrainReport> TrainAutoencoder(const AutoencoderTrainConfig& config,
                                       const ProgressFn& progress) {
  const TrainOptions& t = config.train;
  if (t.out.empty()) return InvalidArgumentError("no output file (out)");
  if (config.crop_side < kItemSide || config.crop_side > kCanvasSide || config.crop_side % 4 != 0) {
    return InvalidArgumentError("crop_side must be a multiple of 4 in [28, 64]");
  }
  if (t.steps < 1 || t.batch_size < 1) return InvalidArgumentError("steps and batch_size >= 1");
  DND_ASSIGN_OR_RETURN(std::string device_name, ResolveDevice(t.device));
  const torch::Device device(device_name);
  DND_ASSIGN_OR_RETURN(FashionMnistSplit train, LoadFashionMnistSplit(t.data_dir, "train"));

  torch::manual_seed(t.seed);
  AutoencoderNet net;
  net->to(device);
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(t.learning_rate));
  const std::string config_json = ConfigJson(config).dump();
  auto step_fn = [&](int step) {
    const torch::Tensor x = TrainingBatch(train, config, StepSeed(t.seed, step, 1)).to(device);
    const torch::Tensor y = net->DecodeRaw(net->EncodeRaw(x));
    // Squared error plus a little absolute error: sharper edges than squared error alone.
    const torch::Tensor loss = torch::mse_loss(y, x) + 0.1 * torch::l1_loss(y, x);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    return loss.item<double>();
  };
  DND_ASSIGN_OR_RETURN(LoopResult loop,
                       RunTrainingLoop(*net, nullptr, 0.0, optimizer, t, config_json, step_fn,
                                       progress));
  if (!loop.finished) return StoppedReport(t, device_name, loop);
  // Normalise the latent over canvases with the experts' position prior (train split).
  {
    torch::NoGradGuard no_grad;
    net->eval();
    const torch::Tensor canvases =
        PriorCanvases(train, config.normalisation_canvases, StepSeed(t.seed, 0, 2)).to(device);
    const torch::Tensor z = net->EncodeRaw(canvases);
    net->latent_mean.copy_(z.mean({0, 2, 3}, /*keepdim=*/true));
    net->latent_std.copy_(z.std({0, 2, 3}, /*unbiased=*/true, /*keepdim=*/true).clamp_min(1e-3));
  }
  nlohmann::json meta = {{"config", ConfigJson(config)},
                         {"final_train_loss", loop.final_loss},
                         {"device", device_name}};
  DND_RETURN_IF_ERROR(SaveModelFile(*net, meta.dump(), t.out));
  DND_ASSIGN_OR_RETURN(std::unique_ptr<Autoencoder> saved, Autoencoder::Load(t.out));
  DND_ASSIGN_OR_RETURN(ReconstructionQuality q,
                       EvaluateAutoencoder(*saved, t.data_dir, config.eval_canvases, 12345));
  meta["psnr_test_db"] = q.psnr_db;
  meta["mse_test"] = q.mse;
  meta["latent_space_id"] = saved->latent_space_id();
  DND_RETURN_IF_ERROR(SaveModelFile(*net, meta.dump(), t.out));
  TrainReport report{.out = t.out,
                     .device = device_name,
                     .seconds = loop.seconds,
                     .steps_run = loop.steps_run,
                     .finished = true,
                     .metrics = {{"psnr_test_db", q.psnr_db},
                                 {"mse_test", q.mse},
                                 {"final_train_loss", loop.final_loss}}};
  return report;
}

}  // namespace dnd::models
