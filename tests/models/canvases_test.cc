// Fashion-MNIST splits and canvas layouts (worker/models/canvases.h).
#include "worker/models/canvases.h"

#include <gtest/gtest.h>

#include "worker/experts/expert.h"

namespace dnd::models {
namespace {

const std::string kData(experts::kDefaultFashionMnistDir);

TEST(FashionMnistSplitTest, BothSplitsHaveTheirPublishedSizes) {
  auto train = LoadFashionMnistSplit(kData, "train");
  ASSERT_TRUE(train.ok()) << train.status().ToString();
  EXPECT_EQ(train->size(), 60000u);
  EXPECT_EQ(train->pixels.size(), 60000u * 784);
  auto test = LoadFashionMnistSplit(kData, "t10k");
  ASSERT_TRUE(test.ok()) << test.status().ToString();
  EXPECT_EQ(test->size(), 10000u);
  // Fashion-MNIST is balanced: 1000 test items per class.
  for (int c = 0; c < kNumClasses; ++c) {
    EXPECT_EQ(test->IndicesOf(std::span<const int>(&c, 1)).size(), 1000u) << c;
  }
}

TEST(FashionMnistSplitTest, BadSplitsAndDirectoriesAreErrors) {
  EXPECT_EQ(LoadFashionMnistSplit(kData, "valid").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadFashionMnistSplit("/nonexistent", "train").status().code(),
            StatusCode::kNotFound);
}

TEST(CanvasTest, PasteTakesTheMaximumAndLandsAtTheOffset) {
  std::vector<uint8_t> item(784, 0);
  item[0] = 255;         // top-left corner of the item
  item[27 * 28 + 27] = 51;  // bottom-right corner
  std::vector<float> canvas(kCanvasPixels, 0.0f);
  canvas[5 * kCanvasSide + 3] = 0.5f;
  PasteItem(item, {3, 5}, canvas);
  EXPECT_FLOAT_EQ(canvas[5 * kCanvasSide + 3], 1.0f);
  EXPECT_FLOAT_EQ(canvas[(5 + 27) * kCanvasSide + 3 + 27], 51.0f / 255.0f);
  canvas[5 * kCanvasSide + 3] = 0.0f;
  canvas[(5 + 27) * kCanvasSide + 3 + 27] = 0.0f;
  for (float v : canvas) EXPECT_EQ(v, 0.0f);
}

TEST(CanvasTest, SideBySideLayoutsDoNotOverlapAndStayOnTheCanvas) {
  for (int count = 1; count <= 3; ++count) {
    auto offsets = SideBySideOffsets(count);
    ASSERT_TRUE(offsets.ok());
    ASSERT_EQ(offsets->size(), static_cast<size_t>(count));
    for (size_t a = 0; a < offsets->size(); ++a) {
      const Offset p = (*offsets)[a];
      EXPECT_TRUE(p.x >= 0 && p.y >= 0 && p.x <= kMaxOffset && p.y <= kMaxOffset);
      for (size_t b = a + 1; b < offsets->size(); ++b) {
        const Offset q = (*offsets)[b];
        const bool apart = std::abs(p.x - q.x) >= kItemSide || std::abs(p.y - q.y) >= kItemSide;
        EXPECT_TRUE(apart) << count << " items: " << a << " and " << b << " overlap";
      }
    }
  }
  EXPECT_EQ(SideBySideOffsets(4).status().code(), StatusCode::kInvalidArgument);
}

TEST(CanvasTest, CentredOffsetsFollowThePrior) {
  std::mt19937_64 rng(7);
  double sum = 0, sum_sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const Offset o = SampleCentredOffset(rng, 7.0);
    ASSERT_TRUE(o.x >= 0 && o.x <= kMaxOffset);
    sum += o.x;
    sum_sq += o.x * o.x;
  }
  const double mean = sum / n, var = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 18.0, 0.2);
  // Truncation at 0 and 36 (2.6 sigma) and rounding: the std stays within 5% of 7.
  EXPECT_NEAR(std::sqrt(var), 7.0, 0.35);
}

}  // namespace
}  // namespace dnd::models
