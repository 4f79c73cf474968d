// The ceiling's layouts (`dnd bench compose --ceiling-layout`): parsing, and where each puts the
// items.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "tools/bench/compose_bench.h"

namespace dnd::bench {
namespace {

TEST(BenchCeilingTest, LayoutsParseAndDescribeThemselves) {
  for (const char* text : {"side-by-side", "apart:14", "apart:0", "prior:7", "prior:2.5"}) {
    auto layout = ParseCeilingLayout(text);
    ASSERT_TRUE(layout.ok()) << text << ": " << layout.status().ToString();
    EXPECT_EQ(layout->Describe(), text);
  }
  EXPECT_EQ(ParseCeilingLayout("apart:14")->kind, CeilingLayout::Kind::kApart);
  EXPECT_EQ(ParseCeilingLayout("prior:7")->px, 7.0);
  for (const char* bad : {"", "apart", "apart:", "apart:-1", "apart:x", "apart:3px", "prior:0",
                          "prior:nan", "grid:3", "side by side"}) {
    auto layout = ParseCeilingLayout(bad);
    EXPECT_EQ(layout.status().code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
}

TEST(BenchCeilingTest, SideBySideIsTheModelsLayout) {
  std::mt19937_64 rng(1);
  for (int count = 1; count <= 3; ++count) {
    auto offsets = CeilingOffsets(CeilingLayout{}, count, rng);
    auto expected = models::SideBySideOffsets(count);
    ASSERT_TRUE(offsets.ok() && expected.ok());
    ASSERT_EQ(offsets->size(), expected->size());
    for (size_t k = 0; k < offsets->size(); ++k) {
      EXPECT_EQ((*offsets)[k].x, (*expected)[k].x);
      EXPECT_EQ((*offsets)[k].y, (*expected)[k].y);
    }
  }
}

TEST(BenchCeilingTest, ApartPutsCentresTheGivenDistanceApartAroundTheMiddle) {
  std::mt19937_64 rng(1);
  CeilingLayout layout{CeilingLayout::Kind::kApart, 14};
  auto two = CeilingOffsets(layout, 2, rng);
  ASSERT_TRUE(two.ok());
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].x, 11);  // centres at 25 and 39 on the 64 px canvas: 14 apart, about 32
  EXPECT_EQ((*two)[1].x, 25);
  EXPECT_EQ((*two)[0].y, 18);
  EXPECT_EQ((*two)[1].y, 18);
  layout.px = 18;  // three items spanning the whole canvas: corners 0, 18, 36
  auto three = CeilingOffsets(layout, 3, rng);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ((*three)[0].x, 0);
  EXPECT_EQ((*three)[1].x, 18);
  EXPECT_EQ((*three)[2].x, 36);
  layout.px = 19;  // does not fit
  EXPECT_EQ(CeilingOffsets(layout, 3, rng).status().code(), StatusCode::kInvalidArgument);
  layout.px = 0;  // all on the centre
  auto stacked = CeilingOffsets(layout, 3, rng);
  ASSERT_TRUE(stacked.ok());
  for (const models::Offset& o : *stacked) EXPECT_EQ(o.x, 18);
}

TEST(BenchCeilingTest, PriorDrawsEachCoordinateAroundTheCentreWithTheGivenSpread) {
  std::mt19937_64 rng(7);
  const CeilingLayout layout{CeilingLayout::Kind::kPrior, 7};
  double sum = 0, sum_sq = 0;
  int draws = 0;
  for (int canvas = 0; canvas < 2000; ++canvas) {
    auto offsets = CeilingOffsets(layout, 2, rng);
    ASSERT_TRUE(offsets.ok());
    for (const models::Offset& o : *offsets) {
      for (int v : {o.x, o.y}) {
        ASSERT_GE(v, 0);
        ASSERT_LE(v, models::kMaxOffset);
        sum += v;
        sum_sq += static_cast<double>(v) * v;
        ++draws;
      }
    }
  }
  const double mean = sum / draws;
  const double sd = std::sqrt(sum_sq / draws - mean * mean);
  EXPECT_NEAR(mean, 18.0, 0.3);
  // A Gaussian of std 7 truncated to +-18 (2.6 std) and rounded: about 6.7.
  EXPECT_GT(sd, 6.2);
  EXPECT_LT(sd, 7.2);
}

}  // namespace
}  // namespace dnd::bench
