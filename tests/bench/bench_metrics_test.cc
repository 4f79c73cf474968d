// Tests of tools/bench/bench_metrics.h: GenEval's counts on hand-made judgements, with the
// expected numbers worked out in the test.
#include "tools/bench/bench_metrics.h"

#include <gtest/gtest.h>

namespace dnd::bench {
namespace {

JudgedImage Image(int prompt, std::vector<int> requested, std::vector<int> detected) {
  JudgedImage image;
  image.prompt = prompt;
  image.requested = std::move(requested);
  image.detected = std::move(detected);
  return image;
}

TEST(BenchMetricsTest, CountsImagesPromptsMissingAndExtra) {
  std::vector<JudgedImage> images = {
      Image(0, {5, 8}, {5, 8}),     // correct
      Image(0, {5, 8}, {5}),        // missing 8
      Image(1, {5, 1}, {1, 5, 3}),  // correct, with an extra class
      Image(1, {5, 1}, {}),         // missing both
      Image(2, {7, 3}, {3}),        // missing 7
  };
  images[0].shares = {{"footwear", 0.4}, {"rest", 0.5}};
  images[1].shares = {{"footwear", 0.2}, {"rest", 0.3}};
  JudgedImage failed = Image(2, {7, 3}, {});
  failed.failed = true;
  images.push_back(failed);

  const Tally t = Count(images);
  EXPECT_EQ(t.images, 6);
  EXPECT_EQ(t.correct_images, 2);
  EXPECT_EQ(t.prompts, 3);
  EXPECT_EQ(t.correct_prompts, 2);  // prompts 0 and 1
  EXPECT_EQ(t.missing_images, 4);
  EXPECT_EQ(t.extra_images, 1);
  EXPECT_EQ(t.failed_images, 1);
  EXPECT_EQ(t.missing_images + t.correct_images, t.images);
  EXPECT_NEAR(t.PercentImages(), 100.0 * 2 / 6, 1e-12);
  EXPECT_NEAR(t.PercentPrompts(), 100.0 * 2 / 3, 1e-12);
  EXPECT_NEAR(t.mean_share.at("footwear"), 0.3, 1e-12);
  EXPECT_NEAR(t.mean_share.at("rest"), 0.4, 1e-12);
}

TEST(BenchMetricsTest, EmptyTallyHasZeroPercentages) {
  const Tally t = Count({});
  EXPECT_EQ(t.images, 0);
  EXPECT_EQ(t.PercentImages(), 0.0);
  EXPECT_EQ(t.PercentPrompts(), 0.0);
}

TEST(BenchMetricsTest, JsonCarriesTheIssueFields) {
  const Tally t = Count({Image(0, {5, 8}, {5, 8})});
  const nlohmann::json j = TallyJson(t);
  for (const char* key : {"images", "correct_images", "prompts", "correct_prompts"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["correct_images"], 1);
  const nlohmann::json detail = ImagesJson({Image(0, {5, 8}, {5})}, {"sandal+bag"});
  EXPECT_EQ(detail[0]["prompt"], "sandal+bag");
  EXPECT_EQ(detail[0]["requested"], nlohmann::json({"sandal", "bag"}));
  EXPECT_EQ(detail[0]["correct"], false);
}

TEST(BenchMetricsTest, MarkdownTableHasARowPerStrategy) {
  const std::string table = MarkdownTable(
      {{"dnd", Count({Image(0, {5, 8}, {5, 8})})}, {"averaging", Count({Image(0, {5, 8}, {})})}},
      {"footwear", "rest"});
  EXPECT_NE(table.find("| dnd | 100.0 (1/1) | 100.0 (1/1) |"), std::string::npos) << table;
  EXPECT_NE(table.find("| averaging | 0.0 (0/1) | 0.0 (0/1) |"), std::string::npos) << table;
}

}  // namespace
}  // namespace dnd::bench
