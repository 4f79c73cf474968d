#include "protocol/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace dnd {
namespace {

StatusOr<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgumentError("value " + std::to_string(v) + " is not positive");
  return v;
}

StatusOr<int> Doubled(int v) {
  DND_ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status CheckBoth(int a, int b) {
  DND_RETURN_IF_ERROR(ParsePositive(a).status());
  DND_RETURN_IF_ERROR(ParsePositive(b).status());
  return OkStatus();
}

TEST(StatusTest, OkHasCodeOkAndEmptyMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(Status(StatusCode::kOk, "ignored").message(), "");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = NotFoundError("expert 'cats' is not connected");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: expert 'cats' is not connected");
  EXPECT_EQ(s.WithContext("job 7").message(), "job 7: expert 'cats' is not connected");
  EXPECT_EQ(s, NotFoundError("expert 'cats' is not connected"));
  EXPECT_NE(s, UnavailableError("expert 'cats' is not connected"));
}

TEST(StatusTest, MacrosPropagateTheFirstError) {
  EXPECT_EQ(*Doubled(4), 8);
  EXPECT_EQ(Doubled(-1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckBoth(1, 2).ok());
  Status s = CheckBoth(1, -3);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "value -3 is not positive");
}

TEST(StatusTest, StatusOrHoldsMoveOnlyValues) {
  StatusOr<std::unique_ptr<int>> p = std::make_unique<int>(5);
  ASSERT_TRUE(p.ok());
  std::unique_ptr<int> owned = std::move(p).value();
  EXPECT_EQ(*owned, 5);
}

TEST(StatusDeathTest, ValueOfAnErrorAborts) {
  StatusOr<int> bad = InternalError("boom");
  EXPECT_DEATH({ (void)bad.value(); }, "boom");
}

TEST(StatusDeathTest, CheckWithoutContextCompilesAndAborts) {
  DND_CHECK(2 + 2 == 4);
  EXPECT_DEATH({ DND_CHECK(2 + 2 == 5); }, "2 \\+ 2 == 5");
}

TEST(StatusDeathTest, CheckAbortsWithContext) {
  EXPECT_DEATH({ DND_CHECK(1 + 1 == 3) << "arithmetic is broken"; }, "arithmetic is broken");
}

}  // namespace
}  // namespace dnd
