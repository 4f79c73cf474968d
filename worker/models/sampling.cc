#include "worker/models/sampling.h"

#include <cmath>
#include <random>

namespace dnd::models {
namespace {

constexpr int kTrainTimesteps = 1000;

}  // namespace

std::vector<double> ScaledLinearAlphasCumprod() {
  std::vector<double> out(kTrainTimesteps);
  const double lo = std::sqrt(0.00085), hi = std::sqrt(0.012);
  double prod = 1.0;
  for (int t = 0; t < kTrainTimesteps; ++t) {
    const double s = lo + (hi - lo) * t / (kTrainTimesteps - 1);
    prod *= 1.0 - s * s;
    out[t] = prod;
  }
  return out;
}

std::vector<float> InitialNoise(const experts::LatentSpace& latent, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<float> x(latent.NumValues());
  for (float& v : x) v = static_cast<float>(normal(rng));
  return x;
}

StatusOr<std::vector<float>> SampleLatents(experts::Expert& expert,
                                           const std::string& concept_name,
                                           std::span<const uint64_t> seeds, int steps,
                                           double cfg) {
  if (steps < 1 || steps > kTrainTimesteps) {
    return InvalidArgumentError("steps must be in [1, 1000]");
  }
  const experts::ExpertInfo& info = expert.Describe();
  if (info.prediction_type != experts::PredictionType::kEpsilon) {
    return InvalidArgumentError("SampleLatents needs an epsilon-predicting expert");
  }
  const size_t values = info.latent.NumValues();
  std::vector<float> x;
  for (uint64_t seed : seeds) {
    const std::vector<float> noise = InitialNoise(info.latent, seed);
    x.insert(x.end(), noise.begin(), noise.end());
  }
  const std::vector<double> ac = ScaledLinearAlphasCumprod();
  const int ratio = kTrainTimesteps / steps;
  for (int i = steps - 1; i >= 0; --i) {
    const int t = i * ratio + 1;  // leading spacing, steps_offset 1
    const int prev = t - ratio;
    const double a = ac[t];
    const double a_prev = prev >= 0 ? ac[prev] : ac[0];  // set_alpha_to_one = false
    std::vector<experts::StepInput> batch(seeds.size());
    for (size_t k = 0; k < seeds.size(); ++k) {
      batch[k] = {.latent = std::span<const float>(x).subspan(k * values, values),
                  .timestep = t,
                  .alpha_cumprod = a,
                  .concept_name = concept_name,
                  .utility = experts::UtilityKind::kScore,
                  .cfg_scale = cfg};
    }
    std::vector<StatusOr<experts::StepOutput>> out = expert.Step(batch);
    std::vector<float> next(x.size());
    for (size_t k = 0; k < seeds.size(); ++k) {
      if (!out[k].ok()) return out[k].status();
      const experts::StepOutput& o = *out[k];
      for (size_t j = 0; j < values; ++j) {
        const double eps = o.prediction_uncond[j] +
                           cfg * (o.prediction_cond[j] - o.prediction_uncond[j]);
        const double xt = x[k * values + j];
        const double x0 = (xt - std::sqrt(1.0 - a) * eps) / std::sqrt(a);
        next[k * values + j] =
            static_cast<float>(std::sqrt(a_prev) * x0 + std::sqrt(1.0 - a_prev) * eps);
      }
    }
    x = std::move(next);
  }
  return x;
}

}  // namespace dnd::models
