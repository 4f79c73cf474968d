// Utility-map normalisation with ATen ops (see utility_maps.h).
#include "worker/experts/utility_maps.h"

#include <cmath>
#include <vector>

#include <ATen/ATen.h>

namespace dnd::experts {
namespace {

// A total below this counts as zero (the map is then uniform).
constexpr double kTinyTotal = 1e-30;

// Divides each [H, W] map of `maps` [B, H, W] by its total; uniform where the total is ~0.
at::Tensor NormalisePerItem(const at::Tensor& maps) {
  const int64_t positions = maps.size(1) * maps.size(2);
  const at::Tensor total = maps.sum({1, 2}, /*keepdim=*/true);
  const at::Tensor normalised = maps / total.clamp_min(kTinyTotal);
  return at::where(total > kTinyTotal, normalised,
                   at::full_like(maps, 1.0 / static_cast<double>(positions)));
}

// Separable Gaussian blur of [B, H, W] with replicate padding, as a weighted sum of shifted
// slices: elementwise operations only, so that each item's map and its gradient are the same bits
// whatever batch it is computed in. at::conv2d was not: its backward pass gave a different
// gradient for an item depending on the batch around it, and the score-utility strategies'
// results changed from run to run with the workers' batching.
at::Tensor GaussianBlur(const at::Tensor& maps, double sigma_px) {
  const int radius = static_cast<int>(std::ceil(3.0 * sigma_px));
  std::vector<double> taps(2 * radius + 1);
  double sum = 0.0;
  for (int i = -radius; i <= radius; ++i) {
    taps[i + radius] = std::exp(-0.5 * i * i / (sigma_px * sigma_px));
    sum += taps[i + radius];
  }
  for (double& tap : taps) tap /= sum;
  const int64_t height = maps.size(1);
  const int64_t width = maps.size(2);
  const at::Tensor padded =
      at::replication_pad2d(maps.unsqueeze(1), {radius, radius, radius, radius}).squeeze(1);
  // Along x (every padded row), then along y.
  at::Tensor rows = padded.narrow(2, 0, width) * taps[0];
  for (int k = 1; k <= 2 * radius; ++k) rows = rows + padded.narrow(2, k, width) * taps[k];
  at::Tensor out = rows.narrow(1, 0, height) * taps[0];
  for (int k = 1; k <= 2 * radius; ++k) out = out + rows.narrow(1, k, height) * taps[k];
  return out;
}

}  // namespace

at::Tensor ScoreUtility(const at::Tensor& cond, const at::Tensor& uncond,
                        const ScoreMapOptions& options) {
  at::Tensor score = (cond - uncond).pow(2).sum(1);  // [B, H, W]
  if (options.blur_sigma_px > 0.0) score = GaussianBlur(score, options.blur_sigma_px);
  if (options.clip_multiple_of_mean > 0.0) {
    const at::Tensor ceiling = score.mean({1, 2}, /*keepdim=*/true) * options.clip_multiple_of_mean;
    score = at::minimum(score, ceiling);
  }
  return NormalisePerItem(score);
}

at::Tensor AttentionUtility(const at::Tensor& localisation) {
  return NormalisePerItem(localisation.clamp_min(0.0));
}

}  // namespace dnd::experts
