// Region-centred views (coordinator/method/views.h): Roll against its definition written as a
// plain loop over coordinates, round trips, and the shift of regions whose centres of mass are
// worked out by hand; SeparatedShifts pushing view centres apart.
#include "coordinator/method/views.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace dnd::method {
namespace {

// Value coding its coordinates, so a misplaced element names where it came from.
float Code(int c, int y, int x) { return static_cast<float>(c * 10000 + y * 100 + x); }

std::vector<float> Coded(int channels, int height, int width) {
  std::vector<float> v;
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) v.push_back(Code(c, y, x));
  return v;
}

int Mod(int a, int n) { return ((a % n) + n) % n; }

TEST(Roll, MovesEveryValueByTheShiftWrappingAroundTheEdges) {
  const int channels = 3, height = 5, width = 7;
  const std::vector<float> src = Coded(channels, height, width);
  for (ViewShift shift : {ViewShift{0, 0}, ViewShift{1, 2}, ViewShift{-2, 3}, ViewShift{4, -6},
                          ViewShift{12, -15}, ViewShift{-5, 7}}) {
    std::vector<float> out(src.size(), -1.0f);
    Roll(src, height, width, shift, out);
    int wrong = 0;
    for (int c = 0; c < channels; ++c)
      for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
          const float want = Code(c, Mod(y - shift.dy, height), Mod(x - shift.dx, width));
          wrong += out[(c * height + y) * width + x] != want;
        }
    EXPECT_EQ(wrong, 0) << "shift (" << shift.dy << ", " << shift.dx << ")";
  }
}

TEST(Roll, ASingleValueLandsWhereTheShiftSays) {
  // 5 x 6 grid, a one at (1, 2); moved by (3, -4) it is at (4, 4): 1 + 3 = 4, 2 - 4 + 6 = 4.
  std::vector<float> src(30, 0.0f), out(30);
  src[1 * 6 + 2] = 1.0f;
  Roll(src, 5, 6, {3, -4}, out);
  for (int j = 0; j < 30; ++j) EXPECT_EQ(out[j], j == 4 * 6 + 4 ? 1.0f : 0.0f) << "position " << j;
}

TEST(Roll, TheInverseShiftRestoresTheTensor) {
  const std::vector<float> src = Coded(4, 16, 16);
  std::vector<float> there(src.size()), back(src.size());
  const ViewShift shift{-3, 4};
  Roll(src, 16, 16, shift, there);
  EXPECT_NE(there, src);
  Roll(there, 16, 16, shift.Inverse(), back);
  EXPECT_EQ(back, src);
}

std::vector<double> Row(int height, int width, auto weight) {
  std::vector<double> row(static_cast<size_t>(height) * width);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) row[y * width + x] = weight(y, x);
  return row;
}

TEST(RegionCentredShift, TheLeftHalfOfTheFrameIsFourPositionsLeftOfTheCentre) {
  // 16 x 16, mass on columns 0..7: mean column 3.5, centre 7.5 -> dx = -4; rows balanced -> 0.
  const auto left = Row(16, 16, [](int, int x) { return x < 8 ? 1.0 : 0.0; });
  EXPECT_EQ(RegionCentredShift(left, 16, 16, 1.0, 8), (ViewShift{0, -4}));
  EXPECT_EQ(RegionCentredShift(left, 16, 16, 0.5, 8), (ViewShift{0, -2}));
  EXPECT_EQ(RegionCentredShift(left, 16, 16, 2.0, 8), (ViewShift{0, -8}));
  EXPECT_EQ(RegionCentredShift(left, 16, 16, 2.0, 3), (ViewShift{0, -3})) << "clamped";
  // Scaling the row does not move its centre of mass.
  const auto scaled = Row(16, 16, [](int, int x) { return x < 8 ? 0.25 : 0.0; });
  EXPECT_EQ(RegionCentredShift(scaled, 16, 16, 1.0, 8), (ViewShift{0, -4}));
}

TEST(RegionCentredShift, WeighsPositionsByTheirShare) {
  // 15 x 15 (centre 7, 7): weight 3 at (2, 12), 1 at (10, 12) -> mean row (6 + 10) / 4 = 4,
  // offset -3; mean column 12, offset 5.
  const auto row = Row(15, 15, [](int y, int x) {
    if (x != 12) return 0.0;
    return y == 2 ? 3.0 : y == 10 ? 1.0 : 0.0;
  });
  EXPECT_EQ(RegionCentredShift(row, 15, 15, 1.0, 7), (ViewShift{-3, 5}));
}

TEST(RegionCentredShift, NoShiftForAnEvenSpreadAnEmptyRowOrGainZero) {
  const auto uniform = Row(16, 16, [](int, int) { return 1.0 / 256; });
  EXPECT_TRUE(RegionCentredShift(uniform, 16, 16, 1.0, 4).IsZero());
  const auto empty = Row(16, 16, [](int, int) { return 0.0; });
  EXPECT_TRUE(RegionCentredShift(empty, 16, 16, 1.0, 4).IsZero());
  const auto corner = Row(16, 16, [](int y, int x) { return y < 4 && x < 4 ? 1.0 : 0.0; });
  EXPECT_EQ(RegionCentredShift(corner, 16, 16, 1.0, 4), (ViewShift{-4, -4}));
  EXPECT_TRUE(RegionCentredShift(corner, 16, 16, 0.0, 4).IsZero());
  EXPECT_TRUE(RegionCentredShift(corner, 16, 16, 1.0, 0).IsZero());
}

double Distance(ViewShift a, ViewShift b) { return std::hypot(a.dy - b.dy, a.dx - b.dx); }

TEST(SeparatedShifts, CentresFarEnoughApartAreOnlyClampedAndRounded) {
  // 4.2 clamps to 3; then 5.4 and 2.1 apart: 5.79 >= 4. lround(-1.5) = -2 (half away from zero).
  const auto shifts = SeparatedShifts({{-2.4, 0.6}, {4.2, -1.5}}, 3, 4.0);
  ASSERT_EQ(shifts.size(), 2u);
  EXPECT_EQ(shifts[0], (ViewShift{-2, 1}));
  EXPECT_EQ(shifts[1], (ViewShift{3, -2}));
}

TEST(SeparatedShifts, TwoCloseCentresArePushedApartAlongTheirLine) {
  // 2 apart on a row, 6 wanted: each moves 2 away from the other.
  EXPECT_EQ(SeparatedShifts({{0, -1}, {0, 1}}, 3, 6.0), (std::vector<ViewShift>{{0, -3}, {0, 3}}));
  // Vertically, off the centre line: the column does not change.
  EXPECT_EQ(SeparatedShifts({{-0.5, 2}, {0.5, 2}}, 4, 4.0),
            (std::vector<ViewShift>{{-2, 2}, {2, 2}}));
}

TEST(SeparatedShifts, ACentreAgainstTheBorderMakesTheOtherOneMove) {
  // (0, 2) and (0, 3) in a box of 3: the second cannot move right, so the first goes all the way
  // to -3 (the pushes shrink each round; the rounds stop within 1e-3 of the separation).
  EXPECT_EQ(SeparatedShifts({{0, 2}, {0, 3}}, 3, 6.0), (std::vector<ViewShift>{{0, -3}, {0, 3}}));
}

TEST(SeparatedShifts, CoincidentCentresSplitTheSameWayEveryTime) {
  const auto first = SeparatedShifts({{0, 0}, {0, 0}}, 3, 6.0);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_DOUBLE_EQ(Distance(first[0], first[1]), 6.0);
  EXPECT_EQ(first[0], first[1].Inverse()) << "pushed symmetrically about the common centre";
  EXPECT_EQ(SeparatedShifts({{0, 0}, {0, 0}}, 3, 6.0), first);
}

TEST(SeparatedShifts, ThreeCentresNearTheMiddleEndApartInsideTheBox) {
  // Without separation all three round to the frame's centre.
  const std::vector<ViewOffset> near = {{0.2, 0}, {-0.2, 0.3}, {-0.2, -0.3}};
  for (ViewShift s : SeparatedShifts(near, 3, 0.0)) EXPECT_TRUE(s.IsZero());
  const auto apart = SeparatedShifts(near, 3, 6.0);
  ASSERT_EQ(apart.size(), 3u);
  for (size_t a = 0; a < 3; ++a) {
    EXPECT_LE(std::abs(apart[a].dy), 3);
    EXPECT_LE(std::abs(apart[a].dx), 3);
    for (size_t b = a + 1; b < 3; ++b) {
      // Rounding each centre to whole positions moves it by at most sqrt(0.5).
      EXPECT_GE(Distance(apart[a], apart[b]), 6.0 - 2 * std::sqrt(0.5))
          << "experts " << a << " and " << b;
    }
  }
}

TEST(SeparatedShifts, TooManyCentresForTheBoxStayInsideIt) {
  std::vector<ViewOffset> crowd(6, ViewOffset{0.1, -0.1});
  const auto shifts = SeparatedShifts(crowd, 1, 6.0);
  ASSERT_EQ(shifts.size(), 6u);
  for (ViewShift s : shifts) {
    EXPECT_LE(std::abs(s.dy), 1);
    EXPECT_LE(std::abs(s.dx), 1);
  }
  for (ViewShift s : SeparatedShifts(crowd, 0, 6.0)) EXPECT_TRUE(s.IsZero()) << "max_shift 0";
}

TEST(ViewScale, IsTheShorterSideOverTheReferenceSize) {
  EXPECT_DOUBLE_EQ(ViewScale(16, 16, 16), 1.0);
  EXPECT_DOUBLE_EQ(ViewScale(64, 64, 16), 4.0);  // the exact experts' pixel canvas
  EXPECT_DOUBLE_EQ(ViewScale(32, 48, 16), 2.0);  // the shorter side counts
  EXPECT_DOUBLE_EQ(ViewScale(8, 8, 16), 0.5);
  EXPECT_DOUBLE_EQ(ViewScale(64, 64, 0), 1.0);  // not scaled
}

TEST(SeparatedShifts, TakeAScaledBox) {
  // Settings 3 and 6 for a 16-position frame on a 64-position one: a box of 12, 24 apart.
  EXPECT_EQ(SeparatedShifts({{0, -1}, {0, 1}}, 3 * 4.0, 6 * 4.0),
            (std::vector<ViewShift>{{0, -12}, {0, 12}}));
  // A box under half a position holds no shift.
  for (ViewShift s : SeparatedShifts({{0, -1}, {0, 1}}, 0.4, 6)) EXPECT_TRUE(s.IsZero());
}

}  // namespace
}  // namespace dnd::method
