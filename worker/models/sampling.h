// Sampling one expert on its own (no coordinator): deterministic DDIM (eta = 0) with
// classifier-free guidance on the scaled_linear 1000-step schedule and "leading" spacing with
// offset 1, as Stable Diffusion samples. Used by the shipped-model tests and by `dnd bench
// experts`. Works through the expert interface; no LibTorch in this header or its source.
#ifndef DND_WORKER_MODELS_SAMPLING_H_
#define DND_WORKER_MODELS_SAMPLING_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"
#include "worker/experts/expert.h"

namespace dnd::models {

// alphas_cumprod of diffusers' scaled_linear schedule (Stable Diffusion's 0.00085..0.012, 1000
// training steps): the schedule the experts are trained on and the coordinator samples with.
std::vector<double> ScaledLinearAlphasCumprod();

// The initial noise x_T of `seed`: NumValues() standard normal floats from std::mt19937_64(seed)
// and std::normal_distribution<double> (the same values on every machine with this libstdc++).
std::vector<float> InitialNoise(const experts::LatentSpace& latent, uint64_t seed);

// Samples one latent per seed for `concept_name`, all seeds in one batch per step:
//   eps = eps_u + cfg * (eps_c - eps_u);  x0 = (x - sqrt(1 - a_t) eps) / sqrt(a_t);
//   x <- sqrt(a_prev) x0 + sqrt(1 - a_prev) eps.
// Returns seeds.size() * NumValues() floats. Errors: the expert's (unknown concept, ...), or
// InvalidArgument for steps outside [1, 1000]. The expert must predict epsilon.
StatusOr<std::vector<float>> SampleLatents(experts::Expert& expert,
                                           const std::string& concept_name,
                                           std::span<const uint64_t> seeds, int steps,
                                           double cfg);

}  // namespace dnd::models

#endif  // DND_WORKER_MODELS_SAMPLING_H_
