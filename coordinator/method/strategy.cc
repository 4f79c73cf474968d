// The four composition strategies (see strategy.h). Averaging, MultiDiffusion and dnd combine the
// per-expert DDIM means mu_i through CompositeMean with a Q (uniform over real players / the fixed
// layout / the solved Q_t); Composable combines noise predictions before one DDIM mean.
#include "coordinator/method/strategy.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "coordinator/method/composite.h"

namespace dnd::method {
namespace {

constexpr std::pair<std::string_view, StrategyKind> kKinds[] = {
    {"averaging", StrategyKind::kAveraging},
    {"composable", StrategyKind::kComposable},
    {"multidiffusion", StrategyKind::kMultiDiffusion},
    {"dnd", StrategyKind::kDivideAndDenoise}};

// out = uncond + w (cond - uncond), element-wise (classifier-free guidance of one expert).
Status GuidedOutput(const ExpertOutput& e, size_t numel, int index, std::vector<float>* out) {
  if (e.cond.size() != numel || (!e.uncond.empty() && e.uncond.size() != numel)) {
    return InvalidArgumentError(
        "output of expert " + std::to_string(index) + " has " + std::to_string(e.cond.size()) +
        "/" + std::to_string(e.uncond.size()) + " elements, expected " + std::to_string(numel));
  }
  out->resize(numel);
  if (e.uncond.empty()) {
    std::copy(e.cond.begin(), e.cond.end(), out->begin());
    return OkStatus();
  }
  for (size_t k = 0; k < numel; ++k) {
    (*out)[k] = static_cast<float>(e.uncond[k] + e.guidance_scale * (e.cond[k] - e.uncond[k]));
  }
  return OkStatus();
}

}  // namespace

StatusOr<StrategyKind> ParseStrategyKind(std::string_view name) {
  for (const auto& [text, kind] : kKinds) {
    if (text == name) return kind;
  }
  return InvalidArgumentError("unknown strategy '" + std::string(name) +
                              "' (accepted: averaging, composable, multidiffusion, dnd)");
}

std::string_view Name(StrategyKind kind) {
  for (const auto& [text, k] : kKinds) {
    if (k == kind) return text;
  }
  return "?";
}

StatusOr<std::unique_ptr<Strategy>> Strategy::Create(const StrategyOptions& options,
                                                     LatentShape shape, int num_experts) {
  if (num_experts < 1 || shape.channels < 1 || shape.height < 1 || shape.width < 1) {
    return InvalidArgumentError("strategy needs >= 1 expert and a latent shape >= 1x1x1");
  }
  if (!(options.gamma >= 0)) return InvalidArgumentError("gamma must be >= 0");
  if (!(options.utility_smoothing >= 0) || !std::isfinite(options.utility_smoothing)) {
    return InvalidArgumentError("utility_smoothing must be finite and >= 0");
  }
  if (!(options.view_gain >= 0) || !std::isfinite(options.view_gain) ||
      options.view_max_shift < 0 || !(options.view_min_separation >= 0) ||
      !std::isfinite(options.view_min_separation) || options.view_reference_size < 0) {
    return InvalidArgumentError(
        "view_gain and view_min_separation must be finite and >= 0, view_max_shift and "
        "view_reference_size >= 0");
  }
  std::unique_ptr<Strategy> s(new Strategy());
  s->options_ = options;
  s->shape_ = shape;
  s->n_ = num_experts;
  const int m = shape.positions();
  switch (options.kind) {
    case StrategyKind::kAveraging:
    case StrategyKind::kComposable: {
      // Q = 1/n for each real player, 0 for the fictitious one: mu = (1/n) sum_i mu_i.
      s->allocation_ = Allocation::Uniform(num_experts + 1, m);
      std::fill(s->allocation_.q.begin(), s->allocation_.q.end(), 1.0 / num_experts);
      std::fill(s->allocation_.q.begin() + static_cast<size_t>(num_experts) * m,
                s->allocation_.q.end(), 0.0);
      break;
    }
    case StrategyKind::kMultiDiffusion: {
      if (options.masks.empty()) {
        DND_ASSIGN_OR_RETURN(s->allocation_,
                             Allocation::VerticalStrips(num_experts, shape.height, shape.width));
      } else {
        if (static_cast<int>(options.masks.size()) != num_experts) {
          return InvalidArgumentError("got " + std::to_string(options.masks.size()) +
                                      " masks for " + std::to_string(num_experts) + " experts");
        }
        DND_ASSIGN_OR_RETURN(s->allocation_, Allocation::FromMasks(options.masks, m));
      }
      break;
    }
    case StrategyKind::kDivideAndDenoise: {
      DND_ASSIGN_OR_RETURN(s->solver_,
                           AllocationSolver::Create(options.allocation, num_experts, m));
      s->allocation_ = Allocation::Uniform(num_experts + 1, m);
      s->utilities_.resize(static_cast<size_t>(num_experts + 1) * m);
      break;
    }
  }
  return s;
}

void SmoothMap(std::span<float> map, int height, int width, double sigma) {
  if (!(sigma > 0) || height < 1 || width < 1) return;
  const int radius = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> kernel(2 * radius + 1);
  for (int d = -radius; d <= radius; ++d)
    kernel[d + radius] = std::exp(-0.5 * d * d / (sigma * sigma));
  // One pass along rows (stride 1, `width` long), one along columns (stride width, `height` long).
  std::vector<double> tmp(map.size());
  auto pass = [&](auto read, auto write, int lines, int length, size_t line_stride, size_t stride) {
    for (int l = 0; l < lines; ++l) {
      for (int k = 0; k < length; ++k) {
        double acc = 0, weight = 0;
        for (int d = std::max(-radius, -k); d <= std::min(radius, length - 1 - k); ++d) {
          acc += kernel[d + radius] * read(l * line_stride + (k + d) * stride);
          weight += kernel[d + radius];
        }
        write(l * line_stride + k * stride, acc / weight);
      }
    }
  };
  pass([&](size_t i) { return static_cast<double>(map[i]); },
       [&](size_t i, double v) { tmp[i] = v; }, height, width, static_cast<size_t>(width), 1);
  pass([&](size_t i) { return tmp[i]; },
       [&](size_t i, double v) { map[i] = static_cast<float>(v); }, width, height, 1,
       static_cast<size_t>(width));
}

bool Strategy::WantsGradients() const {
  return options_.kind == StrategyKind::kDivideAndDenoise && options_.gamma > 0;
}

Status Strategy::Begin(const StepCoefficients& step, std::span<const float> x_t,
                       std::span<const ExpertOutput> outputs,
                       std::span<const std::span<const float>> utilities) {
  ready_ = false;
  const size_t numel = shape_.numel();
  const size_t m = static_cast<size_t>(shape_.positions());
  if (x_t.size() != numel) {
    return InvalidArgumentError("x_t has " + std::to_string(x_t.size()) + " elements, expected " +
                                std::to_string(numel));
  }
  if (static_cast<int>(outputs.size()) != n_) {
    return InvalidArgumentError("got " + std::to_string(outputs.size()) + " expert outputs for " +
                                std::to_string(n_) + " experts");
  }
  step_ = step;
  std::vector<float> guided;
  if (options_.kind == StrategyKind::kComposable) {
    // eps = mean_i eps_u,i + sum_i w_i (eps_c,i - eps_u,i), every output converted to eps first.
    std::vector<double> eps(numel, 0.0);
    std::vector<float> eps_c(numel), eps_u(numel);
    const double weight_scale = options_.composable_normalise_weights ? 1.0 / n_ : 1.0;
    for (int i = 0; i < n_; ++i) {
      const ExpertOutput& e = outputs[i];
      DND_RETURN_IF_ERROR(PredictionToX0Eps(options_.schedule, e.prediction_type, step.alpha_t, x_t,
                                            e.cond, {}, eps_c));
      if (e.uncond.empty()) {
        eps_u = eps_c;  // no unconditional pass: this expert contributes its conditional eps
      } else {
        DND_RETURN_IF_ERROR(PredictionToX0Eps(options_.schedule, e.prediction_type, step.alpha_t,
                                              x_t, e.uncond, {}, eps_u));
      }
      const double w = e.guidance_scale * weight_scale;
      for (size_t k = 0; k < numel; ++k) {
        eps[k] += eps_u[k] / n_ + w * (static_cast<double>(eps_c[k]) - eps_u[k]);
      }
    }
    std::vector<float> eps_f(eps.begin(), eps.end());
    proposals_.assign(n_, std::vector<float>(numel));
    DND_RETURN_IF_ERROR(
        ProposalMean(options_.schedule, PredictionType::kEpsilon, step, x_t, eps_f, proposals_[0]));
    for (int i = 1; i < n_; ++i) proposals_[i] = proposals_[0];
    ready_ = true;
    return OkStatus();
  }
  proposals_.resize(n_);
  for (int i = 0; i < n_; ++i) {
    DND_RETURN_IF_ERROR(GuidedOutput(outputs[i], numel, i, &guided));
    proposals_[i].resize(numel);
    DND_RETURN_IF_ERROR(ProposalMean(options_.schedule, outputs[i].prediction_type, step, x_t,
                                     guided, proposals_[i]));
  }
  if (options_.kind == StrategyKind::kDivideAndDenoise) {
    if (static_cast<int>(utilities.size()) != n_) {
      return InvalidArgumentError("got " + std::to_string(utilities.size()) + " utility maps for " +
                                  std::to_string(n_) + " experts");
    }
    for (int i = 0; i < n_; ++i) {
      if (utilities[i].size() != m) {
        return InvalidArgumentError("utility map of expert " + std::to_string(i) + " has " +
                                    std::to_string(utilities[i].size()) + " values, expected " +
                                    std::to_string(m));
      }
      std::copy(utilities[i].begin(), utilities[i].end(), utilities_.begin() + i * m);
    }
    for (int i = 0; i < n_; ++i) {
      SmoothMap(std::span<float>(utilities_).subspan(static_cast<size_t>(i) * m, m), shape_.height,
                shape_.width, options_.utility_smoothing);
    }
    std::fill(utilities_.begin() + static_cast<size_t>(n_) * m, utilities_.end(),
              1.0f / static_cast<float>(m));
    DND_RETURN_IF_ERROR(solver_->SolveInto(utilities_, allocation_.q, &allocation_));
  }
  ready_ = true;
  return OkStatus();
}

Status Strategy::Finish(std::span<const std::span<const float>> gradients,
                        const NormalGenerator& generator, uint32_t sample, uint32_t step_index,
                        std::span<float> x_prev) {
  if (!ready_) return FailedPreconditionError("Finish called without a successful Begin");
  std::vector<std::span<const float>> mus(proposals_.begin(), proposals_.end());
  CompositeInputs in;
  in.proposals = mus;
  in.q = allocation_.q;
  in.num_channels = shape_.channels;
  if (WantsGradients()) in.gradients = gradients;
  in.gamma = options_.gamma;
  in.guidance_outside = options_.guidance_outside;
  in.noise_level = step_.noise_level;
  in.noise_std = step_.noise_std;
  ready_ = false;
  return CompositeStep(in, generator, sample, step_index, x_prev);
}

}  // namespace dnd::method
