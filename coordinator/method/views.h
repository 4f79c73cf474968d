// Region-centred views (docs/method.md decision 13). Each Divide-and-Denoise expert is sent the
// latent translated, circularly, so that the centre of mass of its region (its row of the
// allocation Q) sits at the centre of the frame it sees; its predictions, utility map and guidance
// gradient are translated back before they are combined. The experts were trained on items drawn
// in the centre of the frame: in its own view each draws its item inside its own region, not in
// the frame's centre on top of the others' items. Plain C++ over spans, no LibTorch.
#ifndef DND_COORDINATOR_METHOD_VIEWS_H_
#define DND_COORDINATOR_METHOD_VIEWS_H_

#include <span>
#include <vector>

namespace dnd::method {

// A circular translation of a height x width grid by (dy, dx) positions: the value at (y, x)
// moves to ((y + dy) mod height, (x + dx) mod width).
struct ViewShift {
  int dy = 0;
  int dx = 0;
  ViewShift Inverse() const { return {-dy, -dx}; }
  bool IsZero() const { return dy == 0 && dx == 0; }
  friend bool operator==(const ViewShift&, const ViewShift&) = default;
};

// The offset of the centre of mass of `row` (height x width non-negative weights, row-major) from
// the centre of the grid ((height - 1) / 2, (width - 1) / 2), times `gain`, rounded to whole
// positions and clamped to [-max_shift, max_shift] in each direction. The expert's view is the
// frame translated by its Inverse(). A row with no mass, gain 0 or max_shift 0 gives no shift.
ViewShift RegionCentredShift(std::span<const double> row, int height, int width, double gain,
                             int max_shift);

// The offsets of several experts' view centres (already scaled by the gain, in positions, from
// the frame's centre), moved apart so that no two are closer than `min_separation` positions,
// kept inside [-max_shift, max_shift] in each direction, then rounded. Two experts whose regions
// have (nearly) the same centre would otherwise draw their items on top of each other. The
// centres are pushed apart pairwise along the line through them (a deterministic direction when
// two coincide) for a bounded number of rounds; where the box is too small for the separation
// (many experts), they end as far apart as the rounds get them. min_separation 0 only clamps and
// rounds, like RegionCentredShift. max_shift < 0.5 gives no shifts.
struct ViewOffset {
  double dy = 0;
  double dx = 0;
};
std::vector<ViewShift> SeparatedShifts(std::vector<ViewOffset> offsets, double max_shift,
                                       double min_separation);

// The factor that turns the views' settings (largest shift, least separation), given for a frame
// `reference_size` positions on its shorter side, into positions of a height x width frame:
// min(height, width) / reference_size (decision 15). The items the experts draw fill the same
// part of the frame at any resolution, so the views scale with it. reference_size <= 0: 1 (the
// settings are in this frame's positions).
double ViewScale(int height, int width, int reference_size);

// The unrounded, unclamped offset of the centre of mass of `row` from the grid's centre ({0, 0}
// for a row with no mass).
ViewOffset RegionCentreOffset(std::span<const double> row, int height, int width);

// out[c][y][x] = src[c][(y - dy) mod height][(x - dx) mod width] for every channel c of the
// C x height x width tensor src (C = src.size() / (height * width)). out has src's size and does
// not alias it; a size that is not a multiple of height * width is a bug (DND_CHECK).
void Roll(std::span<const float> src, int height, int width, ViewShift shift, std::span<float> out);

}  // namespace dnd::method

#endif  // DND_COORDINATOR_METHOD_VIEWS_H_
