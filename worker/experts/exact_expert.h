// Backend "exact": a closed-form expert whose data distribution is "one Fashion-MNIST item of a
// known class at some position on a black 64x64 canvas" — a mixture of narrow isotropic Gaussians
// over (train item, offset) with a centre-preferring position prior. Its posterior mean E[x0 | x_t]
// under VP noising is exact; the derivation and the choices (pixel range, subset, s0, prior) are in
// docs/experts.md, "The exact expert".
#ifndef DND_WORKER_EXPERTS_EXACT_EXPERT_H_
#define DND_WORKER_EXPERTS_EXACT_EXPERT_H_

#include <memory>

#include "protocol/status.h"
#include "worker/experts/expert.h"

namespace dnd::experts {

inline constexpr int kExactCanvasSide = 64;
// Offsets per axis where a 28x28 item fits on the canvas: 64 - 28 + 1.
inline constexpr int kExactOffsetsPerAxis = kExactCanvasSide - 28 + 1;

// Builds the exact expert from config (backend "exact"): loads the first config.items_per_class
// train items of each class in config.concepts from config.model_path (a directory; empty =
// Debian's /usr/share/datasets/fashion-mnist). Latent space: config.latent_space_id, 1x64x64, pixel
// range
// [-1, 1] with black = -1. Prediction type epsilon; utilities score and attention (the
// posterior-expected footprint of the requested item).
// Errors: InvalidArgument (no concepts, an unknown class name, a repeated class, non-positive K, s0
// or prior std), NotFound (data files missing), DataLoss (corrupt data).
StatusOr<std::unique_ptr<Expert>> CreateExactExpert(const ExpertConfig& config);

}  // namespace dnd::experts

#endif  // DND_WORKER_EXPERTS_EXACT_EXPERT_H_
