// Float64 reference implementations of the utility-map normalisation (docs/experts.md, "Utility
// maps"), written with plain loops and independently of worker/experts/utility_maps.cc, for the
// worker tests to compare against.
#ifndef DND_TESTS_WORKER_REFERENCE_MAPS_H_
#define DND_TESTS_WORKER_REFERENCE_MAPS_H_

#include <algorithm>
#include <cmath>
#include <vector>

namespace dnd::experts::testing {

// Divides by the total; uniform when the total is 0.
inline std::vector<double> NormaliseReference(std::vector<double> map) {
  double total = 0.0;
  for (double v : map) total += v;
  for (double& v : map) v = total > 1e-30 ? v / total : 1.0 / static_cast<double>(map.size());
  return map;
}

// score_j = sum_c (cond - uncond)^2, Gaussian blur (replicate edges, radius ceil(3 sigma)), clip at
// clip_multiple * mean, normalise. cond/uncond: C*H*W, channel-major.
inline std::vector<double> ScoreMapReference(const std::vector<double>& cond,
                                             const std::vector<double>& uncond, int channels,
                                             int height, int width, double sigma,
                                             double clip_multiple) {
  const int positions = height * width;
  std::vector<double> score(positions, 0.0);
  for (int c = 0; c < channels; ++c) {
    for (int j = 0; j < positions; ++j) {
      const double d = cond[c * positions + j] - uncond[c * positions + j];
      score[j] += d * d;
    }
  }
  if (sigma > 0.0) {
    const int radius = static_cast<int>(std::ceil(3.0 * sigma));
    std::vector<double> taps;
    double sum = 0.0;
    for (int i = -radius; i <= radius; ++i) {
      taps.push_back(std::exp(-0.5 * i * i / (sigma * sigma)));
      sum += taps.back();
    }
    std::vector<double> blurred(positions, 0.0);
    // 2-D blur with the separable kernel written as a full double sum.
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        double acc = 0.0;
        for (int dy = -radius; dy <= radius; ++dy) {
          for (int dx = -radius; dx <= radius; ++dx) {
            const int yy = std::clamp(y + dy, 0, height - 1);
            const int xx = std::clamp(x + dx, 0, width - 1);
            acc += taps[dy + radius] * taps[dx + radius] / (sum * sum) * score[yy * width + xx];
          }
        }
        blurred[y * width + x] = acc;
      }
    }
    score = blurred;
  }
  if (clip_multiple > 0.0) {
    double mean = 0.0;
    for (double v : score) mean += v;
    mean /= positions;
    for (double& v : score) v = std::min(v, clip_multiple * mean);
  }
  return NormaliseReference(score);
}

}  // namespace dnd::experts::testing

#endif  // DND_TESTS_WORKER_REFERENCE_MAPS_H_
