// Tests of coordinator/method/composite: the combination with the fictitious player's average, the
// MultiDiffusion and Averaging special cases, the normalised guidance step and the seeded sampling.
#include "coordinator/method/composite.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "coordinator/method/allocation.h"

namespace dnd::method {
namespace {

std::vector<std::vector<float>> RandomFields(int count, size_t numel, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;  // test data only; values are not compared across libs
  std::vector<std::vector<float>> out(count, std::vector<float>(numel));
  for (auto& f : out) {
    for (float& v : f) v = normal(rng);
  }
  return out;
}

std::vector<std::span<const float>> Spans(const std::vector<std::vector<float>>& v) {
  return {v.begin(), v.end()};
}

// A random allocation of `players` x m, each column drawn from U(lo, 1) and normalised to sum 1.
std::vector<double> RandomAllocation(int players, int m, double lo, uint32_t seed) {
  std::vector<double> q(static_cast<size_t>(players) * m);
  std::mt19937 rng(seed);
  for (int j = 0; j < m; ++j) {
    double s = 0;
    for (int i = 0; i < players; ++i)
      s += q[i * m + j] = std::uniform_real_distribution<>(lo, 1)(rng);
    for (int i = 0; i < players; ++i) q[i * m + j] /= s;
  }
  return q;
}

TEST(CompositeTest, NoGuidanceWithHardMasksEqualsMultiDiffusion) {
  const int n = 3, c = 4, h = 5, w = 6, m = h * w;
  const auto mu = RandomFields(n, static_cast<size_t>(c) * m, 1);
  // A user layout: each position owned by (h + 2w) mod 3.
  std::vector<std::vector<float>> masks(n, std::vector<float>(m, 0.0f));
  for (int j = 0; j < m; ++j) masks[(j / w + 2 * (j % w)) % n][j] = 1.0f;
  auto q = Allocation::FromMasks(masks, m);
  ASSERT_TRUE(q.ok());
  const auto mus = Spans(mu);
  const auto g = RandomFields(n, static_cast<size_t>(c) * m, 2);
  const auto gs = Spans(g);
  std::vector<float> out(static_cast<size_t>(c) * m);
  // alpha_t -> infinity: gamma = 0 (gradients present but ignored).
  CompositeInputs in{mus, q->q, c, gs, 0.0, 0.8, 0.0};
  ASSERT_TRUE(CompositeMean(in, out).ok());
  for (int ch = 0; ch < c; ++ch) {
    for (int j = 0; j < m; ++j) {
      const int owner = (j / w + 2 * (j % w)) % n;
      EXPECT_EQ(out[ch * m + j], mu[owner][ch * m + j]) << "channel " << ch << " position " << j;
    }
  }
}

TEST(CompositeTest, UniformAllocationIsAveragingIncludingTheFictitiousShare) {
  const int n = 3, c = 2, m = 10;
  const auto mu = RandomFields(n, c * m, 3);
  const auto mus = Spans(mu);
  const auto q = Allocation::Uniform(n + 1, m);
  std::vector<float> out(c * m);
  ASSERT_TRUE(CompositeMean({mus, q.q, c, {}, 0.1, 0.5, 0.0}, out).ok());
  for (int k = 0; k < c * m; ++k) {
    double avg = 0;
    for (int i = 0; i < n; ++i) avg += mu[i][k];
    avg /= n;
    // 1/(n+1) of each proposal plus 1/(n+1) of their average = the average.
    EXPECT_NEAR(out[k], avg, 1e-6);
  }
}

TEST(CompositeTest, LiteralGuidanceIsANormalisedStepOfLengthGammaSigma) {
  const int n = 2, c = 3, m = 16;
  const size_t numel = c * m;
  const auto mu = RandomFields(n, numel, 4);
  const auto g = RandomFields(n, numel, 5);
  const auto mus = Spans(mu), gs = Spans(g);
  const std::vector<double> qv = RandomAllocation(3, m, 0.1, 6);
  const double gamma = 0.3, sigma = 0.7;
  std::vector<float> plain(numel), guided(numel);
  ASSERT_TRUE(
      CompositeMean({mus, qv, c, {}, gamma, sigma, 0.0, /*guidance_outside=*/1.0}, plain).ok());
  ASSERT_TRUE(
      CompositeMean({mus, qv, c, gs, gamma, sigma, 0.0, /*guidance_outside=*/1.0}, guided).ok());
  double sum_sq = 0;
  for (size_t k = 0; k < numel; ++k) {
    const double gk = static_cast<double>(g[0][k]) + g[1][k];
    sum_sq += gk * gk;
  }
  const double rms = std::sqrt(sum_sq / numel);
  for (size_t k = 0; k < numel; ++k) {
    // Combination recomputed here: sum_i Q_i mu_i + Q_f (mu_0 + mu_1) / 2.
    const int j = k % m;
    const double comb = qv[j] * mu[0][k] + qv[m + j] * mu[1][k] +
                        qv[2 * m + j] * (static_cast<double>(mu[0][k]) + mu[1][k]) / 2;
    EXPECT_NEAR(plain[k], comb, 1e-6);
    const double gk = static_cast<double>(g[0][k]) + g[1][k];
    EXPECT_NEAR(guided[k], comb + gamma * sigma * gk / rms, 1e-5);
  }
  // A zero gradient adds nothing (and no NaN).
  const std::vector<std::vector<float>> zeros(n, std::vector<float>(numel, 0.0f));
  const auto zs = Spans(zeros);
  std::vector<float> zero_guided(numel);
  ASSERT_TRUE(
      CompositeMean({mus, qv, c, zs, gamma, sigma, 0.0, /*guidance_outside=*/1.0}, zero_guided)
          .ok());
  EXPECT_EQ(zero_guided, plain);
}

// The default: g = sum_i Q_i ⊙ g_i, so an expert's gradient moves nothing where Q_i = 0, and the
// step is still normalised to length gamma * sigma_t (rms over all elements).
TEST(CompositeTest, GuidanceActsOnlyInEachExpertsRegion) {
  const int n = 2, c = 2, m = 12;
  const size_t numel = c * m;
  const auto mu = RandomFields(n, numel, 14);
  const auto g = RandomFields(n, numel, 15);
  const auto mus = Spans(mu), gs = Spans(g);
  // Positions 0-3 belong to expert 0, 4-7 to expert 1, 8-11 are shared by all three players.
  std::vector<double> qv(3 * m, 0.0);
  for (int j = 0; j < m; ++j) {
    if (j < 4)
      qv[j] = 1.0;
    else if (j < 8)
      qv[m + j] = 1.0;
    else
      qv[j] = qv[m + j] = qv[2 * m + j] = 1.0 / 3;
  }
  const double gamma = 0.2, sigma = 0.9;
  std::vector<float> plain(numel), guided(numel);
  CompositeInputs in{mus, qv, c, {}, gamma, sigma, 0.0};
  ASSERT_EQ(in.guidance_outside, 0.0);  // the default
  ASSERT_TRUE(CompositeMean(in, plain).ok());
  in.gradients = gs;
  ASSERT_TRUE(CompositeMean(in, guided).ok());
  std::vector<double> expected_g(numel);
  double sum_sq = 0;
  for (size_t k = 0; k < numel; ++k) {
    const int j = k % m;
    expected_g[k] = qv[j] * g[0][k] + qv[m + j] * g[1][k];
    sum_sq += expected_g[k] * expected_g[k];
  }
  const double rms = std::sqrt(sum_sq / numel);
  for (size_t k = 0; k < numel; ++k) {
    const int j = k % m;
    EXPECT_NEAR(guided[k] - plain[k], gamma * sigma * expected_g[k] / rms, 1e-5) << k;
    // Expert 1's gradient leaves expert 0's region alone, and the other way round.
    if (j < 4) {
      EXPECT_NEAR(guided[k] - plain[k], gamma * sigma * g[0][k] / rms, 1e-5);
    }
    if (j >= 4 && j < 8) {
      EXPECT_NEAR(guided[k] - plain[k], gamma * sigma * g[1][k] / rms, 1e-5);
    }
  }
  // Literal guidance differs on the same inputs (the test can tell the two apart).
  in.guidance_outside = 1.0;
  std::vector<float> literal(numel);
  ASSERT_TRUE(CompositeMean(in, literal).ok());
  double diff = 0;
  for (size_t k = 0; k < numel; ++k) diff += std::abs(literal[k] - guided[k]);
  EXPECT_GT(diff, 1e-3);
}

// Between the two: expert i's gradient weighted by Q_ij + w (1 - Q_ij), recomputed here from the
// formula, with the step still normalised to length gamma * sigma_t.
TEST(CompositeTest, PartialGuidanceOutsideTheRegionIsWeightedByW) {
  const int n = 3, c = 2, m = 10;
  const size_t numel = c * m;
  const auto mu = RandomFields(n, numel, 24);
  const auto g = RandomFields(n, numel, 25);
  const auto mus = Spans(mu), gs = Spans(g);
  const std::vector<double> qv = RandomAllocation(n + 1, m, 0.0, 26);
  const double gamma = 0.25, sigma = 0.6;
  for (const double w : {0.0, 0.3, 0.7, 1.0}) {
    std::vector<float> plain(numel), guided(numel);
    CompositeInputs in{mus, qv, c, {}, gamma, sigma, 0.0, w};
    ASSERT_TRUE(CompositeMean(in, plain).ok());
    in.gradients = gs;
    ASSERT_TRUE(CompositeMean(in, guided).ok());
    std::vector<double> expected_g(numel, 0.0);
    double sum_sq = 0;
    for (size_t k = 0; k < numel; ++k) {
      for (int i = 0; i < n; ++i) expected_g[k] += (qv[i * m + k % m] * (1 - w) + w) * g[i][k];
      sum_sq += expected_g[k] * expected_g[k];
    }
    const double rms = std::sqrt(sum_sq / numel);
    for (size_t k = 0; k < numel; ++k) {
      EXPECT_NEAR(guided[k] - plain[k], gamma * sigma * expected_g[k] / rms, 1e-5) << w << " " << k;
    }
  }
  // Out of range: refused, not clamped.
  std::vector<float> out(numel);
  for (const double w : {-0.1, 1.5, std::nan("")}) {
    CompositeInputs in{mus, qv, c, gs, gamma, sigma, 0.0, w};
    EXPECT_EQ(CompositeMean(in, out).code(), StatusCode::kInvalidArgument) << w;
  }
}

TEST(CompositeTest, StepAddsTheSeededNoise) {
  const int n = 2, c = 1, m = 33;
  const auto mu = RandomFields(n, c * m, 7);
  const auto mus = Spans(mu);
  const auto q = Allocation::Uniform(n + 1, m);
  std::vector<float> mean(m), x1(m), x2(m), z(m);
  CompositeInputs in{mus, q.q, c, {}, 0.0, 0.5, 0.25};
  ASSERT_TRUE(CompositeMean(in, mean).ok());
  const NormalGenerator gen(99);
  ASSERT_TRUE(CompositeStep(in, gen, 0, 12, x1).ok());
  ASSERT_TRUE(CompositeStep(in, gen, 0, 12, x2).ok());
  EXPECT_EQ(x1, x2);
  gen.Fill(0, NoisePurpose::kStepNoise, 12, z);
  for (int k = 0; k < m; ++k) EXPECT_NEAR(x1[k], mean[k] + 0.25 * z[k], 1e-6);
}

TEST(CompositeTest, RejectsMismatchedShapesAndNonFiniteGradients) {
  const int n = 2, c = 2, m = 8;
  const auto mu = RandomFields(n, c * m, 8);
  const auto mus = Spans(mu);
  const auto q = Allocation::Uniform(n + 1, m);
  std::vector<float> out(c * m), short_out(c * m - 2);
  EXPECT_EQ(CompositeMean({mus, q.q, c, {}, 0, 0, 0}, short_out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      CompositeMean({mus, std::span<const double>(q.q).subspan(1), c, {}, 0, 0, 0}, out).code(),
      StatusCode::kInvalidArgument);
  auto g = RandomFields(n, c * m, 9);
  g[1][3] = std::nanf("");
  const auto gs = Spans(g);
  EXPECT_EQ(CompositeMean({mus, q.q, c, gs, 0.1, 0.5, 0}, out).code(),
            StatusCode::kInvalidArgument);
  const std::vector<std::vector<float>> single(1, std::vector<float>(c * m));
  const auto one = Spans(single);
  EXPECT_EQ(CompositeMean({mus, q.q, c, one, 0.1, 0.5, 0}, out).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dnd::method
