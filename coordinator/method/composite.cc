// Composite denoising step (see composite.h). The mixture weights are formed per position once and
// applied to every channel, so the cost is O((n+1) m + n C m).
#include "coordinator/method/composite.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace dnd::method {

Status CompositeMean(const CompositeInputs& in, std::span<float> out) {
  const size_t n = in.proposals.size();
  if (n < 1 || in.num_channels < 1) {
    return InvalidArgumentError("composite needs >= 1 proposal and >= 1 channel");
  }
  const size_t numel = out.size();
  const size_t channels = static_cast<size_t>(in.num_channels);
  if (numel % channels != 0) {
    return InvalidArgumentError("output of " + std::to_string(numel) + " elements is not " +
                                std::to_string(channels) + " channels");
  }
  const size_t m = numel / channels;
  if (in.q.size() != (n + 1) * m) {
    return InvalidArgumentError("allocation has " + std::to_string(in.q.size()) +
                                " values, expected (n+1) x m = " + std::to_string(n + 1) + " x " +
                                std::to_string(m));
  }
  for (size_t i = 0; i < n; ++i) {
    if (in.proposals[i].size() != numel) {
      return InvalidArgumentError("proposal of expert " + std::to_string(i) + " has " +
                                  std::to_string(in.proposals[i].size()) + " elements, expected " +
                                  std::to_string(numel));
    }
  }
  if (!in.gradients.empty() && in.gradients.size() != n) {
    return InvalidArgumentError("got " + std::to_string(in.gradients.size()) + " gradients for " +
                                std::to_string(n) + " experts");
  }
  for (size_t i = 0; i < in.gradients.size(); ++i) {
    if (in.gradients[i].size() != numel) {
      return InvalidArgumentError("gradient of expert " + std::to_string(i) + " has " +
                                  std::to_string(in.gradients[i].size()) + " elements, expected " +
                                  std::to_string(numel));
    }
  }
  if (!(in.gamma >= 0) || !(in.noise_level >= 0) || !std::isfinite(in.gamma) ||
      !std::isfinite(in.noise_level)) {
    return InvalidArgumentError("gamma and noise_level must be finite and >= 0");
  }
  if (!(in.guidance_outside >= 0 && in.guidance_outside <= 1)) {
    return InvalidArgumentError("guidance_outside = " + std::to_string(in.guidance_outside) +
                                " is outside [0, 1]");
  }
  // Guidance scale gamma * sigma_t / rms(g), g = sum_i W_i ⊙ g_i (first pass over the
  // gradients). Expert i's weight at element k is W_ij = (1 - w) Q_ij + w (position j = k mod m):
  // exactly Q_ij at w = 0 and exactly 1 at w = 1.
  const double outside = in.guidance_outside;
  const double inside = 1.0 - outside;
  auto gradient_weight = [&](size_t i, size_t k) { return inside * in.q[i * m + k % m] + outside; };
  double guidance_scale = 0;
  const bool guided = !in.gradients.empty() && in.gamma > 0;
  if (guided) {
    double sum_sq = 0;
    for (size_t k = 0; k < numel; ++k) {
      double g = 0;
      for (size_t i = 0; i < in.gradients.size(); ++i)
        g += gradient_weight(i, k) * in.gradients[i][k];
      sum_sq += g * g;
    }
    if (!std::isfinite(sum_sq)) {
      return InvalidArgumentError("guidance gradient has a non-finite entry");
    }
    if (sum_sq > 0) guidance_scale = in.gamma * in.noise_level / std::sqrt(sum_sq / numel);
  }
  // Combination, in chunks of positions so the weights stay in L1: weight_ij = Q_ij + Q_nj / n
  // (the fictitious player's share of the average), formed once per chunk for all channels.
  const double inv_n = 1.0 / static_cast<double>(n);
  const double* qf = in.q.data() + n * m;
  constexpr size_t kChunk = 256;
  std::vector<double> weights(n * kChunk);
  double acc[kChunk];
  for (size_t j0 = 0; j0 < m; j0 += kChunk) {
    const size_t len = std::min(kChunk, m - j0);
    for (size_t i = 0; i < n; ++i) {
      const double* __restrict qi = in.q.data() + i * m + j0;
      const double* __restrict qn = qf + j0;
      double* __restrict weight = weights.data() + i * kChunk;
      for (size_t j = 0; j < len; ++j) weight[j] = qi[j] + qn[j] * inv_n;
    }
    for (size_t c = 0; c < channels; ++c) {
      const size_t offset = c * m + j0;
      for (size_t j = 0; j < len; ++j) acc[j] = 0.0;
      // Two experts per pass, added in expert order (the same sums as one at a time).
      size_t i = 0;
      for (; i + 2 <= n; i += 2) {
        const double* __restrict w0 = weights.data() + i * kChunk;
        const double* __restrict w1 = w0 + kChunk;
        const float* __restrict mu0 = in.proposals[i].data() + offset;
        const float* __restrict mu1 = in.proposals[i + 1].data() + offset;
        for (size_t j = 0; j < len; ++j) acc[j] = (acc[j] + w0[j] * mu0[j]) + w1[j] * mu1[j];
      }
      for (; i < n; ++i) {
        const double* __restrict weight = weights.data() + i * kChunk;
        const float* __restrict mu = in.proposals[i].data() + offset;
        for (size_t j = 0; j < len; ++j) acc[j] += weight[j] * mu[j];
      }
      if (guidance_scale != 0) {
        for (size_t gi = 0; gi < in.gradients.size(); ++gi) {
          const float* __restrict g = in.gradients[gi].data() + offset;
          const double* __restrict qi = in.q.data() + gi * m + j0;
          for (size_t j = 0; j < len; ++j) {
            acc[j] += guidance_scale * (inside * qi[j] + outside) * g[j];
          }
        }
      }
      float* __restrict o = out.data() + offset;
      for (size_t j = 0; j < len; ++j) o[j] = static_cast<float>(acc[j]);
    }
  }
  return OkStatus();
}

void AddStepNoise(double noise_std, const NormalGenerator& generator, uint32_t sample,
                  uint32_t step, std::span<float> x) {
  if (noise_std == 0) return;
  std::vector<float> z(x.size());
  generator.Fill(sample, NoisePurpose::kStepNoise, step, z);
  for (size_t k = 0; k < x.size(); ++k) {
    x[k] = static_cast<float>(x[k] + noise_std * static_cast<double>(z[k]));
  }
}

Status CompositeStep(const CompositeInputs& in, const NormalGenerator& generator, uint32_t sample,
                     uint32_t step, std::span<float> x_prev) {
  if (!(in.noise_std >= 0) || !std::isfinite(in.noise_std)) {
    return InvalidArgumentError("noise_std must be finite and >= 0");
  }
  DND_RETURN_IF_ERROR(CompositeMean(in, x_prev));
  AddStepNoise(in.noise_std, generator, sample, step, x_prev);
  return OkStatus();
}

}  // namespace dnd::method
