// Tests of the progress bar (tools/progress_bar.h): the ETA from the observed rate (expected values
// computed here from the definition), duration and line formatting, and the one-line-per-10% rule
// for logs.
#include "tools/progress_bar.h"

#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace dnd::tools {
namespace {

TEST(ProgressBarTest, EtaIsTheObservedRateTimesTheStepsLeft) {
  // First seen at step 2 after 1.0 s; at step 12 after 6.0 s: 0.5 s per step, 38 steps left.
  const double per_step = (6.0 - 1.0) / (12 - 2);
  auto eta = EstimateRemainingSeconds(2, 1.0, 12, 6.0, 50);
  ASSERT_TRUE(eta.has_value());
  EXPECT_NEAR(*eta, per_step * (50 - 12), 1e-12);
}

TEST(ProgressBarTest, EtaIsUnknownUntilAStepCompletesAndZeroAtTheEnd) {
  EXPECT_FALSE(EstimateRemainingSeconds(3, 1.0, 3, 5.0, 50).has_value());
  EXPECT_FALSE(EstimateRemainingSeconds(3, 1.0, 4, 1.0, 50).has_value());  // clock did not move
  auto done = EstimateRemainingSeconds(0, 0.0, 50, 10.0, 50);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(*done, 0.0);
}

TEST(ProgressBarTest, DurationsAreMinutesSecondsOrHours) {
  EXPECT_EQ(FormatDuration(0.0), "0:00");
  EXPECT_EQ(FormatDuration(7.9), "0:07");
  EXPECT_EQ(FormatDuration(754.0), "12:34");
  EXPECT_EQ(FormatDuration(3723.0), "1:02:03");
  EXPECT_EQ(FormatDuration(std::nullopt), "--:--");
  EXPECT_EQ(FormatDuration(-1.0), "--:--");
}

TEST(ProgressBarTest, LineShowsStepPercentElapsedAndEta) {
  const std::string line = FormatProgressLine(12, 50, 3.2, 10.0, 10);
  // 12/50 = 24% -> floor(10 * 12 / 50) = 2 cells filled.
  EXPECT_EQ(line, "[##--------]  12/50   24%  elapsed 0:03  ETA 0:10");
  EXPECT_EQ(FormatProgressLine(50, 50, 61.0, 0.0, 4),
            "[####]  50/50  100%  elapsed 1:01  ETA 0:00");
  EXPECT_EQ(FormatProgressLine(0, 0, 0.0, std::nullopt, 2),
            "[--]  0/0    0%  elapsed 0:00  ETA --:--");
}

TEST(ProgressBarTest, LogsGetOneLinePerTenPercent) {
  std::ostringstream out;
  ProgressBar bar(out, /*interactive=*/false);
  for (uint32_t step = 1; step <= 50; ++step) bar.Update(step, 50, step * 0.1);
  bar.Finish();
  const std::string text = out.str();
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  // Deciles 0 (steps 1-4) through 10 (step 50): one line each.
  EXPECT_EQ(lines, 11u) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("50/50  100%"), std::string::npos) << text;
}

TEST(ProgressBarTest, TerminalRedrawsOneLineInPlace) {
  std::ostringstream out;
  ProgressBar bar(out, /*interactive=*/true);
  for (uint32_t step = 1; step <= 5; ++step) bar.Update(step, 5, step * 1.0);
  bar.Finish();
  const std::string text = out.str();
  size_t returns = 0, newlines = 0;
  for (char c : text) {
    returns += c == '\r';
    newlines += c == '\n';
  }
  EXPECT_EQ(returns, 5u);
  EXPECT_EQ(newlines, 1u);  // only Finish() ends the line
}

}  // namespace
}  // namespace dnd::tools
