// The exact Fashion-MNIST expert (see exact_expert.h; derivation in docs/experts.md).
// Notation: pixels in [-1, 1], black = -1. Item k as d_k = pixels/127.5 (in [0, 2], background 0),
// so the clean canvas of item k at offset p is mu_kp = -1 + P_p d_k (P_p pastes at p). With
// z = x_t + sqrt(a) (x_t minus the noised black canvas):
//   ||x_t - sqrt(a) mu_kp||^2 = ||z||^2 - 2 sqrt(a) <z, P_p d_k> + a ||d_k||^2,
// and <z, P_p d_k> over all 37x37 offsets p is one valid cross-correlation (conv2d) of z with d_k.
#include "worker/experts/exact_expert.h"

#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "worker/experts/fashion_mnist.h"
#include "worker/experts/utility_maps.h"

namespace dnd::experts {
namespace {

constexpr int kSide = kExactCanvasSide;
constexpr int kOffsets = kExactOffsetsPerAxis;

// Tensors of one batched forward pass.
struct Forward {
  at::Tensor eps_cond;    // [B, 1, 64, 64]
  at::Tensor eps_uncond;  // [B, 1, 64, 64]
  at::Tensor footprint;   // [B, 64, 64], posterior-expected mask of the conditional item; or empty
};

class ExactExpert final : public Expert {
 public:
  ExactExpert(ExpertInfo info, const ExpertConfig& config, at::Tensor weights,
              at::Tensor item_sq_norms, at::Tensor log_prior)
      : info_(std::move(info)),
        score_options_(config.score_map),
        s0_sq_(config.component_std * config.component_std),
        items_per_class_(config.items_per_class),
        dtype_(config.exact_float64 ? at::kDouble : at::kFloat),
        weights_(std::move(weights)),
        items_(weights_.narrow(1, 0, 1).contiguous()),
        item_sq_norms_(std::move(item_sq_norms)),
        log_prior_(std::move(log_prior)) {}

  const ExpertInfo& Describe() const override { return info_; }

  std::vector<StatusOr<StepOutput>> Step(std::span<const StepInput> batch) override {
    std::vector<StatusOr<StepOutput>> results(batch.size(), InternalError("not computed"));
    const std::vector<size_t> valid = PartitionValidItems(info_, batch, results);
    if (valid.empty()) return results;
    try {
      c10::NoGradGuard no_grad;
      const Packed packed = Pack(batch, valid);
      const Forward forward = Run(packed);
      const at::Tensor utility = Utility(forward, packed).to(at::kFloat).contiguous();
      const at::Tensor cond = forward.eps_cond.to(at::kFloat).contiguous();
      const at::Tensor uncond = forward.eps_uncond.to(at::kFloat).contiguous();
      const size_t values = info_.latent.NumValues();
      const size_t positions = info_.latent.NumPositions();
      for (size_t b = 0; b < valid.size(); ++b) {
        StepOutput out;
        const float* c = cond.data_ptr<float>() + b * values;
        const float* u = uncond.data_ptr<float>() + b * values;
        const float* m = utility.data_ptr<float>() + b * positions;
        out.prediction_cond.assign(c, c + values);
        out.prediction_uncond.assign(u, u + values);
        out.utility.assign(m, m + positions);
        results[valid[b]] = std::move(out);
      }
    } catch (const c10::Error& error) {
      for (size_t i : valid) {
        results[i] =
            InternalError("exact expert '" + info_.name + "': " + error.what_without_backtrace());
      }
    }
    return results;
  }

  std::vector<StatusOr<std::vector<float>>> Gradient(
      std::span<const GradientInput> batch) override {
    std::vector<StatusOr<std::vector<float>>> results(batch.size(), InternalError("not computed"));
    const std::vector<size_t> valid = PartitionValidItems(info_, batch, results);
    std::vector<StepInput> steps;
    for (const GradientInput& item : batch) steps.push_back(item.step);
    if (valid.empty()) return results;
    try {
      c10::AutoGradMode grad_mode(true);
      Packed packed = Pack(steps, valid);
      packed.x.requires_grad_(true);
      const Forward forward = Run(packed);
      const at::Tensor utility = Utility(forward, packed);  // [B, 64, 64]
      const size_t positions = info_.latent.NumPositions();
      at::Tensor allocation =
          at::empty({static_cast<int64_t>(valid.size()), kSide, kSide}, at::kFloat);
      for (size_t b = 0; b < valid.size(); ++b) {
        std::memcpy(allocation.data_ptr<float>() + b * positions, batch[valid[b]].allocation.data(),
                    positions * sizeof(float));
      }
      const at::Tensor allocated = (utility * allocation.to(dtype_)).sum();
      allocated.backward();
      const at::Tensor grad = packed.x.grad().to(at::kFloat).contiguous();
      const size_t values = info_.latent.NumValues();
      for (size_t b = 0; b < valid.size(); ++b) {
        const float* g = grad.data_ptr<float>() + b * values;
        results[valid[b]] = std::vector<float>(g, g + values);
      }
    } catch (const c10::Error& error) {
      for (size_t i : valid) {
        results[i] =
            InternalError("exact expert '" + info_.name + "': " + error.what_without_backtrace());
      }
    }
    return results;
  }

 private:
  // The valid items of a batch as tensors.
  struct Packed {
    at::Tensor x;                // [B, 1, 64, 64], dtype_
    at::Tensor alpha;            // [B, 1, 1, 1], dtype_
    at::Tensor class_index;      // [B], int64: index into info_.concepts
    at::Tensor wants_attention;  // [B, 1, 1], bool
    bool any_attention = false;
  };

  Packed Pack(std::span<const StepInput> batch, const std::vector<size_t>& valid) const {
    const int64_t count = static_cast<int64_t>(valid.size());
    const size_t values = info_.latent.NumValues();
    at::Tensor x = at::empty({count, 1, kSide, kSide}, at::kFloat);
    at::Tensor alpha = at::empty({count, 1, 1, 1}, at::kDouble);
    at::Tensor class_index = at::empty({count}, at::kLong);
    at::Tensor wants_attention = at::empty({count, 1, 1}, at::kBool);
    Packed packed;
    for (int64_t b = 0; b < count; ++b) {
      const StepInput& input = batch[valid[b]];
      std::memcpy(x.data_ptr<float>() + b * values, input.latent.data(), values * sizeof(float));
      alpha.data_ptr<double>()[b] = input.alpha_cumprod;
      class_index.data_ptr<int64_t>()[b] = info_.ConceptIndex(input.concept_name);
      const bool attention = input.utility == UtilityKind::kAttention;
      wants_attention.data_ptr<bool>()[b] = attention;
      packed.any_attention = packed.any_attention || attention;
    }
    packed.x = x.to(dtype_);
    packed.alpha = alpha.to(dtype_);
    packed.class_index = class_index;
    packed.wants_attention = wants_attention;
    return packed;
  }

  // The posterior means of the conditional (requested class) and unconditional (all classes)
  // mixtures, as epsilon predictions, in one batched computation: one cross-correlation gives the
  // logits of both (docs/experts.md).
  Forward Run(const Packed& packed) const {
    const at::Tensor& x = packed.x;
    const at::Tensor& a = packed.alpha;
    const int64_t count = x.size(0);
    const at::Tensor sqrt_a = a.sqrt();
    const at::Tensor variance = a * s0_sq_ + (1.0 - a);  // v = a s0^2 + 1 - a
    // Responsibility logits of every (item, offset): log prior + (sqrt(a)<z, P_p d_k> -
    // a ||d_k||^2 / 2) / v; the ||z||^2 term is the same for all components and cancels.
    const at::Tensor correlation = at::conv2d(x + sqrt_a, items_);  // [B, N, 37, 37]
    const at::Tensor logits =
        (sqrt_a * correlation - 0.5 * a * item_sq_norms_) / variance + log_prior_;
    // Unconditional: the softmax over every item (equal weights) and one transposed convolution,
    // sum_kp r_kp P_p d_k.
    const at::Tensor r_uncond = at::softmax(logits.view({count, -1}), 1).view_as(logits);
    const at::Tensor pasted_uncond = at::conv_transpose2d(r_uncond, items_);  // [B, 1, 64, 64]
    // Conditional: only the requested class's K items have weight, so the softmax and the
    // transposed convolution run on that class's slice of channels, one group of batch items per
    // class (K of the N channels: a third of the work of masking the others with -inf for three
    // classes).
    const int64_t channels =
        packed.any_attention ? 2 : 1;  // channel 1: the footprint sum_kp r P_p m_k
    const at::Tensor& weights = packed.any_attention ? weights_ : items_;
    at::Tensor pasted_cond = at::zeros({count, channels, kSide, kSide}, x.options());
    const at::Tensor class_index = packed.class_index;
    for (int64_t c = 0; c < static_cast<int64_t>(info_.concepts.size()); ++c) {
      const at::Tensor members = (class_index == c).nonzero().view({-1});
      if (members.numel() == 0) continue;
      const at::Tensor class_logits =
          logits.index_select(0, members).narrow(1, c * items_per_class_, items_per_class_);
      const at::Tensor r_cond =
          at::softmax(class_logits.reshape({members.numel(), -1}), 1).view_as(class_logits);
      const at::Tensor pasted =
          at::conv_transpose2d(r_cond, weights.narrow(0, c * items_per_class_, items_per_class_));
      pasted_cond = pasted_cond.index_copy(0, members, pasted);
    }
    Forward forward;
    if (packed.any_attention) forward.footprint = pasted_cond.select(1, 1);
    pasted_cond = pasted_cond.narrow(1, 0, 1);
    // Per component, E[x0 | x_t, k, p] = mu_kp + c (x_t - sqrt(a) mu_kp), c = sqrt(a) s0^2 / v;
    // summed with the responsibilities: x0 = (1 - c sqrt(a)) mbar + c x_t, mbar = -1 + pasted.
    const at::Tensor c = sqrt_a * s0_sq_ / variance;
    const at::Tensor sqrt_one_minus_a = (1.0 - a).sqrt();
    auto to_eps = [&](const at::Tensor& pasted) {
      const at::Tensor x0 = (1.0 - c * sqrt_a) * (pasted - 1.0) + c * x;
      return (x - sqrt_a * x0) / sqrt_one_minus_a;
    };
    forward.eps_cond = to_eps(pasted_cond);
    forward.eps_uncond = to_eps(pasted_uncond);
    return forward;
  }

  // Each item's utility of its requested kind, [B, 64, 64].
  at::Tensor Utility(const Forward& forward, const Packed& packed) const {
    const at::Tensor score = ScoreUtility(forward.eps_cond, forward.eps_uncond, score_options_);
    if (!packed.any_attention) return score;
    const at::Tensor attention = AttentionUtility(forward.footprint);
    return at::where(packed.wants_attention, attention, score);
  }

  const ExpertInfo info_;
  const ScoreMapOptions score_options_;
  const double s0_sq_;
  const int64_t items_per_class_;  // K; item k belongs to concept k / K
  const at::ScalarType dtype_;
  const at::Tensor weights_;        // [N, 2, 28, 28]: channel 0 = d_k, channel 1 = mask of item k
  const at::Tensor items_;          // [N, 1, 28, 28]: d_k
  const at::Tensor item_sq_norms_;  // [1, N, 1, 1]: ||d_k||^2
  const at::Tensor log_prior_;      // [1, 1, 37, 37]: log position prior, normalised
};

}  // namespace

StatusOr<std::unique_ptr<Expert>> CreateExactExpert(const ExpertConfig& config) {
  if (config.concepts.empty()) {
    return InvalidArgumentError("exact expert '" + config.name + "' has no concepts");
  }
  if (config.items_per_class < 1) {
    return InvalidArgumentError("items_per_class must be at least 1");
  }
  if (!(config.component_std > 0.0) || !(config.position_prior_std_px > 0.0)) {
    return InvalidArgumentError("component_std and position_prior_std_px must be positive");
  }
  std::vector<int> labels;
  for (const std::string& name : config.concepts) {
    StatusOr<int> label = FashionMnistLabel(name);
    if (!label.ok()) return InvalidArgumentError(label.status().message());
    labels.push_back(*label);
  }
  const std::string directory =
      config.model_path.empty() ? std::string(kDefaultFashionMnistDir) : config.model_path;
  DND_ASSIGN_OR_RETURN(std::vector<FashionMnistItem> items,
                       LoadFirstItemsPerClass(directory, labels, config.items_per_class));

  const at::ScalarType dtype = config.exact_float64 ? at::kDouble : at::kFloat;
  const int64_t num_items = static_cast<int64_t>(items.size());
  at::Tensor weights = at::empty({num_items, 2, 28, 28}, at::kDouble);
  double* w = weights.data_ptr<double>();
  for (int64_t k = 0; k < num_items; ++k) {
    for (int j = 0; j < kFashionMnistPixels; ++j) {
      const uint8_t pixel = items[k].pixels[j];
      w[(k * 2 + 0) * kFashionMnistPixels + j] = pixel / 127.5;  // (pixel/127.5 - 1) - (-1)
      w[(k * 2 + 1) * kFashionMnistPixels + j] = pixel > 0 ? 1.0 : 0.0;
    }
  }
  const at::Tensor item_sq_norms =
      weights.select(1, 0).pow(2).sum({1, 2}).view({1, num_items, 1, 1});
  // Discretised Gaussian over offsets, centred on the middle offset (item centred on the canvas).
  at::Tensor log_prior = at::empty({kOffsets, kOffsets}, at::kDouble);
  const double centre = (kOffsets - 1) / 2.0;
  const double var = config.position_prior_std_px * config.position_prior_std_px;
  for (int py = 0; py < kOffsets; ++py) {
    for (int px = 0; px < kOffsets; ++px) {
      log_prior.data_ptr<double>()[py * kOffsets + px] =
          -((py - centre) * (py - centre) + (px - centre) * (px - centre)) / (2.0 * var);
    }
  }
  log_prior = (log_prior - log_prior.view({-1}).logsumexp(0)).view({1, 1, kOffsets, kOffsets});

  ExpertInfo info;
  info.name = config.name;
  info.latent = {config.latent_space_id, 1, kSide, kSide};
  info.concepts = config.concepts;
  info.prediction_type = PredictionType::kEpsilon;
  info.utilities = {UtilityKind::kScore, UtilityKind::kAttention};
  return std::unique_ptr<Expert>(new ExactExpert(std::move(info), config, weights.to(dtype),
                                                 item_sq_norms.to(dtype), log_prior.to(dtype)));
}

}  // namespace dnd::experts
