// Noise schedules and DDIM/DDPM step coefficients (see schedule.h). All schedule arithmetic is in
// float64; the per-element work on latents reads and writes float.
#include "coordinator/method/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

namespace dnd::method {
namespace {

template <typename E, size_t N>
StatusOr<E> ParseEnum(std::string_view what, std::string_view name,
                      const std::pair<std::string_view, E> (&table)[N]) {
  std::string accepted;
  for (const auto& [text, value] : table) {
    if (text == name) return value;
    if (!accepted.empty()) accepted += ", ";
    accepted += text;
  }
  return InvalidArgumentError("unknown " + std::string(what) + " '" + std::string(name) +
                              "' (accepted: " + accepted + ")");
}

constexpr std::pair<std::string_view, BetaSchedule> kBetaSchedules[] = {
    {"linear", BetaSchedule::kLinear},
    {"scaled_linear", BetaSchedule::kScaledLinear},
    {"squaredcos_cap_v2", BetaSchedule::kSquaredCosCapV2}};
constexpr std::pair<std::string_view, TimestepSpacing> kSpacings[] = {
    {"leading", TimestepSpacing::kLeading},
    {"trailing", TimestepSpacing::kTrailing},
    {"linspace", TimestepSpacing::kLinspace}};
constexpr std::pair<std::string_view, PredictionType> kPredictionTypes[] = {
    {"epsilon", PredictionType::kEpsilon},
    {"sample", PredictionType::kSample},
    {"v_prediction", PredictionType::kVPrediction}};
constexpr std::pair<std::string_view, SamplerKind> kSamplers[] = {{"ddim", SamplerKind::kDdim},
                                                                  {"ddpm", SamplerKind::kDdpm}};

template <typename E, size_t N>
std::string_view NameOf(E value, const std::pair<std::string_view, E> (&table)[N]) {
  for (const auto& [text, v] : table) {
    if (v == value) return text;
  }
  return "?";
}

// alpha_bar(t) of the cosine schedule (Nichol & Dhariwal), as diffusers' betas_for_alpha_bar.
double CosineAlphaBar(double t) {
  const double c = std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2.0);
  return c * c;
}

}  // namespace

StatusOr<BetaSchedule> ParseBetaSchedule(std::string_view name) {
  return ParseEnum("beta schedule", name, kBetaSchedules);
}
StatusOr<TimestepSpacing> ParseTimestepSpacing(std::string_view name) {
  return ParseEnum("timestep spacing", name, kSpacings);
}
StatusOr<PredictionType> ParsePredictionType(std::string_view name) {
  return ParseEnum("prediction type", name, kPredictionTypes);
}
StatusOr<SamplerKind> ParseSamplerKind(std::string_view name) {
  return ParseEnum("sampler", name, kSamplers);
}
std::string_view Name(BetaSchedule v) { return NameOf(v, kBetaSchedules); }
std::string_view Name(TimestepSpacing v) { return NameOf(v, kSpacings); }
std::string_view Name(PredictionType v) { return NameOf(v, kPredictionTypes); }
std::string_view Name(SamplerKind v) { return NameOf(v, kSamplers); }

StatusOr<NoiseSchedule> NoiseSchedule::Create(const ScheduleConfig& config) {
  const int num_t = config.num_train_timesteps;
  if (num_t < 1) {
    return InvalidArgumentError("num_train_timesteps must be >= 1, got " + std::to_string(num_t));
  }
  if (config.steps_offset < 0) {
    return InvalidArgumentError("steps_offset must be >= 0, got " +
                                std::to_string(config.steps_offset));
  }
  if (config.clip_sample && !(config.clip_sample_range > 0)) {
    return InvalidArgumentError("clip_sample_range must be > 0");
  }
  NoiseSchedule s;
  s.config_ = config;
  s.betas_.resize(num_t);
  switch (config.beta_schedule) {
    case BetaSchedule::kLinear:
    case BetaSchedule::kScaledLinear: {
      if (!(config.beta_start > 0 && config.beta_end < 1 && config.beta_start <= config.beta_end)) {
        return InvalidArgumentError(
            "beta_start and beta_end must satisfy 0 < beta_start <= "
            "beta_end < 1, got " +
            std::to_string(config.beta_start) + ", " + std::to_string(config.beta_end));
      }
      const bool scaled = config.beta_schedule == BetaSchedule::kScaledLinear;
      // linspace(start, end, T); scaled_linear: linspace(sqrt(start), sqrt(end), T)^2.
      const double lo = scaled ? std::sqrt(config.beta_start) : config.beta_start;
      const double hi = scaled ? std::sqrt(config.beta_end) : config.beta_end;
      for (int i = 0; i < num_t; ++i) {
        const double v = num_t == 1 ? lo : lo + (hi - lo) * i / (num_t - 1);
        s.betas_[i] = scaled ? v * v : v;
      }
      break;
    }
    case BetaSchedule::kSquaredCosCapV2:
      for (int i = 0; i < num_t; ++i) {
        const double t1 = static_cast<double>(i) / num_t;
        const double t2 = static_cast<double>(i + 1) / num_t;
        s.betas_[i] = std::min(1.0 - CosineAlphaBar(t2) / CosineAlphaBar(t1), 0.999);
      }
      break;
  }
  s.alphas_cumprod_.resize(num_t);
  double prod = 1.0;
  for (int i = 0; i < num_t; ++i) {
    prod *= 1.0 - s.betas_[i];
    s.alphas_cumprod_[i] = prod;
  }
  s.final_alpha_cumprod_ = config.set_alpha_to_one ? 1.0 : s.alphas_cumprod_[0];
  return s;
}

double NoiseSchedule::AlphaCumprod(int t) const {
  DND_CHECK(t < config_.num_train_timesteps) << "timestep " << t << " >= num_train_timesteps";
  return t >= 0 ? alphas_cumprod_[t] : final_alpha_cumprod_;
}

StatusOr<std::vector<int>> NoiseSchedule::Timesteps(int num_steps) const {
  const int num_t = config_.num_train_timesteps;
  if (num_steps < 1 || num_steps > num_t) {
    return InvalidArgumentError("num_steps must be in [1, " + std::to_string(num_t) + "], got " +
                                std::to_string(num_steps));
  }
  std::vector<int> out(num_steps);
  // std::nearbyint rounds half to even in the default rounding mode, like numpy's round.
  switch (config_.timestep_spacing) {
    case TimestepSpacing::kLinspace:
      // np.linspace(0, T - 1, n).round()[::-1]
      for (int k = 0; k < num_steps; ++k) {
        const double v =
            num_steps == 1 ? 0.0 : static_cast<double>(num_t - 1) * k / (num_steps - 1);
        out[num_steps - 1 - k] = static_cast<int>(std::nearbyint(v));
      }
      break;
    case TimestepSpacing::kLeading: {
      // (np.arange(0, n) * (T // n)).round()[::-1] + steps_offset
      const int ratio = num_t / num_steps;
      for (int k = 0; k < num_steps; ++k) {
        out[num_steps - 1 - k] = k * ratio + config_.steps_offset;
      }
      break;
    }
    case TimestepSpacing::kTrailing: {
      // np.round(np.arange(T, 0, -T / n)) - 1
      const double ratio = static_cast<double>(num_t) / num_steps;
      for (int k = 0; k < num_steps; ++k) {
        out[k] = static_cast<int>(std::nearbyint(num_t - k * ratio)) - 1;
      }
      break;
    }
  }
  // Leading spacing with steps_offset can step past the last training timestep (e.g. 1000 steps
  // with offset 1 gives t = 1000): refuse it here rather than fail at the first step.
  if (out.front() >= num_t || out.back() < 0) {
    return InvalidArgumentError(
        std::to_string(num_steps) + " steps with " + std::string(Name(config_.timestep_spacing)) +
        " spacing and steps_offset " + std::to_string(config_.steps_offset) + " reach timestep " +
        std::to_string(out.front() >= num_t ? out.front() : out.back()) +
        ", outside the schedule's [0, " + std::to_string(num_t) + ")");
  }
  return out;
}

int NoiseSchedule::PrevTimestep(int t, int num_steps) const {
  DND_CHECK(num_steps >= 1) << "num_steps " << num_steps;
  return t - config_.num_train_timesteps / num_steps;
}

StatusOr<StepCoefficients> NoiseSchedule::Step(SamplerKind sampler, int t, int t_prev,
                                               double eta) const {
  if (t < 0 || t >= config_.num_train_timesteps) {
    return InvalidArgumentError("timestep " + std::to_string(t) + " outside [0, " +
                                std::to_string(config_.num_train_timesteps) + ")");
  }
  if (t_prev >= t) {
    return InvalidArgumentError("previous timestep " + std::to_string(t_prev) +
                                " must be below timestep " + std::to_string(t));
  }
  if (!(eta >= 0) || !std::isfinite(eta)) {
    return InvalidArgumentError("eta must be finite and >= 0, got " + std::to_string(eta));
  }
  StepCoefficients c;
  c.timestep = t;
  c.prev_timestep = t_prev;
  c.alpha_t = alphas_cumprod_[t];
  c.noise_level = std::sqrt(1.0 - c.alpha_t);
  const double beta_prod_t = 1.0 - c.alpha_t;
  if (sampler == SamplerKind::kDdim) {
    c.alpha_prev = AlphaCumprod(t_prev);
    const double beta_prod_prev = 1.0 - c.alpha_prev;
    const double variance = beta_prod_prev / beta_prod_t * (1.0 - c.alpha_t / c.alpha_prev);
    c.noise_std = eta * std::sqrt(std::max(variance, 0.0));
    c.coef_x0 = std::sqrt(c.alpha_prev);
    c.coef_eps = std::sqrt(std::max(beta_prod_prev - c.noise_std * c.noise_std, 0.0));
    c.coef_xt = 0.0;
  } else {
    c.alpha_prev = t_prev >= 0 ? alphas_cumprod_[t_prev] : 1.0;
    const double beta_prod_prev = 1.0 - c.alpha_prev;
    const double current_alpha = c.alpha_t / c.alpha_prev;
    const double current_beta = 1.0 - current_alpha;
    c.coef_x0 = std::sqrt(c.alpha_prev) * current_beta / beta_prod_t;
    c.coef_xt = std::sqrt(current_alpha) * beta_prod_prev / beta_prod_t;
    c.coef_eps = 0.0;
    const double variance = std::max(beta_prod_prev / beta_prod_t * current_beta, 1e-20);
    c.noise_std = t > 0 ? std::sqrt(variance) : 0.0;
  }
  return c;
}

namespace {

// One element of the conversions in PredictionToX0Eps's contract (sa = sqrt(a_t),
// sb = sqrt(1 - a_t), x = x_t, o = the model's output).
inline void X0AndEps(PredictionType type, double sa, double sb, double x, double o, double* x0,
                     double* eps) {
  switch (type) {
    case PredictionType::kEpsilon:
      *x0 = (x - sb * o) / sa;
      *eps = o;
      return;
    case PredictionType::kSample:
      *x0 = o;
      *eps = (x - sa * o) / sb;
      return;
    case PredictionType::kVPrediction:
      *x0 = sa * x - sb * o;
      *eps = sa * o + sb * x;
      return;
  }
}

}  // namespace

Status PredictionToX0Eps(const ScheduleConfig& config, PredictionType type, double alpha_t,
                         std::span<const float> x_t, std::span<const float> model_output,
                         std::span<float> x0, std::span<float> eps) {
  const size_t n = x_t.size();
  if (model_output.size() != n || (!x0.empty() && x0.size() != n) ||
      (!eps.empty() && eps.size() != n)) {
    return InvalidArgumentError("prediction of " + std::to_string(model_output.size()) +
                                " elements does not match the latent of " + std::to_string(n));
  }
  const double sa = std::sqrt(alpha_t);
  const double sb = std::sqrt(1.0 - alpha_t);
  const double r = config.clip_sample_range;
  for (size_t k = 0; k < n; ++k) {
    const double x = x_t[k];
    double x0_k = 0, eps_k = 0;
    X0AndEps(type, sa, sb, x, model_output[k], &x0_k, &eps_k);
    if (config.clip_sample) x0_k = std::clamp(x0_k, -r, r);
    if (!x0.empty()) x0[k] = static_cast<float>(x0_k);
    if (!eps.empty()) eps[k] = static_cast<float>(eps_k);
  }
  return OkStatus();
}

Status ProposalMean(const ScheduleConfig& config, PredictionType type, const StepCoefficients& step,
                    std::span<const float> x_t, std::span<const float> model_output,
                    std::span<float> mu) {
  const size_t n = x_t.size();
  if (model_output.size() != n || mu.size() != n) {
    return InvalidArgumentError("prediction of " + std::to_string(model_output.size()) +
                                " elements and mean of " + std::to_string(mu.size()) +
                                " do not match the latent of " + std::to_string(n));
  }
  const double sa = std::sqrt(step.alpha_t);
  const double sb = std::sqrt(1.0 - step.alpha_t);
  const double r = config.clip_sample_range;
  for (size_t k = 0; k < n; ++k) {
    const double x = x_t[k];
    double x0_k = 0, eps_k = 0;
    X0AndEps(type, sa, sb, x, model_output[k], &x0_k, &eps_k);
    if (config.clip_sample) x0_k = std::clamp(x0_k, -r, r);
    mu[k] = static_cast<float>(step.coef_x0 * x0_k + step.coef_eps * eps_k + step.coef_xt * x);
  }
  return OkStatus();
}

}  // namespace dnd::method
