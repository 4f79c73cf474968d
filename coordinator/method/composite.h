// Composite denoising (METHOD.md "Step 2", docs/method.md "Composite step"): the experts' proposals
// confined to their regions by Q, the fictitious player's averaged proposal, the normalised
// guidance step along the summed gradients, and the sampling of x_{t-1}. Used by strategy.cc and
// bench_allocation. Plain C++ over spans; thread-compatible free functions.
#ifndef DND_COORDINATOR_METHOD_COMPOSITE_H_
#define DND_COORDINATOR_METHOD_COMPOSITE_H_

#include <cstdint>
#include <span>

#include "coordinator/method/rng.h"
#include "protocol/status.h"

namespace dnd::method {

struct CompositeInputs {
  // mu_i of the n real experts, each C x H x W (channel-major, position j = h * W + w).
  std::span<const std::span<const float>> proposals;
  // Q, (n+1) x m row-major (row n the fictitious player), shared by all C channels.
  std::span<const double> q;
  int num_channels = 0;
  // g_i = grad_x sum_j Q_ij u_ij(x_t) of each expert (empty: no guidance), each C x H x W.
  std::span<const std::span<const float>> gradients;
  double gamma = 0;        // guidance strength; 0 disables guidance
  double noise_level = 0;  // sigma_t = sqrt(1 - alphas_cumprod[t]) (METHOD.md decision)
  double noise_std = 0;    // standard deviation of the sampler's noise (DDIM eta term)
  // Weight w in [0, 1] of expert i's gradient outside its own region (docs/method.md decision
  // 11): expert i's gradient is weighted by W_ij = Q_ij + w (1 - Q_ij) = (1 - w) Q_ij + w.
  // 0: it acts only where the expert is responsible, g = sum_i Q_i ⊙ g_i; 1: everywhere,
  // g = sum_i g_i, METHOD.md's formula taken literally. Both ends are exact.
  double guidance_outside = 0.0;
};

// mu_c = sum_{i<n} Q_i ⊙ mu_i + Q_n ⊙ (1/n) sum_i mu_i + gamma sigma_t g / rms(g),
// computed as sum_i (Q_ij + Q_nj / n) mu_i[c, j] + guidance; g = sum_i W_i ⊙ g_i with
// W_i = (1 - guidance_outside) Q_i + guidance_outside, and rms(g) = sqrt(mean over all C*m
// elements of g^2); g == 0 everywhere (or gamma == 0) adds nothing.
// InvalidArgument on a size mismatch, num_channels < 1, gamma/noise_level < 0, guidance_outside
// outside [0, 1], or a non-finite gradient. out: C x H x W.
Status CompositeMean(const CompositeInputs& in, std::span<float> out);

// x_{t-1} = CompositeMean(in) + noise_std * z, z from generator's (sample, kStepNoise, step)
// stream (no draw when noise_std == 0). Same errors as CompositeMean.
Status CompositeStep(const CompositeInputs& in, const NormalGenerator& generator, uint32_t sample,
                     uint32_t step, std::span<float> x_prev);

// x += noise_std * z with z drawn as in CompositeStep; used by the baselines' sampling.
void AddStepNoise(double noise_std, const NormalGenerator& generator, uint32_t sample,
                  uint32_t step, std::span<float> x);

}  // namespace dnd::method

#endif  // DND_COORDINATOR_METHOD_COMPOSITE_H_
