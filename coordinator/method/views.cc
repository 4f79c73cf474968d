// Region-centred views (views.h; docs/method.md decision 13).
#include "coordinator/method/views.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <vector>

#include "protocol/status.h"

namespace dnd::method {

ViewOffset RegionCentreOffset(std::span<const double> row, int height, int width) {
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
  if (!(mass > 0)) return {};
  return {sum_y / mass, sum_x / mass};
}

ViewShift RegionCentredShift(std::span<const double> row, int height, int width, double gain,
                             int max_shift) {
  const ViewOffset centre = RegionCentreOffset(row, height, width);
  if (!(gain != 0)) return {};
  return SeparatedShifts({{gain * centre.dy, gain * centre.dx}}, max_shift, 0).front();
}

double ViewScale(int height, int width, int reference_size) {
  if (reference_size <= 0) return 1.0;
  return static_cast<double>(std::min(height, width)) / reference_size;
}

std::vector<ViewShift> SeparatedShifts(std::vector<ViewOffset> offsets, double max_shift,
                                       double min_separation) {
  std::vector<ViewShift> shifts(offsets.size());
  if (!(max_shift >= 0.5)) return shifts;
  const double box = max_shift;
  auto clamp = [box](ViewOffset& o) {
    o.dy = std::clamp(o.dy, -box, box);
    o.dx = std::clamp(o.dx, -box, box);
  };
  for (ViewOffset& o : offsets) clamp(o);
  const size_t n = offsets.size();
  constexpr int kRounds = 64;
  constexpr double kTolerance = 1e-3;
  for (int round = 0; min_separation > 0 && round < kRounds; ++round) {
    bool moved = false;
    for (size_t a = 0; a < n; ++a) {
      for (size_t b = a + 1; b < n; ++b) {
        double ey = offsets[b].dy - offsets[a].dy;
        double ex = offsets[b].dx - offsets[a].dx;
        const double distance = std::hypot(ey, ex);
        if (distance >= min_separation - kTolerance) continue;
        if (distance < 1e-9) {
          // Coincident: a direction fixed by the pair, so that the result is reproducible.
          const double angle = 2.0 * std::numbers::pi * static_cast<double>(a + b) /
                               static_cast<double>(std::max<size_t>(n, 2));
          ey = std::sin(angle);
          ex = std::cos(angle);
        } else {
          ey /= distance;
          ex /= distance;
        }
        const double push = (min_separation - distance) / 2;
        offsets[a].dy -= ey * push;
        offsets[a].dx -= ex * push;
        offsets[b].dy += ey * push;
        offsets[b].dx += ex * push;
        clamp(offsets[a]);
        clamp(offsets[b]);
        moved = true;
      }
    }
    if (!moved) break;
  }
  for (size_t i = 0; i < n; ++i) {
    shifts[i] = {static_cast<int>(std::lround(offsets[i].dy)),
                 static_cast<int>(std::lround(offsets[i].dx))};
  }
  return shifts;
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
