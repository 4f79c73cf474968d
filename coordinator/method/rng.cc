// Philox4x32-10 and the portable Box-Muller transform of rng.h. This file is compiled with
// -ffp-contract=off (coordinator/method/CMakeLists.txt) so no multiply-add is fused differently on
// another CPU; every operation below is a correctly rounded IEEE-754 double operation.
#include "coordinator/method/rng.h"

#include <cmath>

namespace dnd::method {
namespace {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
constexpr double kLn2 = 0.6931471805599453094;     // rounded ln 2
constexpr double kHalfPi = 1.5707963267948966192;  // rounded pi / 2

// 2^-32 * (w + 0.5): in (0, 1), exact in double.
inline double ToOpenUnit(uint32_t w) { return (static_cast<double>(w) + 0.5) * 0x1p-32; }

}  // namespace

std::array<uint32_t, 4> Philox4x32x10(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kPhiloxW0;
      key[1] += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * ctr[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * ctr[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

// ln x = e ln2 + ln m with x = m 2^e, m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(f), f =
// (m-1)/(m+1), |f| <= 0.1716, summed as 2 f (1 + f^2/3 + f^4/5 + ...) up to f^24 (remainder below
// 1e-19).
double PortableLog(double x) {
  int e = 0;
  double m = std::frexp(x, &e);  // exact: m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  const double f = (m - 1.0) / (m + 1.0);
  const double s = f * f;
  double series = 0.0;
  for (int k = 12; k >= 1; --k) series = (series + 1.0 / (2 * k + 1)) * s;
  return e * kLn2 + 2.0 * f * (1.0 + series);
}

// Angle in turns: q = 4u, k = nearest integer, r = q - k in [-1/2, 1/2] (both exact), a = r pi/2 in
// [-pi/4, pi/4]; Taylor series of sin and cos to degree 21/20 (remainder below 1e-18), then the
// quadrant k mod 4 rotates (sin, cos).
void PortableSinCosTurns(double u, double* sin_out, double* cos_out) {
  const double q = 4.0 * u;
  const double k = std::nearbyint(q);
  const double a = (q - k) * kHalfPi;
  const double a2 = a * a;
  double sin_a = 0.0, cos_a = 0.0;
  for (int n = 10; n >= 1; --n) {
    sin_a = (1.0 - sin_a) * a2 / ((2.0 * n) * (2.0 * n + 1.0));
    cos_a = (1.0 - cos_a) * a2 / ((2.0 * n - 1.0) * (2.0 * n));
  }
  sin_a = a * (1.0 - sin_a);
  cos_a = 1.0 - cos_a;
  switch (static_cast<int64_t>(k) & 3) {
    case 0:
      *sin_out = sin_a;
      *cos_out = cos_a;
      break;
    case 1:
      *sin_out = cos_a;
      *cos_out = -sin_a;
      break;
    case 2:
      *sin_out = -sin_a;
      *cos_out = -cos_a;
      break;
    default:
      *sin_out = -cos_a;
      *cos_out = sin_a;
      break;
  }
}

void NormalGenerator::Fill(uint32_t sample, NoisePurpose purpose, uint32_t step,
                           std::span<float> out, uint64_t offset) const {
  const std::array<uint32_t, 2> key = {static_cast<uint32_t>(seed_),
                                       static_cast<uint32_t>(seed_ >> 32)};
  const uint32_t stream = sample * 2u + static_cast<uint32_t>(purpose);
  uint64_t j = offset;
  size_t k = 0;
  while (k < out.size()) {
    const uint64_t block = j / 4;
    const std::array<uint32_t, 4> w = Philox4x32x10(
        {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), step, stream}, key);
    double z[4];
    for (int pair = 0; pair < 2; ++pair) {
      const double r = std::sqrt(-2.0 * PortableLog(ToOpenUnit(w[2 * pair])));
      double s = 0, c = 0;
      PortableSinCosTurns(ToOpenUnit(w[2 * pair + 1]), &s, &c);
      z[2 * pair] = r * c;
      z[2 * pair + 1] = r * s;
    }
    for (uint64_t lane = j % 4; lane < 4 && k < out.size(); ++lane, ++j, ++k) {
      out[k] = static_cast<float>(z[lane]);
    }
  }
}

}  // namespace dnd::method
