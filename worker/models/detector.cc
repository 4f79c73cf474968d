// The presence detector (detector.h): network, training with augmentations, evaluation.
#include "worker/models/detector.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "worker/experts/fashion_mnist.h"
#include "worker/models/torch_support.h"

namespace dnd::models {
namespace {

torch::nn::Conv2d Conv(int in, int out, int kernel, int stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

// Fully convolutional: 64x64 -> per-class logits on an 8x8 grid (each cell sees ~60 px), then the
// maximum over the grid (a class is present if it is present somewhere).
struct DetectorNetImpl : torch::nn::Module {
  DetectorNetImpl() {
    const int widths[] = {1, 32, 64, 64, 128, 128};
    const int kernels[] = {5, 3, 3, 3, 3};
    const int strides[] = {2, 2, 1, 2, 1};
    for (int i = 0; i < 5; ++i) {
      convs.push_back(register_module("conv" + std::to_string(i),
                                      Conv(widths[i], widths[i + 1], kernels[i], strides[i])));
      norms.push_back(register_module("norm" + std::to_string(i),
                                      torch::nn::BatchNorm2d(widths[i + 1])));
    }
    head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(128, kNumClasses, 1)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (size_t i = 0; i < convs.size(); ++i) x = torch::relu(norms[i](convs[i](x)));
    return std::get<0>(head(x).flatten(2).max(2));  // [B, 10] logits
  }
  std::vector<torch::nn::Conv2d> convs;
  std::vector<torch::nn::BatchNorm2d> norms;
  torch::nn::Conv2d head{nullptr};
};
TORCH_MODULE(DetectorNet);

nlohmann::json ConfigJson(const DetectorTrainConfig& c) {
  const TrainOptions& t = c.train;
  return {{"model", "detector"},
          {"seed", t.seed},
          {"steps", t.steps},
          {"batch_size", t.batch_size},
          {"learning_rate", t.learning_rate},
          {"warmup_steps", t.warmup_steps},
          {"max_blur_sigma_px", c.max_blur_sigma_px},
          {"max_noise_std", c.max_noise_std},
          {"empty_fraction", c.empty_fraction}};
}

// A training batch: canvases with 0 to 3 items of any classes (repeats and overlaps allowed) at
// uniform positions, then per canvas a random blur, contrast and noise. Returns (x, labels).
std::pair<torch::Tensor, torch::Tensor> TrainingBatch(const FashionMnistSplit& train,
                                                      const DetectorTrainConfig& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int b = c.train.batch_size;
  std::vector<float> canvases(static_cast<size_t>(b) * kCanvasPixels, 0.0f);
  std::vector<float> labels(static_cast<size_t>(b) * kNumClasses, 0.0f);
  std::uniform_int_distribution<size_t> pick(0, train.size() - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < b; ++i) {
    const int items = unit(rng) < c.empty_fraction ? 0 : 1 + static_cast<int>(unit(rng) * 3) % 3;
    for (int k = 0; k < items; ++k) {
      const size_t item = pick(rng);
      PasteItem(train.Item(item), SampleUniformOffset(rng),
                std::span<float>(canvases).subspan(static_cast<size_t>(i) * kCanvasPixels,
                                                   kCanvasPixels));
      labels[static_cast<size_t>(i) * kNumClasses + train.labels[item]] = 1.0f;
    }
  }
  torch::Tensor x =
      torch::from_blob(canvases.data(), {b, 1, kCanvasSide, kCanvasSide}, torch::kFloat).clone();
  // Blur: a Gaussian of sigma ~ U(0, max) per canvas (depthwise convolution, one kernel each).
  const int radius = static_cast<int>(std::ceil(3 * c.max_blur_sigma_px));
  if (radius > 0) {
    const int size = 2 * radius + 1;
    std::vector<float> kernels(static_cast<size_t>(b) * size * size);
    for (int i = 0; i < b; ++i) {
      const double sigma = unit(rng) * c.max_blur_sigma_px;
      double total = 0.0;
      for (int r = -radius; r <= radius; ++r) {
        for (int q = -radius; q <= radius; ++q) {
          const double w = sigma < 1e-3 ? (r == 0 && q == 0 ? 1.0 : 0.0)
                                        : std::exp(-(r * r + q * q) / (2 * sigma * sigma));
          kernels[(static_cast<size_t>(i) * size + r + radius) * size + q + radius] =
              static_cast<float>(w);
          total += w;
        }
      }
      for (int j = 0; j < size * size; ++j) kernels[static_cast<size_t>(i) * size * size + j] /= total;
    }
    const torch::Tensor k =
        torch::from_blob(kernels.data(), {b, 1, size, size}, torch::kFloat).clone();
    x = torch::conv2d(x.view({1, b, kCanvasSide, kCanvasSide}), k, {}, 1, radius, 1, b)
            .view({b, 1, kCanvasSide, kCanvasSide});
  }
  std::vector<float> gain(b), noise_std(b);
  for (int i = 0; i < b; ++i) {
    gain[i] = static_cast<float>(0.7 + 0.4 * unit(rng));
    noise_std[i] = static_cast<float>(unit(rng) * c.max_noise_std);
  }
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed ^ 0x5eed);
  const torch::Tensor noise = torch::randn({b, 1, kCanvasSide, kCanvasSide}, gen);
  x = (x * torch::tensor(gain).view({b, 1, 1, 1}) +
       noise * torch::tensor(noise_std).view({b, 1, 1, 1}))
          .clamp(0.0, 1.0);
  return {x, torch::from_blob(labels.data(), {b, kNumClasses}, torch::kFloat).clone()};
}

}  // namespace

struct Detector::Impl {
  DetectorNet net;
  std::string metadata;
  float threshold = 0.5f;
};

Detector::Detector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Detector::~Detector() = default;

StatusOr<std::unique_ptr<Detector>> Detector::Load(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  DND_ASSIGN_OR_RETURN(impl->metadata, LoadModelFile(*impl->net, path));
  impl->net->eval();
  return std::unique_ptr<Detector>(new Detector(std::move(impl)));
}

StatusOr<std::vector<ClassProbabilities>> Detector::Probabilities(
    std::span<const float> canvases) const {
  if (canvases.empty() || canvases.size() % kCanvasPixels != 0) {
    return InvalidArgumentError("the detector takes whole 64x64 canvases (" +
                                std::to_string(canvases.size()) + " floats)");
  }
  const int64_t n = static_cast<int64_t>(canvases.size() / kCanvasPixels);
  torch::NoGradGuard no_grad;
  std::vector<ClassProbabilities> out(n);
  for (int64_t start = 0; start < n; start += 256) {
    const int64_t count = std::min<int64_t>(256, n - start);
    const torch::Tensor x =
        torch::from_blob(const_cast<float*>(canvases.data()) + start * kCanvasPixels,
                         {count, 1, kCanvasSide, kCanvasSide}, torch::kFloat);
    const torch::Tensor p = torch::sigmoid(impl_->net->forward(x)).contiguous();
    for (int64_t i = 0; i < count; ++i) {
      std::copy_n(p.data_ptr<float>() + i * kNumClasses, kNumClasses, out[start + i].begin());
    }
  }
  return out;
}

StatusOr<std::vector<std::vector<int>>> Detector::Detect(std::span<const float> canvases) const {
  DND_ASSIGN_OR_RETURN(std::vector<ClassProbabilities> p, Probabilities(canvases));
  std::vector<std::vector<int>> out(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    for (int c = 0; c < kNumClasses; ++c) {
      if (p[i][c] >= impl_->threshold) out[i].push_back(c);
    }
  }
  return out;
}

float Detector::threshold() const { return impl_->threshold; }
const std::string& Detector::metadata_json() const { return impl_->metadata; }

StatusOr<DetectorQuality> EvaluateDetector(const Detector& detector, const std::string& data_dir,
                                           int per_count, uint64_t seed) {
  DND_ASSIGN_OR_RETURN(FashionMnistSplit test, LoadFashionMnistSplit(data_dir, "t10k"));
  std::mt19937_64 rng(seed);
  std::array<int64_t, kNumClasses> tp{}, fp{}, fn{};
  DetectorQuality q;
  for (int count = 1; count <= 3; ++count) {
    DND_ASSIGN_OR_RETURN(std::vector<Offset> offsets, SideBySideOffsets(count));
    std::vector<float> canvases(static_cast<size_t>(per_count) * kCanvasPixels, 0.0f);
    std::vector<std::vector<int>> truth(per_count);
    for (int i = 0; i < per_count; ++i) {
      std::vector<int> classes(kNumClasses);
      std::iota(classes.begin(), classes.end(), 0);
      std::shuffle(classes.begin(), classes.end(), rng);
      classes.resize(count);
      for (int k = 0; k < count; ++k) {
        const std::vector<size_t> of = test.IndicesOf(std::span<const int>(&classes[k], 1));
        std::uniform_int_distribution<size_t> pick(0, of.size() - 1);
        PasteItem(test.Item(of[pick(rng)]), offsets[k],
                  std::span<float>(canvases).subspan(static_cast<size_t>(i) * kCanvasPixels,
                                                     kCanvasPixels));
      }
      std::sort(classes.begin(), classes.end());
      truth[i] = classes;
    }
    DND_ASSIGN_OR_RETURN(std::vector<std::vector<int>> found, detector.Detect(canvases));
    int exact = 0;
    for (int i = 0; i < per_count; ++i) {
      exact += found[i] == truth[i] ? 1 : 0;
      for (int c = 0; c < kNumClasses; ++c) {
        const bool t = std::find(truth[i].begin(), truth[i].end(), c) != truth[i].end();
        const bool f = std::find(found[i].begin(), found[i].end(), c) != found[i].end();
        tp[c] += t && f;
        fp[c] += !t && f;
        fn[c] += t && !f;
      }
    }
    q.exact_set[count] = static_cast<double>(exact) / per_count;
  }
  for (int c = 0; c < kNumClasses; ++c) {
    q.precision[c] = tp[c] + fp[c] == 0 ? 1.0 : static_cast<double>(tp[c]) / (tp[c] + fp[c]);
    q.recall[c] = tp[c] + fn[c] == 0 ? 1.0 : static_cast<double>(tp[c]) / (tp[c] + fn[c]);
  }
  return q;
}

StatusOr<std::array<double, kNumClasses>> SingleItemRecall(const Detector& detector,
                                                           const std::string& data_dir,
                                                           int per_class, uint64_t seed) {
  DND_ASSIGN_OR_RETURN(FashionMnistSplit test, LoadFashionMnistSplit(data_dir, "t10k"));
  std::mt19937_64 rng(seed);
  std::array<double, kNumClasses> recall{};
  for (int c = 0; c < kNumClasses; ++c) {
    const std::vector<size_t> of = test.IndicesOf(std::span<const int>(&c, 1));
    std::uniform_int_distribution<size_t> pick(0, of.size() - 1);
    std::vector<float> canvases(static_cast<size_t>(per_class) * kCanvasPixels, 0.0f);
    for (int i = 0; i < per_class; ++i) {
      PasteItem(test.Item(of[pick(rng)]), {18, 18},
                std::span<float>(canvases).subspan(static_cast<size_t>(i) * kCanvasPixels,
                                                   kCanvasPixels));
    }
    DND_ASSIGN_OR_RETURN(std::vector<std::vector<int>> found, detector.Detect(canvases));
    int hits = 0;
    for (const auto& f : found) hits += std::find(f.begin(), f.end(), c) != f.end();
    recall[c] = static_cast<double>(hits) / per_class;
  }
  return recall;
}

StatusOr<TrainReport> TrainDetector(const DetectorTrainConfig& config, const ProgressFn& progress) {
  const TrainOptions& t = config.train;
  if (t.out.empty()) return InvalidArgumentError("no output file (out)");
  if (t.steps < 1 || t.batch_size < 1) return InvalidArgumentError("steps and batch_size >= 1");
  if (config.max_blur_sigma_px < 0 || config.max_noise_std < 0) {
    return InvalidArgumentError("augmentation strengths must be >= 0");
  }
  DND_ASSIGN_OR_RETURN(std::string device_name, ResolveDevice(t.device));
  const torch::Device device(device_name);
  DND_ASSIGN_OR_RETURN(FashionMnistSplit train, LoadFashionMnistSplit(t.data_dir, "train"));
  torch::manual_seed(t.seed);
  DetectorNet net;
  net->to(device);
  net->train();
  torch::optim::AdamW optimizer(net->parameters(),
                                torch::optim::AdamWOptions(t.learning_rate).weight_decay(1e-4));
  const std::string config_json = ConfigJson(config).dump();
  auto step_fn = [&](int step) {
    auto [x, y] = TrainingBatch(train, config, StepSeed(t.seed, step, 5));
    const torch::Tensor logits = net->forward(x.to(device));
    const torch::Tensor loss =
        torch::binary_cross_entropy_with_logits(logits, y.to(device));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    return loss.item<double>();
  };
  DND_ASSIGN_OR_RETURN(LoopResult loop,
                       RunTrainingLoop(*net, nullptr, 0.0, optimizer, t, config_json, step_fn,
                                       progress));
  if (!loop.finished) return StoppedReport(t, device_name, loop);
  nlohmann::json meta = {{"config", ConfigJson(config)},
                         {"final_train_loss", loop.final_loss},
                         {"device", device_name}};
  DND_RETURN_IF_ERROR(SaveModelFile(*net, meta.dump(), t.out));
  DND_ASSIGN_OR_RETURN(std::unique_ptr<Detector> saved, Detector::Load(t.out));
  DND_ASSIGN_OR_RETURN(DetectorQuality q, EvaluateDetector(*saved, t.data_dir,
                                                           config.eval_canvases_per_count, 2024));
  TrainReport report{.out = t.out, .device = device_name, .seconds = loop.seconds,
                     .steps_run = loop.steps_run, .metrics = {}};
  report.metrics["final_train_loss"] = loop.final_loss;
  const auto names = experts::FashionMnistClassNames();
  nlohmann::json quality;
  for (int c = 0; c < kNumClasses; ++c) {
    const std::string name(names[c]);
    report.metrics["precision/" + name] = q.precision[c];
    report.metrics["recall/" + name] = q.recall[c];
    quality["precision"][name] = q.precision[c];
    quality["recall"][name] = q.recall[c];
  }
  for (const auto& [count, accuracy] : q.exact_set) {
    report.metrics["exact_set/" + std::to_string(count)] = accuracy;
    quality["exact_set"][std::to_string(count)] = accuracy;
  }
  meta["test_quality"] = quality;
  DND_RETURN_IF_ERROR(SaveModelFile(*net, meta.dump(), t.out));
  return report;
}

}  // namespace dnd::models
