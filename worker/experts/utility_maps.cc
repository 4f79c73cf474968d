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

// Separable Gaussian blur of [B, H, W] with replicate padding.
at::Tensor GaussianBlur(const at::Tensor& maps, double sigma_px) {
  const int radius = static_cast<int>(std::ceil(3.0 * sigma_px));
  std::vector<double> taps(2 * radius + 1);
  double sum = 0.0;
  for (int i = -radius; i <= radius; ++i) {
    taps[i + radius] = std::exp(-0.5 * i * i / (sigma_px * sigma_px));
    sum += taps[i + radius];
  }
  for (double& tap : taps) tap /= sum;
  const at::Tensor kernel =
      at::tensor(taps, at::TensorOptions().dtype(at::kDouble)).to(maps.scalar_type());
  const int64_t size = 2 * radius + 1;
  at::Tensor x = maps.unsqueeze(1);  // [B, 1, H, W]
  x = at::replication_pad2d(x, {radius, radius, radius, radius});
  x = at::conv2d(x, kernel.view({1, 1, 1, size}));
  x = at::conv2d(x, kernel.view({1, 1, size, 1}));
  return x.squeeze(1);
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
