// Noise schedules and the DDIM / DDPM step coefficients, following the conventions of the diffusers
// library (scheduling_ddim.py, scheduling_ddpm.py) because users' experts were trained with them.
// Used by the coordinator to turn every expert's prediction into a proposal mean mu_i
// (docs/method.md, "Schedules and samplers"). Plain C++, no LibTorch.
#ifndef DND_COORDINATOR_METHOD_SCHEDULE_H_
#define DND_COORDINATOR_METHOD_SCHEDULE_H_

#include <span>
#include <string_view>
#include <vector>

#include "protocol/status.h"

namespace dnd::method {

enum class BetaSchedule { kLinear, kScaledLinear, kSquaredCosCapV2 };
enum class TimestepSpacing { kLeading, kTrailing, kLinspace };
// What the expert's network outputs: the noise, the clean sample x0, or v (Salimans & Ho).
enum class PredictionType { kEpsilon, kSample, kVPrediction };
// DDIM with stochasticity eta (paper: eta = 0.015), or DDPM with the "fixed_small" variance.
enum class SamplerKind { kDdim, kDdpm };

// Parses the diffusers spellings ("linear", "scaled_linear", "squaredcos_cap_v2"; "leading",
// "trailing", "linspace"; "epsilon", "sample", "v_prediction"; "ddim", "ddpm").
// InvalidArgument naming the accepted values otherwise.
StatusOr<BetaSchedule> ParseBetaSchedule(std::string_view name);
StatusOr<TimestepSpacing> ParseTimestepSpacing(std::string_view name);
StatusOr<PredictionType> ParsePredictionType(std::string_view name);
StatusOr<SamplerKind> ParseSamplerKind(std::string_view name);
std::string_view Name(BetaSchedule v);
std::string_view Name(TimestepSpacing v);
std::string_view Name(PredictionType v);
std::string_view Name(SamplerKind v);

// The fields of a diffusers scheduler config that change the numbers. Defaults are Stable
// Diffusion 1.x's scheduler_config.json.
struct ScheduleConfig {
  BetaSchedule beta_schedule = BetaSchedule::kScaledLinear;
  double beta_start = 0.00085;
  double beta_end = 0.012;
  int num_train_timesteps = 1000;
  TimestepSpacing timestep_spacing = TimestepSpacing::kLeading;
  int steps_offset = 1;
  // DDIM: alpha used past t = 0 is 1.0 (true) or alphas_cumprod[0] (false). DDPM always uses 1.0.
  bool set_alpha_to_one = false;
  PredictionType prediction_type = PredictionType::kEpsilon;
  // Clamp the x0 estimate to [-clip_sample_range, clip_sample_range] (diffusers' DDIM defaults to
  // true, Stable Diffusion's config sets false).
  bool clip_sample = false;
  double clip_sample_range = 1.0;
};

// Coefficients of one reverse step t -> t_prev:  mu = coef_x0 * x0 + coef_eps * eps + coef_xt *
// x_t, x_prev = mu + noise_std * z. DDIM: coef_x0 = sqrt(a_prev), coef_eps = sqrt(1 - a_prev -
// std^2), coef_xt = 0. DDPM: coef_eps = 0 and the posterior-mean coefficients of x0 and x_t.
struct StepCoefficients {
  int timestep = 0;       // t
  int prev_timestep = 0;  // t_prev (negative past the end of the chain)
  double alpha_t = 0;     // alphas_cumprod[t]
  double alpha_prev = 0;  // alphas_cumprod[t_prev], or the final alpha when t_prev < 0
  double coef_x0 = 0;
  double coef_eps = 0;
  double coef_xt = 0;
  double noise_std = 0;  // standard deviation of the added noise
  // sqrt(1 - alpha_t): the noise level of x_t, the sigma_t of the guidance step (METHOD.md).
  double noise_level = 0;
};

// The training noise schedule (betas, alphas_cumprod in float64) and the inference timesteps.
// Immutable after Create: thread-safe.
class NoiseSchedule {
 public:
  // InvalidArgument when num_train_timesteps < 1, a beta is outside (0, 1), beta_end < beta_start
  // for the linear schedules, steps_offset < 0 or clip_sample_range <= 0.
  static StatusOr<NoiseSchedule> Create(const ScheduleConfig& config);

  const ScheduleConfig& config() const { return config_; }
  int num_train_timesteps() const { return config_.num_train_timesteps; }
  std::span<const double> betas() const { return betas_; }
  std::span<const double> alphas_cumprod() const { return alphas_cumprod_; }
  // alphas_cumprod[t] for 0 <= t < T; for t < 0 the DDIM final alpha (1.0 when set_alpha_to_one,
  // else alphas_cumprod[0]). DND_CHECKs t < T (a bug of the caller, who got t from Timesteps()).
  double AlphaCumprod(int t) const;

  // The num_steps inference timesteps, descending, as diffusers' set_timesteps computes them.
  // InvalidArgument when num_steps < 1 or num_steps > num_train_timesteps.
  StatusOr<std::vector<int>> Timesteps(int num_steps) const;
  // diffusers' previous timestep: t - num_train_timesteps / num_steps (integer division), for every
  // spacing. May be negative at the last step.
  int PrevTimestep(int t, int num_steps) const;

  // Step coefficients for t -> t_prev. DDIM: variance (1-a_prev)/(1-a_t) (1 - a_t/a_prev),
  // noise_std = eta sqrt(variance). DDPM (fixed_small): a_prev = 1 past t = 0, variance clamped at
  // 1e-20 and no noise at t = 0; eta is ignored. InvalidArgument when t is outside [0, T),
  // t_prev >= t, or eta is negative / not finite.
  StatusOr<StepCoefficients> Step(SamplerKind sampler, int t, int t_prev, double eta) const;

 private:
  NoiseSchedule() = default;
  ScheduleConfig config_;
  std::vector<double> betas_;
  std::vector<double> alphas_cumprod_;
  double final_alpha_cumprod_ = 1.0;
};

// Turns a model output at (x_t, t) into the estimates of x0 and eps (diffusers' formulas):
//   epsilon: x0 = (x_t - sqrt(1-a_t) out) / sqrt(a_t),  eps = out
//   sample:  x0 = out,  eps = (x_t - sqrt(a_t) x0) / sqrt(1-a_t)
//   v:       x0 = sqrt(a_t) x_t - sqrt(1-a_t) v,  eps = sqrt(a_t) v + sqrt(1-a_t) x_t
// then clips x0 when the config asks (eps is not recomputed, as in diffusers). All spans have the
// same length (C*H*W); x0 or eps may be empty when not wanted. InvalidArgument on a length
// mismatch.
Status PredictionToX0Eps(const ScheduleConfig& config, PredictionType type, double alpha_t,
                         std::span<const float> x_t, std::span<const float> model_output,
                         std::span<float> x0, std::span<float> eps);

// The mean of the reverse step (no noise): mu = coef_x0 x0 + coef_eps eps + coef_xt x_t with x0 and
// eps from PredictionToX0Eps. This is an expert's proposal mu_i. Same lengths; InvalidArgument
// otherwise. Thread-compatible (no shared state).
Status ProposalMean(const ScheduleConfig& config, PredictionType type, const StepCoefficients& step,
                    std::span<const float> x_t, std::span<const float> model_output,
                    std::span<float> mu);

}  // namespace dnd::method

#endif  // DND_COORDINATOR_METHOD_SCHEDULE_H_
