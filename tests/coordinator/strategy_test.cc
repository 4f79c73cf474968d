// Tests of coordinator/method/strategy: every strategy through the one Begin/Finish path, including
// the "exact experts" case: Gaussian-mixture experts whose data factorise over disjoint pixel
// blocks, where giving each block to its expert reproduces the joint model's exact posterior mean
// (closed form written here).
#include "coordinator/method/strategy.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace dnd::method {
namespace {

// A mixture of isotropic Gaussians over a block of d values: weights pi_k, means, variance s2.
struct Mixture {
  std::vector<double> weights;
  std::vector<std::vector<double>> means;
  double s2 = 0.05;
};

// E[x0 | x_t] under x_t = sqrt(a) x0 + sqrt(1-a) e:
//   component k: x_t ~ N(sqrt(a) m_k, v I), v = a s2 + 1 - a, posterior weight
//   r_k ∝ pi_k exp(-|x_t - sqrt(a) m_k|^2 / (2 v)), E[x0 | x_t, k] = m_k + sqrt(a) s2 / v
//   (x_t - sqrt(a) m_k).
std::vector<double> PosteriorMean(const Mixture& mix, const std::vector<double>& xt, double a) {
  const double v = a * mix.s2 + 1 - a, sa = std::sqrt(a);
  const size_t d = xt.size(), K = mix.weights.size();
  std::vector<double> logr(K);
  double mx = -1e300;
  for (size_t k = 0; k < K; ++k) {
    double sq = 0;
    for (size_t e = 0; e < d; ++e) sq += std::pow(xt[e] - sa * mix.means[k][e], 2);
    logr[k] = std::log(mix.weights[k]) - sq / (2 * v);
    mx = std::max(mx, logr[k]);
  }
  double z = 0;
  for (double l : logr) z += std::exp(l - mx);
  std::vector<double> out(d, 0.0);
  for (size_t k = 0; k < K; ++k) {
    const double r = std::exp(logr[k] - mx) / z;
    for (size_t e = 0; e < d; ++e) {
      out[e] += r * (mix.means[k][e] + sa * mix.s2 / v * (xt[e] - sa * mix.means[k][e]));
    }
  }
  return out;
}

// The latent is 1 x 2 x 4 (m = 8); block A = columns 0-1, block B = columns 2-3.
constexpr int kH = 2, kW = 4, kM = kH * kW;
bool InBlockA(int j) { return j % kW < 2; }

std::vector<double> Gather(const std::vector<double>& x, bool block_a) {
  std::vector<double> out;
  for (int j = 0; j < kM; ++j) {
    if (InBlockA(j) == block_a) out.push_back(x[j]);
  }
  return out;
}

// x0 estimate of an expert whose data are independent mixtures on A and B.
std::vector<float> ExpertX0(const Mixture& on_a, const Mixture& on_b, const std::vector<double>& xt,
                            double a) {
  const auto ma = PosteriorMean(on_a, Gather(xt, true), a);
  const auto mb = PosteriorMean(on_b, Gather(xt, false), a);
  std::vector<float> out(kM);
  size_t ia = 0, ib = 0;
  for (int j = 0; j < kM; ++j) out[j] = static_cast<float>(InBlockA(j) ? ma[ia++] : mb[ib++]);
  return out;
}

Mixture MakeMixture(double shift) {
  Mixture m;
  m.weights = {0.3, 0.7};
  m.means = {{1.0 + shift, -0.5}, {-1.0, 0.5 - shift}, {0.2, 0.2}, {0.0, 0.0}};
  m.means.resize(2);
  for (auto& mean : m.means) mean.resize(4, 0.3 * shift);  // block of 4 values
  return m;
}

TEST(StrategyTest, ExactExpertsOnDisjointBlocksReproduceTheJointPosteriorMean) {
  const Mixture data_a = MakeMixture(0.5), data_b = MakeMixture(-0.8);
  const Mixture other_a = MakeMixture(2.0), other_b = MakeMixture(-2.5);
  auto schedule = NoiseSchedule::Create(ScheduleConfig{});
  ASSERT_TRUE(schedule.ok());
  const std::vector<double> xt = {0.3, -1.2, 0.8, 0.1, -0.4, 0.9, 1.5, -0.7};
  const std::vector<float> xt_f(xt.begin(), xt.end());
  for (int t : {981, 501, 101}) {
    auto step = schedule->Step(SamplerKind::kDdim, t, t - 20, 0.0);
    ASSERT_TRUE(step.ok());
    const double a = step->alpha_t;
    // Expert 0 knows block A's data (and something else on B); expert 1 the reverse.
    const auto x0_expert0 = ExpertX0(data_a, other_b, xt, a);
    const auto x0_expert1 = ExpertX0(other_a, data_b, xt, a);
    const ExpertOutput outputs[2] = {{x0_expert0, {}, 1.0, PredictionType::kSample},
                                     {x0_expert1, {}, 1.0, PredictionType::kSample}};
    // Joint model: A from data_a, B from data_b; DDIM mean from its exact x0.
    const auto joint = ExpertX0(data_a, data_b, xt, a);
    std::vector<double> expected(kM);
    for (int j = 0; j < kM; ++j) {
      const double eps = (xt[j] - std::sqrt(a) * joint[j]) / std::sqrt(1 - a);
      expected[j] = std::sqrt(step->alpha_prev) * joint[j] + std::sqrt(1 - step->alpha_prev) * eps;
    }
    std::vector<std::vector<float>> masks(2, std::vector<float>(kM));
    for (int j = 0; j < kM; ++j) masks[InBlockA(j) ? 0 : 1][j] = 1.0f;
    // MultiDiffusion with the block layout, and dnd with block-indicator utilities, greedy beta.
    StrategyOptions md;
    md.kind = StrategyKind::kMultiDiffusion;
    md.masks = masks;
    StrategyOptions dnd;
    dnd.kind = StrategyKind::kDivideAndDenoise;
    dnd.gamma = 0.0;
    dnd.allocation.fairness = kFairnessNone;
    dnd.allocation.beta = 1e-3;
    dnd.allocation.beta_reference_positions = 0;
    dnd.utility_smoothing = 0.0;  // the hard block utilities, unblurred
    for (const StrategyOptions& options : {md, dnd}) {
      auto strategy = Strategy::Create(options, {1, kH, kW}, 2);
      ASSERT_TRUE(strategy.ok()) << strategy.status().ToString();
      const std::vector<std::span<const float>> utilities = {masks[0], masks[1]};
      ASSERT_TRUE((*strategy)->Begin(*step, xt_f, outputs, utilities).ok());
      std::vector<float> x_prev(kM);
      ASSERT_TRUE((*strategy)->Finish({}, NormalGenerator(1), 0, 0, x_prev).ok());
      for (int j = 0; j < kM; ++j) {
        EXPECT_NEAR(x_prev[j], expected[j], 2e-5) << Name(options.kind) << " t=" << t << " j=" << j;
      }
    }
  }
}

TEST(StrategyTest, ComposableAndAveragingFollowTheirFormulas) {
  const int n = 2, m = 6;
  auto schedule = NoiseSchedule::Create(ScheduleConfig{});
  auto step = schedule->Step(SamplerKind::kDdim, 501, 481, 0.0);
  ASSERT_TRUE(step.ok());
  const std::vector<float> xt = {0.5f, -0.3f, 1.1f, 0.0f, -0.9f, 0.2f};
  const std::vector<float> c0 = {0.1f, 0.2f, 0.3f, -0.1f, 0.0f, 0.5f};
  const std::vector<float> u0 = {0.0f, 0.1f, 0.2f, -0.2f, 0.1f, 0.4f};
  const std::vector<float> c1 = {-0.4f, 0.6f, 0.1f, 0.3f, -0.2f, 0.0f};
  const std::vector<float> u1 = {-0.3f, 0.5f, 0.0f, 0.2f, -0.1f, 0.1f};
  const ExpertOutput outputs[n] = {{c0, u0, 7.5, PredictionType::kEpsilon},
                                   {c1, u1, 3.0, PredictionType::kEpsilon}};
  const double a = step->alpha_t, ap = step->alpha_prev;
  auto mean_of = [&](double x, double eps) {
    const double x0 = (x - std::sqrt(1 - a) * eps) / std::sqrt(a);
    return std::sqrt(ap) * x0 + std::sqrt(1 - ap) * eps;
  };
  for (StrategyKind kind : {StrategyKind::kComposable, StrategyKind::kAveraging}) {
    StrategyOptions o;
    o.kind = kind;
    auto s = Strategy::Create(o, {1, 2, 3}, n);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE((*s)->WantsGradients());
    ASSERT_TRUE((*s)->Begin(*step, xt, outputs, {}).ok());
    std::vector<float> x_prev(m);
    ASSERT_TRUE((*s)->Finish({}, NormalGenerator(3), 0, 5, x_prev).ok());
    for (int k = 0; k < m; ++k) {
      double expected = 0;
      if (kind == StrategyKind::kComposable) {
        const double eps = (u0[k] + u1[k]) / 2.0 + 7.5 * (c0[k] - u0[k]) + 3.0 * (c1[k] - u1[k]);
        expected = mean_of(xt[k], eps);
      } else {
        expected = (mean_of(xt[k], u0[k] + 7.5 * (c0[k] - u0[k])) +
                    mean_of(xt[k], u1[k] + 3.0 * (c1[k] - u1[k]))) /
                   2;
      }
      EXPECT_NEAR(x_prev[k], expected, 1e-5) << Name(kind) << " " << k;
    }
  }
}

TEST(StrategyTest, DivideAndDenoiseIsBitReproducibleForASeed) {
  const int n = 2, c = 4, h = 8, w = 8, m = h * w;
  auto schedule = NoiseSchedule::Create(ScheduleConfig{});
  StrategyOptions o;
  o.kind = StrategyKind::kDivideAndDenoise;
  std::vector<float> x(c * m);
  NormalGenerator gen(2024);
  gen.Fill(0, NoisePurpose::kInitialLatent, 0, x);
  std::vector<std::vector<float>> runs;
  for (int run = 0; run < 2; ++run) {
    auto s = Strategy::Create(o, {c, h, w}, n);
    ASSERT_TRUE(s.ok());
    std::vector<float> xt = x;
    auto ts = schedule->Timesteps(5);
    for (int k = 0; k < 5; ++k) {
      auto step =
          schedule->Step(SamplerKind::kDdim, (*ts)[k], schedule->PrevTimestep((*ts)[k], 5), 0.015);
      // Synthetic experts: eps_i = x * (0.1 + 0.1 i), utility peaked left / right, gradient x.
      std::vector<std::vector<float>> eps(n, std::vector<float>(c * m)),
          util(n, std::vector<float>(m));
      for (int i = 0; i < n; ++i) {
        for (int e = 0; e < c * m; ++e) eps[i][e] = xt[e] * (0.1f + 0.1f * i);
        for (int j = 0; j < m; ++j) util[i][j] = (j % w < w / 2) == (i == 0) ? 1.0f : 0.1f;
      }
      const ExpertOutput outputs[n] = {{eps[0], {}, 1.0, PredictionType::kEpsilon},
                                       {eps[1], {}, 1.0, PredictionType::kEpsilon}};
      const std::vector<std::span<const float>> us = {util[0], util[1]};
      ASSERT_TRUE((*s)->Begin(*step, xt, outputs, us).ok());
      ASSERT_TRUE((*s)->WantsGradients());
      const std::vector<std::span<const float>> grads = {xt, xt};
      std::vector<float> next(c * m);
      ASSERT_TRUE((*s)->Finish(grads, gen, 0, k, next).ok());
      xt = next;
      EXPECT_GT((*s)->allocation().position_share[0], 0.0);
    }
    runs.push_back(xt);
  }
  EXPECT_EQ(runs[0], runs[1]);
}

// Utility smoothing (SmoothMap): a Gaussian of the stated width, constants kept, nothing at 0.
TEST(StrategyTest, SmoothMapIsASeparableGaussianThatKeepsConstants) {
  const int h = 15, w = 17, cy = 7, cx = 8;
  std::vector<float> delta(h * w, 0.0f);
  delta[cy * w + cx] = 1.0f;
  std::vector<float> unchanged = delta;
  SmoothMap(unchanged, h, w, 0.0);
  EXPECT_EQ(unchanged, delta);
  const double sigma = 1.5;  // kernel radius ceil(3 sigma) = 5
  std::vector<float> blurred = delta;
  SmoothMap(blurred, h, w, sigma);
  // Within 2 of the centre the whole kernel lies inside the grid, so
  // value(dy, dx) / value(0, 0) = exp(-(dy^2 + dx^2) / (2 sigma^2)).
  const double centre = blurred[cy * w + cx];
  for (int dy = -2; dy <= 2; ++dy) {
    for (int dx = -2; dx <= 2; ++dx) {
      EXPECT_NEAR(blurred[(cy + dy) * w + cx + dx] / centre,
                  std::exp(-(dy * dy + dx * dx) / (2 * sigma * sigma)), 1e-5)
          << dy << "," << dx;
    }
  }
  EXPECT_LT(centre, 0.1);
  std::vector<float> constant(h * w, 0.25f);
  SmoothMap(constant, h, w, 3.0);
  for (float v : constant) EXPECT_NEAR(v, 0.25f, 1e-6);
  // Negative or non-finite widths are refused by Strategy::Create.
  StrategyOptions bad;
  bad.utility_smoothing = -1.0;
  EXPECT_EQ(Strategy::Create(bad, {1, 4, 4}, 2).status().code(), StatusCode::kInvalidArgument);
}

TEST(StrategyTest, ErrorsAreValues) {
  StrategyOptions o;
  o.kind = StrategyKind::kMultiDiffusion;
  o.masks = {std::vector<float>(4, 1.0f)};
  EXPECT_EQ(Strategy::Create(o, {1, 2, 2}, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseStrategyKind("product").status().code(), StatusCode::kInvalidArgument);
  // Region-centred views: the gain must be finite and >= 0, the largest shift >= 0.
  for (double gain : {-0.5, std::nan(""), HUGE_VAL}) {
    StrategyOptions views;
    views.view_gain = gain;
    EXPECT_EQ(Strategy::Create(views, {1, 4, 4}, 2).status().code(), StatusCode::kInvalidArgument)
        << "gain " << gain;
  }
  StrategyOptions shift;
  shift.view_max_shift = -1;
  EXPECT_EQ(Strategy::Create(shift, {1, 4, 4}, 2).status().code(), StatusCode::kInvalidArgument);
  shift.view_max_shift = 0;
  shift.view_gain = 0.0;
  EXPECT_TRUE(Strategy::Create(shift, {1, 4, 4}, 2).ok()) << "views off is valid";
  // The least separation of the view centres: finite and >= 0 (0 = not separated).
  for (double separation : {-1.0, std::nan(""), HUGE_VAL}) {
    StrategyOptions views;
    views.view_min_separation = separation;
    EXPECT_EQ(Strategy::Create(views, {1, 4, 4}, 2).status().code(), StatusCode::kInvalidArgument)
        << "separation " << separation;
  }
  shift.view_min_separation = 0.0;
  EXPECT_TRUE(Strategy::Create(shift, {1, 4, 4}, 2).ok()) << "no separation is valid";
  StrategyOptions reference;
  reference.view_reference_size = -16;
  EXPECT_EQ(Strategy::Create(reference, {1, 4, 4}, 2).status().code(),
            StatusCode::kInvalidArgument);
  reference.view_reference_size = 0;
  EXPECT_TRUE(Strategy::Create(reference, {1, 4, 4}, 2).ok()) << "unscaled views are valid";
  o = StrategyOptions{};
  auto s = Strategy::Create(o, {1, 2, 2}, 2);
  ASSERT_TRUE(s.ok());
  std::vector<float> x(4);
  EXPECT_EQ((*s)->Finish({}, NormalGenerator(1), 0, 0, x).code(), StatusCode::kFailedPrecondition);
  auto schedule = NoiseSchedule::Create(ScheduleConfig{});
  auto step = schedule->Step(SamplerKind::kDdim, 501, 481, 0.0);
  const std::vector<float> out(4, 0.1f), zero(4, 0.0f), ok_util(4, 1.0f);
  const ExpertOutput outputs[2] = {{out, {}, 1.0, PredictionType::kEpsilon},
                                   {out, {}, 1.0, PredictionType::kEpsilon}};
  const std::vector<std::span<const float>> utilities = {ok_util, zero};
  const Status st = (*s)->Begin(*step, x, outputs, utilities);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("expert 1"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace dnd::method
