// Branch-free exp and log for the allocation solver's inner loops, written so that GCC vectorises
// them at the baseline x86-64 ISA (SSE2: only +, -, *, /, selects and 64-bit integer shifts; the
// selects need -fno-trapping-math, set for allocation.cc in CMakeLists.txt). Relative error below
// 1e-14 on their stated domains; not for the RNG, whose portable routines live in rng.cc. Internal
// to coordinator/method.
#ifndef DND_COORDINATOR_METHOD_FAST_MATH_H_
#define DND_COORDINATOR_METHOD_FAST_MATH_H_

#include <bit>
#include <cstdint>

namespace dnd::method::internal {

// e^x for x <= 0 (inputs below -700 are treated as -700, i.e. ~1e-304; callers add the result to a
// term of size 1). x = k ln2 + r, |r| <= ln2/2, e^r by its [5/5] Pade approximant
// (E(r^2) + r O(r^2)) / (E(r^2) - r O(r^2)), error 1e-15 (measured 1.2e-15 against long double).
inline double ExpNonPositive(double x) {
  x = x < -700.0 ? -700.0 : x;
  constexpr double kShift = 0x1.8p52;  // adding it rounds to an integer held in the low bits
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // k * kLn2Hi is exact for |k| < 2^20
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  const double t = x * kLog2e + kShift;
  const double k = t - kShift;
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  const double s = r * r;
  const double even = (s * (1.0 / 1008.0) + 1.0 / 9.0) * s + 1.0;
  const double odd = r * ((s * (1.0 / 30240.0) + 1.0 / 72.0) * s + 0.5);
  const double p = (even + odd) / (even - odd);
  const int64_t ki = std::bit_cast<int64_t>(t) - std::bit_cast<int64_t>(kShift);
  const double scale = std::bit_cast<double>(static_cast<uint64_t>(ki + 1023) << 52);
  return p * scale;
}

// ln x for normal x > 0 (x >= 2.3e-308, finite). x = m 2^e with m in [sqrt(1/2), sqrt(2)),
// ln m = 2 atanh((m-1)/(m+1)) by its series to f^19 (error below 1e-15).
inline double LogPositive(double x) {
  const uint64_t bits = std::bit_cast<uint64_t>(x);
  // The biased exponent as a double, exactly: 2^52 + E - (2^52 + 1023).
  double e = std::bit_cast<double>((bits >> 52) | 0x4330000000000000ull) - (0x1p52 + 1023.0);
  double m = std::bit_cast<double>((bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
  const bool big = m > 1.4142135623730950488;
  m = big ? m * 0.5 : m;
  e = big ? e + 1.0 : e;
  const double f = (m - 1.0) / (m + 1.0);
  const double s = f * f;
  double p = 1.0 / 19.0;
  p = p * s + 1.0 / 17.0;
  p = p * s + 1.0 / 15.0;
  p = p * s + 1.0 / 13.0;
  p = p * s + 1.0 / 11.0;
  p = p * s + 1.0 / 9.0;
  p = p * s + 1.0 / 7.0;
  p = p * s + 1.0 / 5.0;
  p = p * s + 1.0 / 3.0;
  p = p * s + 1.0;
  return e * 0.6931471805599453094 + 2.0 * f * p;
}

}  // namespace dnd::method::internal

#endif  // DND_COORDINATOR_METHOD_FAST_MATH_H_
