// Normalisation of the per-position utility maps (METHOD.md, "Per-step quantities"), shared by the
// backends of worker/experts. Internal to worker/experts: works on LibTorch tensors, which are only
// forward-declared here so that this header stays cheap; callers include ATen in their .cc.
// Both functions are differentiable (autograd), so Gradient() can backpropagate through them.
#ifndef DND_WORKER_EXPERTS_UTILITY_MAPS_H_
#define DND_WORKER_EXPERTS_UTILITY_MAPS_H_

#include "worker/experts/expert.h"

namespace at {
class Tensor;
}  // namespace at

namespace dnd::experts {

// Score-based utility from a conditional and an unconditional prediction, both [B, C, H, W]:
//   s = sum over channels of (cond - uncond)^2            [B, H, W]
//   s = GaussianBlur(s, options.blur_sigma_px)             (replicate padding, radius ceil(3
//   sigma)) s = min(s, options.clip_multiple_of_mean * mean_j s)   (per item) u = s / sum_j s, or
//   1/(H*W) everywhere when sum_j s is 0.
// Returns u, [B, H, W], same dtype. The caller passes epsilon predictions (or anything proportional
// to them per item: the normalisation removes a per-item factor).
at::Tensor ScoreUtility(const at::Tensor& cond, const at::Tensor& uncond,
                        const ScoreMapOptions& options);

// Attention-based utility from a localisation map [B, H, W]: negative entries are clamped to 0,
// then each map is divided by its total (uniform when the total is 0). Returns [B, H, W].
at::Tensor AttentionUtility(const at::Tensor& localisation);

}  // namespace dnd::experts

#endif  // DND_WORKER_EXPERTS_UTILITY_MAPS_H_
