// The experts' cross-attention UNet (unet_expert.h): network, training, and the "neural" worker
// backend.
#include "worker/models/unet_expert.h"

#include <torch/torch.h>

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "worker/experts/fashion_mnist.h"
#include "worker/experts/utility_maps.h"
#include "worker/models/autoencoder.h"
#include "worker/models/canvases.h"
#include "worker/models/sampling.h"
#include "worker/models/torch_support.h"

namespace dnd::models {
namespace {

constexpr int kTrainTimesteps = 1000;
constexpr int64_t kStartToken = 0;
constexpr int64_t kNullToken = 1;
constexpr int64_t kFirstConceptToken = 2;

torch::nn::Conv2d Conv(int in, int out, int stride = 1, int kernel = 3) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2));
}
torch::nn::GroupNorm Norm(int channels) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(8, channels));
}

// GN-SiLU-conv twice, with the time embedding added in between; 1x1 skip when widths differ.
struct ResBlockImpl : torch::nn::Module {
  ResBlockImpl(int in, int out, int time_dim) {
    n1 = register_module("n1", Norm(in));
    c1 = register_module("c1", Conv(in, out));
    time = register_module("time", torch::nn::Linear(time_dim, out));
    n2 = register_module("n2", Norm(out));
    c2 = register_module("c2", Conv(out, out));
    if (in != out) skip = register_module("skip", Conv(in, out, 1, 1));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb) {
    torch::Tensor h = c1(torch::silu(n1(x)));
    h = h + time(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1);
    h = c2(torch::silu(n2(h)));
    return (skip ? skip(x) : x) + h;
  }
  torch::nn::GroupNorm n1{nullptr}, n2{nullptr};
  torch::nn::Conv2d c1{nullptr}, c2{nullptr}, skip{nullptr};
  torch::nn::Linear time{nullptr};
};
TORCH_MODULE(ResBlock);

// Cross-attention from each position's features (queries) to the token sequence (keys, values).
// Returns the residual output and the attention probabilities [B, heads, H*W, T].
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int channels, int token_dim, int heads) : heads(heads) {
    norm = register_module("norm", Norm(channels));
    q = register_module("q", torch::nn::Linear(torch::nn::LinearOptions(channels, channels).bias(false)));
    k = register_module("k", torch::nn::Linear(torch::nn::LinearOptions(token_dim, channels).bias(false)));
    v = register_module("v", torch::nn::Linear(torch::nn::LinearOptions(token_dim, channels).bias(false)));
    o = register_module("o", torch::nn::Linear(channels, channels));
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x,
                                                  const torch::Tensor& tokens) {
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t t = tokens.size(1), dh = c / heads;
    const torch::Tensor seq = norm(x).flatten(2).transpose(1, 2);               // [B, HW, C]
    const torch::Tensor qs = q(seq).view({b, h * w, heads, dh}).transpose(1, 2);  // [B, h, HW, d]
    const torch::Tensor ks = k(tokens).view({b, t, heads, dh}).transpose(1, 2);   // [B, h, T, d]
    const torch::Tensor vs = v(tokens).view({b, t, heads, dh}).transpose(1, 2);
    const torch::Tensor probs =
        torch::softmax(torch::matmul(qs, ks.transpose(-1, -2)) / std::sqrt(double(dh)), -1);
    const torch::Tensor out = torch::matmul(probs, vs).transpose(1, 2).reshape({b, h * w, c});
    return {x + o(out).transpose(1, 2).view({b, c, h, w}), probs};
  }
  int heads;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
};
TORCH_MODULE(CrossAttention);

struct UNetShape {
  int num_concepts = 0;
  int channels = 64;
  int heads = 4;
  int token_dim = 64;
};

// 16x16 (C) -> 8x8 (2C) -> 16x16 (C), cross-attention at both resolutions. The localisation map
// is the attention on the concept token (slot 1) at 16x16, averaged over heads and the two 16x16
// attention layers.
struct UNetImpl : torch::nn::Module {
  explicit UNetImpl(const UNetShape& s) : shape(s) {
    const int c = s.channels, time_dim = 2 * c;
    tokens = register_module("tokens", torch::nn::Embedding(s.num_concepts + 2, s.token_dim));
    time1 = register_module("time1", torch::nn::Linear(c, time_dim));
    time2 = register_module("time2", torch::nn::Linear(time_dim, time_dim));
    // The concept also enters through the time embedding (as SDXL adds its pooled text embedding),
    // so conditioning does not rest on the attention alone.
    concept_embedding =
        register_module("concept_embedding", torch::nn::Embedding(s.num_concepts + 2, time_dim));
    conv_in = register_module("conv_in", Conv(kLatentChannels, c));
    r1 = register_module("r1", ResBlock(c, c, time_dim));
    a1 = register_module("a1", CrossAttention(c, s.token_dim, s.heads));
    down = register_module("down", Conv(c, 2 * c, 2));
    r2 = register_module("r2", ResBlock(2 * c, 2 * c, time_dim));
    a2 = register_module("a2", CrossAttention(2 * c, s.token_dim, s.heads));
    r3 = register_module("r3", ResBlock(2 * c, 2 * c, time_dim));
    up = register_module("up", Conv(2 * c, c));
    r4 = register_module("r4", ResBlock(2 * c, c, time_dim));
    a3 = register_module("a3", CrossAttention(c, s.token_dim, s.heads));
    norm_out = register_module("norm_out", Norm(c));
    conv_out = register_module("conv_out", Conv(c, kLatentChannels));
    torch::NoGradGuard no_grad;
    conv_out->weight.zero_();
    conv_out->bias.zero_();
  }

  torch::Tensor TimeEmbedding(const torch::Tensor& t) {
    const int half = shape.channels / 2;
    const torch::Tensor freqs =
        torch::exp(-std::log(10000.0) * torch::arange(half, t.options().dtype(torch::kFloat)) / half);
    const torch::Tensor args = t.to(torch::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
    const torch::Tensor emb = torch::cat({torch::sin(args), torch::cos(args)}, 1);
    return time2(torch::silu(time1(emb)));
  }

  // x [B, 4, 16, 16], t [B] (int64), slot [B] (int64 token index: a concept or kNullToken).
  // Returns epsilon [B, 4, 16, 16] and the localisation map [B, 16, 16].
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& t,
                                                  const torch::Tensor& slot) {
    const int64_t b = x.size(0);
    const torch::Tensor ids =
        torch::stack({torch::full({b}, kStartToken, slot.options()), slot}, 1);  // [B, 2]
    const torch::Tensor ctx = tokens(ids);
    const torch::Tensor temb = TimeEmbedding(t) + concept_embedding(slot);
    namespace F = torch::nn::functional;
    torch::Tensor h = conv_in(x);
    h = r1(h, temb);
    auto [h1, p1] = a1(h, ctx);
    torch::Tensor d = down(h1);
    d = r2(d, temb);
    d = a2(d, ctx).first;
    d = r3(d, temb);
    torch::Tensor u = up(F::interpolate(
        d, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest)));
    u = r4(torch::cat({u, h1}, 1), temb);
    auto [u2, p3] = a3(u, ctx);
    const torch::Tensor eps = conv_out(torch::silu(norm_out(u2)));
    const torch::Tensor loc =
        (p1.select(-1, 1).mean(1) + p3.select(-1, 1).mean(1)).mul(0.5).view(
            {b, x.size(2), x.size(3)});
    return {eps, loc};
  }

  UNetShape shape;
  torch::nn::Embedding tokens{nullptr}, concept_embedding{nullptr};
  torch::nn::Linear time1{nullptr}, time2{nullptr};
  torch::nn::Conv2d conv_in{nullptr}, down{nullptr}, up{nullptr}, conv_out{nullptr};
  ResBlock r1{nullptr}, r2{nullptr}, r3{nullptr}, r4{nullptr};
  CrossAttention a1{nullptr}, a2{nullptr}, a3{nullptr};
  torch::nn::GroupNorm norm_out{nullptr};
};
TORCH_MODULE(UNet);

nlohmann::json ConfigJson(const ExpertTrainConfig& c) {
  const TrainOptions& t = c.train;
  return {{"model", "expert"},
          {"name", c.name},
          {"concepts", c.concepts},
          {"seed", t.seed},
          {"steps", t.steps},
          {"batch_size", t.batch_size},
          {"learning_rate", t.learning_rate},
          {"warmup_steps", t.warmup_steps},
          {"channels", c.channels},
          {"heads", c.heads},
          {"token_dim", c.token_dim},
          {"cfg_dropout", c.cfg_dropout},
          {"position_prior_std_px", c.position_prior_std_px},
          {"pool_canvases", c.pool_canvases},
          {"ema_decay", c.ema_decay},
          {"attention_loss_weight", c.attention_loss_weight}};
}

// The neural backend of the expert interface.
class NeuralExpert final : public experts::Expert {
 public:
  NeuralExpert(experts::ExpertInfo info, UNet net, std::vector<int64_t> slots,
               experts::ScoreMapOptions score_map)
      : info_(std::move(info)),
        net_(std::move(net)),
        slots_(std::move(slots)),
        score_map_(score_map),
        alphas_cumprod_(ScaledLinearAlphasCumprod()) {}

  const experts::ExpertInfo& Describe() const override { return info_; }

  std::vector<StatusOr<experts::StepOutput>> Step(
      std::span<const experts::StepInput> batch) override {
    std::vector<StatusOr<experts::StepOutput>> results(batch.size(),
                                                       InternalError("not computed"));
    std::vector<size_t> valid = Validate(batch, results);
    if (valid.empty()) return results;
    try {
      torch::NoGradGuard no_grad;
      std::vector<const experts::StepInput*> items;
      for (size_t i : valid) items.push_back(&batch[i]);
      const Forward f = Run(items);
      const torch::Tensor utility = Utilities(items, f).contiguous();
      const torch::Tensor cond = f.eps_cond.contiguous(), uncond = f.eps_uncond.contiguous();
      const int64_t values = static_cast<int64_t>(info_.latent.NumValues());
      const int64_t positions = static_cast<int64_t>(info_.latent.NumPositions());
      for (size_t k = 0; k < valid.size(); ++k) {
        experts::StepOutput out;
        const float* c = cond.data_ptr<float>() + k * values;
        const float* u = uncond.data_ptr<float>() + k * values;
        const float* m = utility.data_ptr<float>() + k * positions;
        out.prediction_cond.assign(c, c + values);
        out.prediction_uncond.assign(u, u + values);
        out.utility.assign(m, m + positions);
        results[valid[k]] = std::move(out);
      }
    } catch (const std::exception& e) {
      for (size_t i : valid) results[i] = InternalError(std::string("model failed: ") + e.what());
    }
    return results;
  }

  std::vector<StatusOr<std::vector<float>>> Gradient(
      std::span<const experts::GradientInput> batch) override {
    std::vector<StatusOr<std::vector<float>>> results(batch.size(),
                                                      InternalError("not computed"));
    std::vector<size_t> valid = experts::PartitionValidItems(info_, batch, results);
    for (auto it = valid.begin(); it != valid.end();) {
      if (Status s = CheckTimestep(batch[*it].step); !s.ok()) {
        results[*it] = s;
        it = valid.erase(it);
      } else {
        ++it;
      }
    }
    if (valid.empty()) return results;
    try {
      torch::AutoGradMode enable_grad(true);
      std::vector<const experts::StepInput*> items;
      std::vector<float> q;
      for (size_t i : valid) {
        items.push_back(&batch[i].step);
        q.insert(q.end(), batch[i].allocation.begin(), batch[i].allocation.end());
      }
      const int64_t n = static_cast<int64_t>(items.size());
      torch::Tensor x = Latents(items).requires_grad_(true);
      const Forward f = Run(items, x);
      const torch::Tensor utility = Utilities(items, f);  // [n, H, W]
      const torch::Tensor weights =
          torch::from_blob(q.data(), {n, info_.latent.height, info_.latent.width}, torch::kFloat);
      const torch::Tensor objective = (utility * weights).sum();
      const torch::Tensor grad = torch::autograd::grad({objective}, {x})[0].contiguous();
      const int64_t values = static_cast<int64_t>(info_.latent.NumValues());
      for (size_t k = 0; k < valid.size(); ++k) {
        const float* g = grad.data_ptr<float>() + k * values;
        results[valid[k]] = std::vector<float>(g, g + values);
      }
    } catch (const std::exception& e) {
      for (size_t i : valid) results[i] = InternalError(std::string("model failed: ") + e.what());
    }
    return results;
  }

 private:
  struct Forward {
    torch::Tensor eps_cond, eps_uncond, localisation;
  };

  static Status CheckTimestep(const experts::StepInput& input) {
    if (input.timestep < 0 || input.timestep >= kTrainTimesteps) {
      return InvalidArgumentError("timestep " + std::to_string(input.timestep) +
                                  " is outside the expert's training schedule [0, 999]");
    }
    return OkStatus();
  }

  std::vector<size_t> Validate(std::span<const experts::StepInput> batch,
                               std::vector<StatusOr<experts::StepOutput>>& results) const {
    std::vector<size_t> valid = experts::PartitionValidItems(info_, batch, results);
    std::vector<size_t> kept;
    for (size_t i : valid) {
      if (Status s = CheckTimestep(batch[i]); !s.ok()) {
        results[i] = s;
      } else {
        kept.push_back(i);
      }
    }
    return kept;
  }

  torch::Tensor Latents(const std::vector<const experts::StepInput*>& items) const {
    const int64_t n = static_cast<int64_t>(items.size());
    const int64_t values = static_cast<int64_t>(info_.latent.NumValues());
    torch::Tensor x = torch::empty({n, kLatentChannels, kLatentSide, kLatentSide}, torch::kFloat);
    for (int64_t k = 0; k < n; ++k) {
      std::copy(items[k]->latent.begin(), items[k]->latent.end(), x.data_ptr<float>() + k * values);
    }
    return x;
  }

  // One batched forward: conditional and unconditional halves together.
  Forward Run(const std::vector<const experts::StepInput*>& items,
              std::optional<torch::Tensor> latents = std::nullopt) {
    const int64_t n = static_cast<int64_t>(items.size());
    const torch::Tensor x = latents ? *latents : Latents(items);
    std::vector<int64_t> t(n), slot(n);
    for (int64_t k = 0; k < n; ++k) {
      t[k] = items[k]->timestep;
      slot[k] = slots_[info_.ConceptIndex(items[k]->concept_name)];
    }
    const torch::Tensor tt = torch::tensor(t, torch::kLong);
    const torch::Tensor ss = torch::tensor(slot, torch::kLong);
    auto [eps, loc] = net_->forward(torch::cat({x, x}), torch::cat({tt, tt}),
                                    torch::cat({ss, torch::full({n}, kNullToken, torch::kLong)}));
    return {eps.slice(0, 0, n), eps.slice(0, n), loc.slice(0, 0, n)};
  }

  // Each item's utility map of its requested kind, [n, H, W].
  torch::Tensor Utilities(const std::vector<const experts::StepInput*>& items, const Forward& f) {
    std::vector<torch::Tensor> maps;
    torch::Tensor score, attention;
    for (size_t k = 0; k < items.size(); ++k) {
      if (items[k]->utility == experts::UtilityKind::kScore) {
        if (!score.defined()) score = experts::ScoreUtility(f.eps_cond, f.eps_uncond, score_map_);
        maps.push_back(score[k]);
      } else {
        if (!attention.defined()) attention = experts::AttentionUtility(f.localisation);
        maps.push_back(attention[k]);
      }
    }
    return torch::stack(maps);
  }

  const experts::ExpertInfo info_;
  UNet net_;
  const std::vector<int64_t> slots_;  // token index of each served concept
  const experts::ScoreMapOptions score_map_;
  const std::vector<double> alphas_cumprod_;
};

}  // namespace

StatusOr<TrainReport> TrainExpert(const ExpertTrainConfig& config, const ProgressFn& progress) {
  const TrainOptions& t = config.train;
  if (t.out.empty()) return InvalidArgumentError("no output file (out)");
  if (config.name.empty()) return InvalidArgumentError("the expert needs a name");
  if (config.concepts.empty()) return InvalidArgumentError("the expert needs concepts");
  if (config.channels % 8 != 0 || config.channels % config.heads != 0) {
    return InvalidArgumentError("channels must be a multiple of 8 and of heads");
  }
  if (t.steps < 1 || t.batch_size < 1) return InvalidArgumentError("steps and batch_size >= 1");
  std::vector<int> labels;
  for (const std::string& c : config.concepts) {
    DND_ASSIGN_OR_RETURN(int label, experts::FashionMnistLabel(c));
    labels.push_back(label);
  }
  DND_ASSIGN_OR_RETURN(std::string device_name, ResolveDevice(t.device));
  const torch::Device device(device_name);
  DND_ASSIGN_OR_RETURN(std::unique_ptr<Autoencoder> ae, Autoencoder::Load(config.autoencoder));
  DND_ASSIGN_OR_RETURN(FashionMnistSplit train, LoadFashionMnistSplit(t.data_dir, "train"));

  // The pool: canvases of the organisation's items at prior positions, encoded once.
  const std::vector<size_t> indices = train.IndicesOf(labels);
  std::vector<int64_t> pool_slot(config.pool_canvases);
  std::vector<float> pool;
  // Each canvas's footprint at latent resolution: the fraction of each 4x4 pixel cell that the
  // item covers (pixels above 0.1), the target of the attention map.
  std::vector<float> pool_mask(static_cast<size_t>(config.pool_canvases) * kLatentSide * kLatentSide);
  {
    std::mt19937_64 rng(StepSeed(t.seed, 0, 3));
    std::uniform_int_distribution<size_t> pick(0, indices.size() - 1);
    const int chunk = 512;
    std::vector<float> canvases;
    for (int start = 0; start < config.pool_canvases; start += chunk) {
      const int count = std::min(chunk, config.pool_canvases - start);
      canvases.assign(static_cast<size_t>(count) * kCanvasPixels, 0.0f);
      for (int i = 0; i < count; ++i) {
        const size_t item = indices[pick(rng)];
        const auto it = std::find(labels.begin(), labels.end(), train.labels[item]);
        pool_slot[start + i] = kFirstConceptToken + (it - labels.begin());
        PasteItem(train.Item(item), SampleCentredOffset(rng, config.position_prior_std_px),
                  std::span<float>(canvases).subspan(static_cast<size_t>(i) * kCanvasPixels,
                                                     kCanvasPixels));
      }
      for (int i = 0; i < count; ++i) {
        float* mask = pool_mask.data() + static_cast<size_t>(start + i) * kLatentSide * kLatentSide;
        const float* canvas = canvases.data() + static_cast<size_t>(i) * kCanvasPixels;
        for (int y = 0; y < kCanvasSide; ++y) {
          for (int x = 0; x < kCanvasSide; ++x) {
            if (canvas[y * kCanvasSide + x] > 0.1f) mask[(y / 4) * kLatentSide + x / 4] += 1.0f / 16;
          }
        }
      }
      DND_ASSIGN_OR_RETURN(std::vector<float> z, ae->Encode(canvases));
      pool.insert(pool.end(), z.begin(), z.end());
    }
  }
  const torch::Tensor pool_latents =
      torch::from_blob(pool.data(), {config.pool_canvases, kLatentChannels, kLatentSide, kLatentSide},
                       torch::kFloat)
          .to(device);
  const torch::Tensor pool_slots = torch::tensor(pool_slot, torch::kLong).to(device);
  const torch::Tensor pool_masks =
      torch::from_blob(pool_mask.data(), {config.pool_canvases, kLatentSide, kLatentSide},
                       torch::kFloat)
          .to(device);
  std::vector<double> ac = ScaledLinearAlphasCumprod();
  const torch::Tensor alphas_cumprod =
      torch::tensor(ac, torch::kDouble).to(torch::kFloat).to(device);

  torch::manual_seed(t.seed);
  const UNetShape shape{.num_concepts = static_cast<int>(config.concepts.size()),
                        .channels = config.channels,
                        .heads = config.heads,
                        .token_dim = config.token_dim};
  UNet net(shape), ema(shape);
  net->to(device);
  ema->to(device);
  {
    torch::NoGradGuard no_grad;
    auto ep = ema->parameters();
    auto np = net->parameters();
    for (size_t i = 0; i < ep.size(); ++i) ep[i].copy_(np[i]);
  }
  torch::optim::AdamW optimizer(net->parameters(),
                                torch::optim::AdamWOptions(t.learning_rate).weight_decay(0.0));
  const std::string config_json = ConfigJson(config).dump();
  auto step_fn = [&](int step) {
    // Every draw of this step comes from CPU generators seeded by (seed, step): the same batch on
    // any device, with or without --resume.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(StepSeed(t.seed, step, 4));
    const int64_t b = t.batch_size;
    const torch::Tensor pick =
        torch::randint(config.pool_canvases, {b}, gen, torch::kLong).to(device);
    const torch::Tensor tt = torch::randint(kTrainTimesteps, {b}, gen, torch::kLong).to(device);
    const torch::Tensor drop =
        (torch::rand({b}, gen) < config.cfg_dropout).to(device);
    const torch::Tensor noise =
        torch::randn({b, kLatentChannels, kLatentSide, kLatentSide}, gen).to(device);
    const torch::Tensor x0 = pool_latents.index_select(0, pick);
    const torch::Tensor slot =
        torch::where(drop, torch::full({b}, kNullToken, pick.options()), pool_slots.index_select(0, pick));
    const torch::Tensor a = alphas_cumprod.index_select(0, tt).view({b, 1, 1, 1});
    const torch::Tensor xt = a.sqrt() * x0 + (1 - a).sqrt() * noise;
    auto [eps, loc] = net->forward(xt, tt, slot);
    // Denoising loss, plus the attention on the concept token pulled towards the item's footprint
    // (conditional samples only): this is what makes the map a localisation map.
    const torch::Tensor keep = drop.logical_not().to(torch::kFloat).view({b, 1, 1});
    const torch::Tensor attention_error =
        ((loc - pool_masks.index_select(0, pick)).pow(2) * keep).sum() /
        (keep.sum() * kLatentSide * kLatentSide + 1.0);
    const torch::Tensor loss =
        torch::mse_loss(eps, noise) + config.attention_loss_weight * attention_error;
    optimizer.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(net->parameters(), 1.0);
    optimizer.step();
    return loss.item<double>();
  };
  DND_ASSIGN_OR_RETURN(LoopResult loop, RunTrainingLoop(*net, ema.get(), config.ema_decay, optimizer,
                                                        t, config_json, step_fn, progress));
  if (!loop.finished) return StoppedReport(t, device_name, loop);
  nlohmann::json meta = {{"config", ConfigJson(config)},
                         {"latent_space_id", ae->latent_space_id()},
                         {"final_train_loss", loop.final_loss},
                         {"device", device_name}};
  DND_RETURN_IF_ERROR(SaveModelFile(*ema, meta.dump(), t.out));
  return TrainReport{.out = t.out,
                     .device = device_name,
                     .seconds = loop.seconds,
                     .steps_run = loop.steps_run,
                     .finished = true,
                     .metrics = {{"final_train_loss", loop.final_loss}}};
}

StatusOr<std::unique_ptr<experts::Expert>> CreateNeuralExpert(const experts::ExpertConfig& config) {
  DND_ASSIGN_OR_RETURN(std::string meta_text, ReadModelMetadata(config.model_path));
  nlohmann::json meta;
  UNetShape shape;
  std::vector<std::string> concepts;
  std::string latent_id;
  try {
    meta = nlohmann::json::parse(meta_text);
    const nlohmann::json& c = meta.at("config");
    if (c.at("model").get<std::string>() != "expert") {
      return DataLossError(config.model_path + " is a " + c.at("model").get<std::string>() +
                           " model, not an expert");
    }
    concepts = c.at("concepts").get<std::vector<std::string>>();
    shape = {.num_concepts = static_cast<int>(concepts.size()),
             .channels = c.at("channels").get<int>(),
             .heads = c.at("heads").get<int>(),
             .token_dim = c.at("token_dim").get<int>()};
    latent_id = meta.at("latent_space_id").get<std::string>();
  } catch (const std::exception& e) {
    return DataLossError(config.model_path + ": unreadable expert metadata: " + e.what());
  }
  UNet net(shape);
  DND_RETURN_IF_ERROR(LoadModelFile(*net, config.model_path).status());
  net->eval();
  experts::ExpertInfo info;
  info.name = config.name.empty() ? meta["config"]["name"].get<std::string>() : config.name;
  info.latent = {.id = latent_id,
                 .channels = kLatentChannels,
                 .height = kLatentSide,
                 .width = kLatentSide};
  info.prediction_type = experts::PredictionType::kEpsilon;
  info.utilities = {experts::UtilityKind::kScore, experts::UtilityKind::kAttention};
  std::vector<int64_t> slots;
  const std::vector<std::string>& wanted = config.concepts.empty() ? concepts : config.concepts;
  for (const std::string& name : wanted) {
    const auto it = std::find(concepts.begin(), concepts.end(), name);
    if (it == concepts.end()) {
      std::string known;
      for (const std::string& c : concepts) known += (known.empty() ? "" : ", ") + c;
      return InvalidArgumentError("expert file " + config.model_path + " does not know concept '" +
                                  name + "' (it knows " + known + ")");
    }
    info.concepts.push_back(name);
    slots.push_back(kFirstConceptToken + (it - concepts.begin()));
  }
  return std::unique_ptr<experts::Expert>(
      new NeuralExpert(std::move(info), std::move(net), std::move(slots), config.score_map));
}

StatusOr<std::unique_ptr<experts::Expert>> CreateAnyExpert(const experts::ExpertConfig& config) {
  if (config.backend == "neural") return CreateNeuralExpert(config);
  return experts::CreateExpert(config);
}

}  // namespace dnd::models
