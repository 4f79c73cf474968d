// Tests of coordinator/method/schedule: diffusers-compatible schedules, timesteps and DDIM/DDPM
// step coefficients. Expected values are the independently computed float64 numbers of issue 3, or
// recomputed here from the defining formulas.
#include "coordinator/method/schedule.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace dnd::method {
namespace {

NoiseSchedule StableDiffusion() {
  auto s = NoiseSchedule::Create(ScheduleConfig{});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

TEST(NoiseScheduleTest, ScaledLinearAlphasCumprodMatchIndependentValues) {
  const NoiseSchedule s = StableDiffusion();
  const std::vector<std::pair<int, double>> expected = {
      {0, 0.99915},        {1, 0.998296028},     {21, 0.980380748},
      {101, 0.892980537},  {261, 0.655669333},   {501, 0.274999067},
      {761, 0.0513639221}, {981, 0.00577550014}, {999, 0.00466009851}};
  for (const auto& [t, a] : expected) {
    EXPECT_NEAR(s.AlphaCumprod(t), a, 1e-8 * std::max(1.0, a / 1e-3)) << "t=" << t;
    EXPECT_NEAR(s.AlphaCumprod(t) / a, 1.0, 2e-8) << "t=" << t;
  }
}

TEST(NoiseScheduleTest, FinalAlphaFollowsSetAlphaToOne) {
  EXPECT_DOUBLE_EQ(StableDiffusion().AlphaCumprod(-19), StableDiffusion().AlphaCumprod(0));
  ScheduleConfig c;
  c.set_alpha_to_one = true;
  auto s = NoiseSchedule::Create(c);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->AlphaCumprod(-1), 1.0);
}

TEST(NoiseScheduleTest, LeadingSpacingWithOffsetGivesStableDiffusionTimesteps) {
  auto ts = StableDiffusion().Timesteps(50);
  ASSERT_TRUE(ts.ok());
  ASSERT_EQ(ts->size(), 50u);
  for (int k = 0; k < 50; ++k) EXPECT_EQ((*ts)[k], 981 - 20 * k);
  EXPECT_EQ(StableDiffusion().PrevTimestep(1, 50), -19);
}

TEST(NoiseScheduleTest, TrailingAndLinspaceSpacings) {
  ScheduleConfig c;
  c.timestep_spacing = TimestepSpacing::kTrailing;
  auto trailing = NoiseSchedule::Create(c)->Timesteps(50);
  ASSERT_TRUE(trailing.ok());
  for (int k = 0; k < 50; ++k) EXPECT_EQ((*trailing)[k], 999 - 20 * k);
  c.timestep_spacing = TimestepSpacing::kLinspace;
  auto lin = NoiseSchedule::Create(c)->Timesteps(4);
  ASSERT_TRUE(lin.ok());
  // linspace(0, 999, 4) = 0, 333, 666, 999.
  EXPECT_EQ(*lin, (std::vector<int>{999, 666, 333, 0}));
  // linspace(0, 999, 3) = 0, 499.5, 999: numpy rounds half to even -> 500.
  auto lin3 = NoiseSchedule::Create(c)->Timesteps(3);
  EXPECT_EQ(*lin3, (std::vector<int>{999, 500, 0}));
}

TEST(NoiseScheduleTest, DeterministicDdimStepsMatchIndependentCoefficients) {
  const NoiseSchedule s = StableDiffusion();
  const ScheduleConfig& c = s.config();
  auto step = s.Step(SamplerKind::kDdim, 981, 961, 0.0);
  ASSERT_TRUE(step.ok());
  std::vector<float> x = {1.0f, 0.0f}, eps = {0.0f, 1.0f}, mu(2);
  ASSERT_TRUE(ProposalMean(c, PredictionType::kEpsilon, *step, x, eps, mu).ok());
  EXPECT_NEAR(mu[0], 1.1228517, 2e-6);
  EXPECT_NEAR(mu[1], -0.123252006, 2e-7);
  auto last = s.Step(SamplerKind::kDdim, 1, -19, 0.0);
  ASSERT_TRUE(last.ok());
  EXPECT_DOUBLE_EQ(last->alpha_prev, 0.99915);
  ASSERT_TRUE(ProposalMean(c, PredictionType::kEpsilon, *last, x, eps, mu).ok());
  EXPECT_NEAR(mu[0], 1.00042762, 2e-6);
  EXPECT_NEAR(mu[1], -0.0121420902, 2e-7);
}

TEST(NoiseScheduleTest, DdimNoiseStdFollowsEta) {
  const NoiseSchedule s = StableDiffusion();
  const double a_t = s.AlphaCumprod(501), a_p = s.AlphaCumprod(481);
  const double var = (1 - a_p) / (1 - a_t) * (1 - a_t / a_p);
  auto step = s.Step(SamplerKind::kDdim, 501, 481, 0.015);
  ASSERT_TRUE(step.ok());
  EXPECT_NEAR(step->noise_std, 0.015 * std::sqrt(var), 1e-15);
  EXPECT_NEAR(step->coef_eps, std::sqrt(1 - a_p - step->noise_std * step->noise_std), 1e-15);
  EXPECT_NEAR(step->noise_level, std::sqrt(1 - a_t), 1e-15);
}

TEST(NoiseScheduleTest, DdpmEqualsDdimWithEtaOne) {
  // The DDPM posterior mean and fixed_small variance are DDIM's eta = 1 step written differently.
  const NoiseSchedule s = StableDiffusion();
  auto ddpm = s.Step(SamplerKind::kDdpm, 501, 481, 0.0);
  auto ddim = s.Step(SamplerKind::kDdim, 501, 481, 1.0);
  ASSERT_TRUE(ddpm.ok() && ddim.ok());
  EXPECT_NEAR(ddpm->noise_std, ddim->noise_std, 1e-12);
  std::vector<float> x = {0.7f, -1.2f, 0.1f}, eps = {0.3f, 0.5f, -2.0f}, a(3), b(3);
  ASSERT_TRUE(ProposalMean(s.config(), PredictionType::kEpsilon, *ddpm, x, eps, a).ok());
  ASSERT_TRUE(ProposalMean(s.config(), PredictionType::kEpsilon, *ddim, x, eps, b).ok());
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(a[k], b[k], 1e-5);
  // DDPM's last step uses alpha_prev = 1 and adds no noise.
  auto final_step = s.Step(SamplerKind::kDdpm, 0, -1, 0.0);
  ASSERT_TRUE(final_step.ok());
  EXPECT_EQ(final_step->alpha_prev, 1.0);
  EXPECT_EQ(final_step->noise_std, 0.0);
}

TEST(NoiseScheduleTest, PredictionTypesGiveTheSameMeanForConsistentOutputs) {
  const NoiseSchedule s = StableDiffusion();
  auto step = s.Step(SamplerKind::kDdim, 261, 241, 0.0);
  ASSERT_TRUE(step.ok());
  const double a = s.AlphaCumprod(261);
  const double x0 = 0.4, eps = -0.8;
  const float x = static_cast<float>(std::sqrt(a) * x0 + std::sqrt(1 - a) * eps);
  const float v = static_cast<float>(std::sqrt(a) * eps - std::sqrt(1 - a) * x0);
  const double expected = std::sqrt(step->alpha_prev) * x0 + std::sqrt(1 - step->alpha_prev) * eps;
  for (auto [type, out] : {std::pair{PredictionType::kEpsilon, static_cast<float>(eps)},
                           std::pair{PredictionType::kSample, static_cast<float>(x0)},
                           std::pair{PredictionType::kVPrediction, v}}) {
    std::vector<float> xs = {x}, os = {out}, mu(1);
    ASSERT_TRUE(ProposalMean(s.config(), type, *step, xs, os, mu).ok());
    EXPECT_NEAR(mu[0], expected, 1e-5) << Name(type);
  }
}

TEST(NoiseScheduleTest, LinearAndCosineSchedulesMatchTheirDefinitions) {
  ScheduleConfig c;
  c.beta_schedule = BetaSchedule::kLinear;
  c.beta_start = 0.0001;
  c.beta_end = 0.02;
  auto lin = NoiseSchedule::Create(c);
  ASSERT_TRUE(lin.ok());
  double prod = 1;
  for (int t = 0; t <= 500; ++t) prod *= 1 - (0.0001 + (0.02 - 0.0001) * t / 999.0);
  EXPECT_NEAR(lin->AlphaCumprod(500), prod, 1e-12);
  c.beta_schedule = BetaSchedule::kSquaredCosCapV2;
  auto cos = NoiseSchedule::Create(c);
  ASSERT_TRUE(cos.ok());
  // Without the cap, alphas_cumprod[t] = f((t+1)/T) / f(0), f(s) = cos^2((s+0.008)/1.008 pi/2).
  auto f = [](double s) {
    const double v = std::cos((s + 0.008) / 1.008 * M_PI / 2);
    return v * v;
  };
  EXPECT_NEAR(cos->AlphaCumprod(400), f(401 / 1000.0) / f(0), 1e-12);
  EXPECT_NEAR(cos->betas()[999], 0.999, 1e-15);  // capped
}

TEST(NoiseScheduleTest, RejectsBadConfigAndArguments) {
  ScheduleConfig c;
  c.num_train_timesteps = 0;
  EXPECT_EQ(NoiseSchedule::Create(c).status().code(), StatusCode::kInvalidArgument);
  c = ScheduleConfig{};
  c.beta_end = 1.5;
  EXPECT_EQ(NoiseSchedule::Create(c).status().code(), StatusCode::kInvalidArgument);
  const NoiseSchedule s = StableDiffusion();
  EXPECT_EQ(s.Timesteps(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Timesteps(1001).status().code(), StatusCode::kInvalidArgument);
  // Leading spacing with steps_offset 1: 1000 steps would reach t = 999 + 1 = 1000, outside
  // [0, 1000); with 999 steps (ratio 1000 / 999 = 1) the largest is 998 + 1 = 999.
  EXPECT_EQ(s.Timesteps(1000).status().code(), StatusCode::kInvalidArgument);
  auto leading_999 = s.Timesteps(999);
  ASSERT_TRUE(leading_999.ok());
  EXPECT_EQ(leading_999->front(), 999);
  EXPECT_EQ(s.Step(SamplerKind::kDdim, 1000, 980, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Step(SamplerKind::kDdim, 500, 500, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Step(SamplerKind::kDdim, 500, 480, -1).status().code(), StatusCode::kInvalidArgument);
  std::vector<float> x(3), o(2), mu(3);
  auto step = s.Step(SamplerKind::kDdim, 500, 480, 0);
  EXPECT_EQ(ProposalMean(s.config(), PredictionType::kEpsilon, *step, x, o, mu).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePredictionType("x0").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseBetaSchedule("squaredcos_cap_v2"), BetaSchedule::kSquaredCosCapV2);
}

}  // namespace
}  // namespace dnd::method
