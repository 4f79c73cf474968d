// Tests of coordinator/method/fast_math.h: the solver's branch-free exp and log against libm
// (correctly rounded to within an ulp, so a relative error bound of 1e-14 is checked against an
// independent reference), over their whole stated domains.
#include "coordinator/method/fast_math.h"

#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

namespace dnd::method::internal {
namespace {

TEST(FastMathTest, ExpNonPositiveMatchesLibmToOneEMinusFourteen) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> wide(-700.0, 0.0), narrow(-1.0, 0.0);
  double worst = 0;
  for (int k = 0; k < 200000; ++k) {
    const double x = k % 2 ? wide(rng) : narrow(rng);
    const double ref = std::exp(x);
    worst = std::max(worst, std::abs(ExpNonPositive(x) - ref) / ref);
  }
  EXPECT_LT(worst, 1e-14);
  EXPECT_EQ(ExpNonPositive(0.0), 1.0);  // the column maximum's weight is exactly 1
  EXPECT_NEAR(ExpNonPositive(-std::log(2.0)), 0.5, 1e-16);
  // Below -700 the result is e^-700 (finite, normal), never 0 or a denormal.
  EXPECT_NEAR(ExpNonPositive(-1e6) / std::exp(-700.0), 1.0, 1e-14);
  EXPECT_GE(ExpNonPositive(-std::numeric_limits<double>::infinity()),
            std::numeric_limits<double>::min());
}

TEST(FastMathTest, LogPositiveMatchesLibmToOneEMinusFourteen) {
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> mantissa(1.0, 2.0), near_one(0.999, 1.001);
  std::uniform_int_distribution<int> exponent(-1021, 1023);
  double worst = 0;
  for (int k = 0; k < 200000; ++k) {
    const double x = k % 3 ? std::ldexp(mantissa(rng), exponent(rng)) : near_one(rng);
    if (x == 1.0) continue;
    const double ref = std::log(x);
    worst = std::max(worst, std::abs(LogPositive(x) - ref) / std::abs(ref));
  }
  EXPECT_LT(worst, 1e-14);
  EXPECT_EQ(LogPositive(1.0), 0.0);
  EXPECT_NEAR(LogPositive(std::numeric_limits<double>::min()), -708.3964185322641, 1e-12);
  EXPECT_NEAR(LogPositive(std::numeric_limits<double>::max()), 709.782712893384, 1e-12);
}

}  // namespace
}  // namespace dnd::method::internal
