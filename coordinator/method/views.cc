// Region-centred views (views.h; docs/method.md decision 13).
#include "coordinator/method/views.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "protocol/status.h"

namespace dnd::method {

ViewShift RegionCentredShift(std::span<const double> row, int height, int width, double gain,
                             int max_shift) {
  DND_CHECK(height >= 1 && width >= 1 && row.size() == static_cast<size_t>(height) * width)
      << "row of " << row.size() << " values for a " << height << "x" << width << " grid";
  double mass = 0, sum_y = 0, sum_x = 0;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double q = row[static_cast<size_t>(y) * width + x];
      mass += q;
      sum_y += q * (y - (height - 1) / 2.0);
      sum_x += q * (x - (width - 1) / 2.0);
    }
  }
  if (!(mass > 0) || !(gain != 0) || max_shift <= 0) return {};
  auto component = [&](double offset) {
    const double shift = std::clamp(gain * offset / mass, -1.0 * max_shift, 1.0 * max_shift);
    return static_cast<int>(std::lround(shift));
  };
  return {component(sum_y), component(sum_x)};
}

void Roll(std::span<const float> src, int height, int width, ViewShift shift,
          std::span<float> out) {
  const size_t plane = static_cast<size_t>(height) * width;
  DND_CHECK(height >= 1 && width >= 1 && src.size() % plane == 0 && out.size() == src.size())
      << "Roll of " << src.size() << " values into " << out.size() << " on a " << height << "x"
      << width << " grid";
  // Source row/column of each destination row/column, wrapped once.
  const int dy = ((shift.dy % height) + height) % height;
  const int dx = ((shift.dx % width) + width) % width;
  for (size_t base = 0; base < src.size(); base += plane) {
    for (int y = 0; y < height; ++y) {
      const float* from =
          src.data() + base + static_cast<size_t>((y - dy + height) % height) * width;
      float* to = out.data() + base + static_cast<size_t>(y) * width;
      // Columns x >= dx come from x - dx; columns x < dx wrap from the row's end.
      std::copy(from, from + (width - dx), to + dx);
      std::copy(from + (width - dx), from + width, to);
    }
  }
}

}  // namespace dnd::method
