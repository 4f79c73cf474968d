// Tests of the exact Fashion-MNIST expert (worker/experts/exact_expert.h): its posterior mean and
// footprint against a brute-force float64 computation that materialises every shifted component,
// the utility maps' normalisation, the guidance gradient against finite differences, batching, and
// the error cases.
#include "worker/experts/exact_expert.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/worker/reference_maps.h"
#include "worker/experts/expert.h"
#include "worker/experts/fashion_mnist.h"

namespace dnd::experts {
namespace {

constexpr int kSide = 64;
constexpr int kPixels = kSide * kSide;
constexpr int kOffsets = 37;

ExpertConfig TinyConfig(bool float64) {
  ExpertConfig config;
  config.backend = "exact";
  config.name = "tiny";
  config.concepts = {"sneaker", "bag"};
  config.items_per_class = 2;
  config.exact_float64 = float64;
  return config;
}

std::unique_ptr<Expert> MakeExpert(const ExpertConfig& config) {
  StatusOr<std::unique_ptr<Expert>> expert = CreateExpert(config);
  EXPECT_TRUE(expert.ok()) << expert.status().ToString();
  return std::move(expert).value();
}

// The brute-force posterior of a mixture over (item, offset): every component canvas is built.
struct BruteForce {
  std::vector<double> eps;        // 64*64
  std::vector<double> footprint;  // 64*64, unnormalised
};

template <typename Real>
BruteForce Posterior(const std::vector<FashionMnistItem>& items, const std::vector<Real>& x,
                     double a, double s0, double prior_std) {
  const double v = a * s0 * s0 + (1.0 - a);
  const double sqrt_a = std::sqrt(a);
  const int num_components = static_cast<int>(items.size()) * kOffsets * kOffsets;
  std::vector<double> logits(num_components);
  std::vector<double> canvas(kPixels);
  auto build = [&](const FashionMnistItem& item, int py, int px) {
    std::fill(canvas.begin(), canvas.end(), -1.0);
    for (int r = 0; r < 28; ++r) {
      for (int c = 0; c < 28; ++c) {
        canvas[(py + r) * kSide + px + c] = item.pixels[r * 28 + c] / 255.0 * 2.0 - 1.0;
      }
    }
  };
  const double centre = 18.0;
  int n = 0;
  for (const FashionMnistItem& item : items) {
    for (int py = 0; py < kOffsets; ++py) {
      for (int px = 0; px < kOffsets; ++px) {
        build(item, py, px);
        double dist2 = 0.0;
        for (int j = 0; j < kPixels; ++j) {
          const double d = x[j] - sqrt_a * canvas[j];
          dist2 += d * d;
        }
        const double log_prior = -((py - centre) * (py - centre) + (px - centre) * (px - centre)) /
                                 (2.0 * prior_std * prior_std);
        logits[n++] = log_prior - dist2 / (2.0 * v);
      }
    }
  }
  const double max_logit = *std::max_element(logits.begin(), logits.end());
  double total = 0.0;
  for (double& l : logits) {
    l = std::exp(l - max_logit);
    total += l;
  }
  const double c = sqrt_a * s0 * s0 / v;
  std::vector<double> x0(kPixels, 0.0);
  BruteForce out;
  out.footprint.assign(kPixels, 0.0);
  n = 0;
  for (const FashionMnistItem& item : items) {
    for (int py = 0; py < kOffsets; ++py) {
      for (int px = 0; px < kOffsets; ++px) {
        const double r = logits[n++] / total;
        if (r < 1e-300) continue;
        build(item, py, px);
        for (int j = 0; j < kPixels; ++j)
          x0[j] += r * (canvas[j] + c * (x[j] - sqrt_a * canvas[j]));
        for (int row = 0; row < 28; ++row) {
          for (int col = 0; col < 28; ++col) {
            if (item.pixels[row * 28 + col] > 0) out.footprint[(py + row) * kSide + px + col] += r;
          }
        }
      }
    }
  }
  out.eps.resize(kPixels);
  for (int j = 0; j < kPixels; ++j) out.eps[j] = (x[j] - sqrt_a * x0[j]) / std::sqrt(1.0 - a);
  return out;
}

// A noised canvas: `item` pasted at (py, px) on black, then sqrt(a) x0 + sqrt(1-a) noise.
std::vector<float> NoisedCanvas(const FashionMnistItem& item, int py, int px, double a,
                                unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<float> x(kPixels);
  for (int j = 0; j < kPixels; ++j) {
    const int row = j / kSide - py;
    const int col = j % kSide - px;
    double x0 = -1.0;
    if (row >= 0 && row < 28 && col >= 0 && col < 28)
      x0 = item.pixels[row * 28 + col] / 127.5 - 1.0;
    x[j] = static_cast<float>(std::sqrt(a) * x0 + std::sqrt(1.0 - a) * normal(rng));
  }
  return x;
}

std::vector<FashionMnistItem> TinyItems(std::vector<int> labels, int per_class = 2) {
  return LoadFirstItemsPerClass(std::string(kDefaultFashionMnistDir), labels, per_class).value();
}

double MaxAbsDiff(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0.0;
  for (size_t j = 0; j < want.size(); ++j) worst = std::max(worst, std::abs(got[j] - want[j]));
  return worst;
}

double MaxAbs(const std::vector<double>& values) {
  double worst = 0.0;
  for (double v : values) worst = std::max(worst, std::abs(v));
  return worst;
}

TEST(ExactExpertTest, DescribesItsLatentSpaceAndConcepts) {
  const std::unique_ptr<Expert> expert = MakeExpert(TinyConfig(false));
  const ExpertInfo& info = expert->Describe();
  EXPECT_EQ(info.name, "tiny");
  EXPECT_EQ(info.latent, (LatentSpace{"fashion-mnist-1x64x64", 1, 64, 64}));
  EXPECT_EQ(info.concepts, (std::vector<std::string>{"sneaker", "bag"}));
  EXPECT_EQ(info.prediction_type, PredictionType::kEpsilon);
  EXPECT_TRUE(info.SupportsUtility(UtilityKind::kScore));
  EXPECT_TRUE(info.SupportsUtility(UtilityKind::kAttention));
}

// The closed form (conv2d / conv_transpose2d) against materialised components, conditional
// (one class's items) and unconditional (all items), at low, middle and high noise.
TEST(ExactExpertTest, PosteriorMeanMatchesBruteForce) {
  const ExpertConfig config = TinyConfig(true);
  const std::unique_ptr<Expert> expert = MakeExpert(config);
  const std::vector<FashionMnistItem> sneakers = TinyItems({7});
  const std::vector<FashionMnistItem> all = TinyItems({7, 8});
  const FashionMnistItem other = TinyItems({5})[0];  // a sandal: not in the mixture
  int case_index = 0;
  for (double a : {0.05, 0.5, 0.9}) {
    const std::vector<float> x = NoisedCanvas(other, 12, 22, a, 100 + case_index++);
    StepInput input{.latent = x, .timestep = 500, .alpha_cumprod = a, .concept_name = "sneaker"};
    const std::vector<StatusOr<StepOutput>> out = expert->Step({&input, 1});
    ASSERT_TRUE(out[0].ok()) << out[0].status().ToString();
    const BruteForce cond =
        Posterior(sneakers, x, a, config.component_std, config.position_prior_std_px);
    const BruteForce uncond =
        Posterior(all, x, a, config.component_std, config.position_prior_std_px);
    const double tolerance = 1e-5 * (1.0 + MaxAbs(cond.eps));
    EXPECT_LT(MaxAbsDiff(out[0]->prediction_cond, cond.eps), tolerance) << "a=" << a;
    EXPECT_LT(MaxAbsDiff(out[0]->prediction_uncond, uncond.eps), tolerance) << "a=" << a;
  }
}

TEST(ExactExpertTest, Float32PosteriorMeanIsCloseToBruteForce) {
  const ExpertConfig config = TinyConfig(false);
  const std::unique_ptr<Expert> expert = MakeExpert(config);
  const std::vector<FashionMnistItem> bags = TinyItems({8});
  const FashionMnistItem bag = bags[1];
  for (double a : {0.1, 0.6, 0.95}) {
    const std::vector<float> x = NoisedCanvas(bag, 18, 10, a, 7);
    StepInput input{.latent = x, .timestep = 500, .alpha_cumprod = a, .concept_name = "bag"};
    const std::vector<StatusOr<StepOutput>> out = expert->Step({&input, 1});
    ASSERT_TRUE(out[0].ok()) << out[0].status().ToString();
    const BruteForce cond =
        Posterior(bags, x, a, config.component_std, config.position_prior_std_px);
    // float32 logits of magnitude ~1e4 carry ~1e-3 absolute error: a looser tolerance.
    EXPECT_LT(MaxAbsDiff(out[0]->prediction_cond, cond.eps), 1e-2 * (1.0 + MaxAbs(cond.eps)))
        << "a=" << a;
  }
}

TEST(ExactExpertTest, AttentionUtilityIsTheNormalisedExpectedFootprint) {
  const ExpertConfig config = TinyConfig(true);
  const std::unique_ptr<Expert> expert = MakeExpert(config);
  const std::vector<FashionMnistItem> sneakers = TinyItems({7});
  const std::vector<float> x = NoisedCanvas(sneakers[0], 5, 30, 0.3, 11);
  StepInput input{.latent = x,
                  .timestep = 700,
                  .alpha_cumprod = 0.3,
                  .concept_name = "sneaker",
                  .utility = UtilityKind::kAttention};
  const std::vector<StatusOr<StepOutput>> out = expert->Step({&input, 1});
  ASSERT_TRUE(out[0].ok()) << out[0].status().ToString();
  const BruteForce cond =
      Posterior(sneakers, x, 0.3, config.component_std, config.position_prior_std_px);
  const std::vector<double> want = testing::NormaliseReference(cond.footprint);
  EXPECT_LT(MaxAbsDiff(out[0]->utility, want), 1e-6 * MaxAbs(want));
}

TEST(ExactExpertTest, ScoreUtilityMatchesTheReferenceMap) {
  const ExpertConfig config = TinyConfig(true);
  const std::unique_ptr<Expert> expert = MakeExpert(config);
  const std::vector<FashionMnistItem> sneakers = TinyItems({7});
  const std::vector<FashionMnistItem> all = TinyItems({7, 8});
  const std::vector<float> x = NoisedCanvas(all[2], 20, 14, 0.4, 12);
  StepInput input{.latent = x, .timestep = 600, .alpha_cumprod = 0.4, .concept_name = "sneaker"};
  const std::vector<StatusOr<StepOutput>> out = expert->Step({&input, 1});
  ASSERT_TRUE(out[0].ok()) << out[0].status().ToString();
  const BruteForce cond =
      Posterior(sneakers, x, 0.4, config.component_std, config.position_prior_std_px);
  const BruteForce uncond =
      Posterior(all, x, 0.4, config.component_std, config.position_prior_std_px);
  const std::vector<double> want = testing::ScoreMapReference(
      cond.eps, uncond.eps, 1, kSide, kSide, config.score_map.blur_sigma_px,
      config.score_map.clip_multiple_of_mean);
  EXPECT_LT(MaxAbsDiff(out[0]->utility, want), 1e-4 * MaxAbs(want));
}

// Every map is >= 0 and sums to 1, for both kinds, across the schedule (including its ends) and
// for latents that are far from the data.
TEST(ExactExpertTest, UtilityMapsAreNonNegativeAndSumToOne) {
  ExpertConfig config = TinyConfig(false);
  config.items_per_class = 8;
  const std::unique_ptr<Expert> expert = MakeExpert(config);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  int checked = 0;
  for (double a : {0.0047, 0.1, 0.5, 0.9, 0.99915}) {
    for (float scale : {1.0f, 10.0f}) {
      std::vector<float> x(kPixels);
      for (float& v : x) v = scale * normal(rng);
      for (UtilityKind kind : {UtilityKind::kScore, UtilityKind::kAttention}) {
        for (const char* concept_name : {"sneaker", "bag"}) {
          StepInput input{.latent = x,
                          .timestep = 1,
                          .alpha_cumprod = a,
                          .concept_name = concept_name,
                          .utility = kind};
          const std::vector<StatusOr<StepOutput>> out = expert->Step({&input, 1});
          ASSERT_TRUE(out[0].ok()) << out[0].status().ToString();
          double total = 0.0;
          int negative = 0;
          int non_finite = 0;
          for (float u : out[0]->utility) {
            total += u;
            negative += u < 0.0f;
            non_finite += !std::isfinite(u);
          }
          for (float e : out[0]->prediction_cond) non_finite += !std::isfinite(e);
          for (float e : out[0]->prediction_uncond) non_finite += !std::isfinite(e);
          EXPECT_EQ(negative, 0);
          EXPECT_EQ(non_finite, 0) << "a=" << a << " scale=" << scale;
          EXPECT_NEAR(total, 1.0, 1e-4);
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 40);
}

// Directional derivatives of U(x) = sum_j Q_j u_j(x) against the gradient from Gradient(), for both
// utility kinds. U is evaluated in float64 by the brute-force posterior (shown equal to the
// expert's maps by the tests above), so the finite differences are not limited by float32 rounding.
TEST(ExactExpertTest, GradientMatchesFiniteDifferences) {
  const ExpertConfig config = TinyConfig(true);
  const std::unique_ptr<Expert> expert = MakeExpert(config);
  const std::vector<FashionMnistItem> items = TinyItems({7, 8});
  const std::vector<FashionMnistItem> sneakers = TinyItems({7});
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal;
  // A left-to-right ramp plus noise: U then depends on where the item sits.
  std::vector<float> allocation(kPixels);
  for (int j = 0; j < kPixels; ++j) {
    allocation[j] = static_cast<float>(0.8 * (j % kSide) / 63.0 + 0.2 * uniform(rng));
  }
  // A noised bag under the sneaker condition: the conditional and unconditional posteriors differ
  // (for a sneaker both would pick the same component and the score map would vanish).
  const double a = 0.3;
  const std::vector<float> x = NoisedCanvas(items[2], 16, 20, a, 21);
  for (UtilityKind kind : {UtilityKind::kScore, UtilityKind::kAttention}) {
    const StepInput step{.latent = x,
                         .timestep = 500,
                         .alpha_cumprod = a,
                         .concept_name = "sneaker",
                         .utility = kind};
    const GradientInput request{.step = step, .allocation = allocation};
    const std::vector<StatusOr<std::vector<float>>> grad = expert->Gradient({&request, 1});
    ASSERT_TRUE(grad[0].ok()) << grad[0].status().ToString();
    auto allocated_utility = [&](const std::vector<double>& latent) {
      const BruteForce cond =
          Posterior(sneakers, latent, a, config.component_std, config.position_prior_std_px);
      std::vector<double> u;
      if (kind == UtilityKind::kAttention) {
        u = testing::NormaliseReference(cond.footprint);
      } else {
        const BruteForce uncond =
            Posterior(items, latent, a, config.component_std, config.position_prior_std_px);
        u = testing::ScoreMapReference(cond.eps, uncond.eps, 1, kSide, kSide,
                                       config.score_map.blur_sigma_px,
                                       config.score_map.clip_multiple_of_mean);
      }
      double total = 0.0;
      for (int j = 0; j < kPixels; ++j) total += double{allocation[j]} * u[j];
      return total;
    };
    for (int trial = 0; trial < 3; ++trial) {
      std::vector<double> direction(kPixels);
      for (double& d : direction) d = normal(rng);
      constexpr double kStep = 1e-5;
      std::vector<double> plus(x.begin(), x.end());
      std::vector<double> minus(x.begin(), x.end());
      double analytic = 0.0;
      for (int j = 0; j < kPixels; ++j) {
        plus[j] += kStep * direction[j];
        minus[j] -= kStep * direction[j];
        analytic += double{(*grad[0])[j]} * direction[j];
      }
      const double numeric = (allocated_utility(plus) - allocated_utility(minus)) / (2.0 * kStep);
      EXPECT_NEAR(analytic, numeric, 1e-4 * std::abs(numeric) + 1e-9)
          << UtilityKindName(kind) << " trial " << trial;
    }
  }
}

// The direct evaluation of the closed form that the expert computes with spectra on the 64x64 grid
// (docs/experts.md, "The exact expert"), in float64 with explicit sums: the valid
// cross-correlation corr_kp = <z, P_p d_k> (what conv2d computes), the responsibilities, and the
// pastings sum_kp r_kp P_p d_k (what conv_transpose2d computes). `items` are grouped by class,
// K per class; `requested` is the conditional class.
struct DirectPosterior {
  std::vector<double> eps_cond;    // 64*64
  std::vector<double> eps_uncond;  // 64*64
  std::vector<double> footprint;   // 64*64, unnormalised
};

DirectPosterior Direct(const std::vector<FashionMnistItem>& items, int items_per_class,
                       int requested, const std::vector<double>& x, double a,
                       const ExpertConfig& config) {
  const int num_items = static_cast<int>(items.size());
  const int num_offsets = kOffsets * kOffsets;
  const double s0_sq = config.component_std * config.component_std;
  const double v = a * s0_sq + (1.0 - a);
  const double sqrt_a = std::sqrt(a);
  const double prior_var = config.position_prior_std_px * config.position_prior_std_px;
  const double centre = (kOffsets - 1) / 2.0;
  std::vector<double> z(kPixels);
  for (int j = 0; j < kPixels; ++j) z[j] = x[j] + sqrt_a;
  // logits[k * 1369 + p]
  std::vector<double> logits(static_cast<size_t>(num_items) * num_offsets);
  for (int k = 0; k < num_items; ++k) {
    double sq_norm = 0.0;
    for (uint8_t pixel : items[k].pixels) sq_norm += (pixel / 127.5) * (pixel / 127.5);
    for (int py = 0; py < kOffsets; ++py) {
      for (int px = 0; px < kOffsets; ++px) {
        double corr = 0.0;
        for (int i = 0; i < 28; ++i) {
          for (int j = 0; j < 28; ++j) {
            corr += z[(py + i) * kSide + px + j] * (items[k].pixels[i * 28 + j] / 127.5);
          }
        }
        const double log_prior =
            -((py - centre) * (py - centre) + (px - centre) * (px - centre)) / (2.0 * prior_var);
        logits[k * num_offsets + py * kOffsets + px] =
            log_prior + (sqrt_a * corr - 0.5 * a * sq_norm) / v;
      }
    }
  }
  // Softmax over components [begin, end) of logits.
  auto softmax = [&](int begin, int end) {
    std::vector<double> r(logits.size(), 0.0);
    const double max_logit = *std::max_element(logits.begin() + begin, logits.begin() + end);
    double total = 0.0;
    for (int n = begin; n < end; ++n) total += r[n] = std::exp(logits[n] - max_logit);
    for (int n = begin; n < end; ++n) r[n] /= total;
    return r;
  };
  // sum_kp r_kp P_p w_k with w_k = d_k (mask = false) or the item's mask.
  auto paste = [&](const std::vector<double>& r, bool mask) {
    std::vector<double> out(kPixels, 0.0);
    for (int k = 0; k < num_items; ++k) {
      for (int p = 0; p < num_offsets; ++p) {
        const double weight = r[k * num_offsets + p];
        if (weight == 0.0) continue;
        const int py = p / kOffsets;
        const int px = p % kOffsets;
        for (int i = 0; i < 28; ++i) {
          for (int j = 0; j < 28; ++j) {
            const uint8_t pixel = items[k].pixels[i * 28 + j];
            out[(py + i) * kSide + px + j] += weight * (mask ? (pixel > 0) : pixel / 127.5);
          }
        }
      }
    }
    return out;
  };
  const std::vector<double> r_cond = softmax(requested * items_per_class * num_offsets,
                                             (requested + 1) * items_per_class * num_offsets);
  const std::vector<double> r_uncond = softmax(0, num_items * num_offsets);
  const double c = sqrt_a * s0_sq / v;
  auto to_eps = [&](const std::vector<double>& pasted) {
    std::vector<double> eps(kPixels);
    for (int j = 0; j < kPixels; ++j) {
      const double x0 = (1.0 - c * sqrt_a) * (pasted[j] - 1.0) + c * x[j];
      eps[j] = (x[j] - sqrt_a * x0) / std::sqrt(1.0 - a);
    }
    return eps;
  };
  return {to_eps(paste(r_cond, false)), to_eps(paste(r_uncond, false)), paste(r_cond, true)};
}

std::vector<double> DirectUtility(const DirectPosterior& posterior, UtilityKind kind,
                                  const ExpertConfig& config) {
  if (kind == UtilityKind::kAttention) return testing::NormaliseReference(posterior.footprint);
  return testing::ScoreMapReference(posterior.eps_cond, posterior.eps_uncond, 1, kSide, kSide,
                                    config.score_map.blur_sigma_px,
                                    config.score_map.clip_multiple_of_mean);
}

// Three classes of K = 3 (odd: the expert pairs items, so the last pair of each class is padded).
ExpertConfig ThreeClassConfig(bool float64) {
  ExpertConfig config = TinyConfig(float64);
  config.concepts = {"sneaker", "bag", "sandal"};
  config.items_per_class = 3;
  return config;
}

// One case per (noise level, utility kind), for the schedule tests below. The latent is a noised
// canvas of an item of the mixture; with `ties`, at a = 0.9 and 0.999 it is instead sqrt(a) times
// the mean of the item's canvases at two neighbouring offsets, without noise: the two components
// tie (their log priors differ by 0.01 to 0.05), so the posterior and the utilities move with x
// (a noised canvas gives one component all the weight at low noise: a saturated softmax, whose
// gradient is ~0). Score cases request another class than the item's (for its own class the
// conditional and unconditional posteriors coincide and the score map is rounding noise);
// attention cases request the item's class.
struct ScheduleCase {
  std::vector<float> latent;
  double alpha = 0.0;
  int requested = 0;  // class index into ThreeClassConfig().concepts
  UtilityKind kind = UtilityKind::kScore;
};

std::vector<ScheduleCase> ScheduleCases(const std::vector<FashionMnistItem>& items, bool ties) {
  std::vector<ScheduleCase> cases;
  int i = 0;
  for (double a : {0.01, 0.3, 0.9, 0.999}) {
    for (UtilityKind kind : {UtilityKind::kScore, UtilityKind::kAttention}) {
      const int item = (4 * i + 1) % 9;  // item / 3 is its class
      const int py = 14 + i;
      const int px = 21 - i;
      ScheduleCase c;
      if (!ties || a < 0.5) {
        c.latent = NoisedCanvas(items[item], py, px, a, 200 + i);
      } else {
        const std::vector<float> left = NoisedCanvas(items[item], py, px, 1.0, 0);
        const std::vector<float> right = NoisedCanvas(items[item], py, px + 1, 1.0, 0);
        c.latent.resize(kPixels);
        for (int j = 0; j < kPixels; ++j) {
          c.latent[j] = static_cast<float>(std::sqrt(a) * 0.5 * (double{left[j]} + right[j]));
        }
      }
      c.alpha = a;
      c.requested = kind == UtilityKind::kScore ? (item / 3 + 1 + i % 2) % 3 : item / 3;
      c.kind = kind;
      cases.push_back(std::move(c));
      ++i;
    }
  }
  return cases;
}

// The expert's FFT formulation against the direct float64 sums, in one batch that mixes noise
// levels from a = 0.01 to 0.999, classes and utility kinds.
// float64, with ties: the outputs are float32, so the bound is their rounding, 6e-8 relative;
// the tolerance is 1e-6 relative (observed: at most 5e-8 of 1 + max |eps|, 8e-8 of max |u|).
// float32, without ties: the logits (up to ~1e5 at a = 0.999) carry float32 rounding, which a
// saturated posterior does not feel; tolerance 1e-3 relative (observed: at most 3e-6). A tie at
// a = 0.999 is decided by a logit difference of 0.01 to 0.05, a few times float32's spacing there
// (~0.008): float32 cannot resolve it, in this formulation (0.03 absolute error in eps) or in the
// former conv2d one (0.07), so ties are checked in float64 only.
TEST(ExactExpertTest, FftFormulationMatchesDirectSumsAcrossTheSchedule) {
  const std::vector<FashionMnistItem> items = TinyItems({7, 8, 5}, 3);
  for (bool float64 : {true, false}) {
    const ExpertConfig config = ThreeClassConfig(float64);
    const std::unique_ptr<Expert> expert = MakeExpert(config);
    const std::vector<ScheduleCase> cases = ScheduleCases(items, /*ties=*/float64);
    std::vector<StepInput> batch;
    for (const ScheduleCase& c : cases) {
      batch.push_back({.latent = c.latent,
                       .timestep = 1,
                       .alpha_cumprod = c.alpha,
                       .concept_name = config.concepts[c.requested],
                       .utility = c.kind});
    }
    const std::vector<StatusOr<StepOutput>> out = expert->Step(batch);
    ASSERT_EQ(out.size(), cases.size());
    const double tolerance = float64 ? 1e-6 : 1e-3;
    for (size_t i = 0; i < cases.size(); ++i) {
      ASSERT_TRUE(out[i].ok()) << out[i].status().ToString();
      const ScheduleCase& c = cases[i];
      const DirectPosterior want =
          Direct(items, 3, c.requested, std::vector<double>(c.latent.begin(), c.latent.end()),
                 c.alpha, config);
      const std::vector<double> utility = DirectUtility(want, c.kind, config);
      const std::string where = std::string(float64 ? "float64" : "float32") +
                                " a=" + std::to_string(c.alpha) + " " +
                                std::string(UtilityKindName(c.kind));
      EXPECT_LT(MaxAbsDiff(out[i]->prediction_cond, want.eps_cond),
                tolerance * (1.0 + MaxAbs(want.eps_cond)))
          << where;
      EXPECT_LT(MaxAbsDiff(out[i]->prediction_uncond, want.eps_uncond),
                tolerance * (1.0 + MaxAbs(want.eps_uncond)))
          << where;
      EXPECT_LT(MaxAbsDiff(out[i]->utility, utility), tolerance * MaxAbs(utility)) << where;
    }
  }
}

// The gradient of U(x) = sum_j Q_j u_j(x) through the FFT formulation (autograd through the
// transforms) against central differences of the direct float64 U along random directions, across
// the schedule (with ties at low noise) and both kinds, in one batch. The step
// h = min(1e-6, 1e-4 v / sqrt(a)): the score map's clip is a kink, and a difference across a kink
// errs by O(h) (seen up to 1e-2 at h = 1e-3); at low noise the logits' slope, sqrt(a)/v times
// <direction, P_p d_k> ~ 30, must keep their change per step near 1e-3 for the truncation error
// (its square) to stay small. Rounding of U (1e-16 of logits up to 1e6) over h stays under 2e-5
// relative; the tolerance is 1e-4 relative (observed: at most 1.4e-6).
// float32 (no ties): compared at a = 0.01 and 0.3 only, where the posterior is spread (at low noise
// a noised canvas saturates it and the gradient is ~0); the transforms' rounding passes through
// the logits' slope; tolerance 1e-3 relative (observed: at most 8e-6).
TEST(ExactExpertTest, FftGradientMatchesDirectFiniteDifferencesAcrossTheSchedule) {
  const std::vector<FashionMnistItem> items = TinyItems({7, 8, 5}, 3);
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<double> normal;
  std::vector<float> allocation(kPixels);
  for (int j = 0; j < kPixels; ++j) {
    allocation[j] = static_cast<float>(0.8 * (j / kSide) / 63.0 + 0.2 * uniform(rng));
  }
  for (bool float64 : {true, false}) {
    const ExpertConfig config = ThreeClassConfig(float64);
    const std::unique_ptr<Expert> expert = MakeExpert(config);
    const std::vector<ScheduleCase> cases = ScheduleCases(items, /*ties=*/float64);
    std::vector<GradientInput> batch;
    for (const ScheduleCase& c : cases) {
      batch.push_back({.step = {.latent = c.latent,
                                .timestep = 1,
                                .alpha_cumprod = c.alpha,
                                .concept_name = config.concepts[c.requested],
                                .utility = c.kind},
                       .allocation = allocation});
    }
    const std::vector<StatusOr<std::vector<float>>> grad = expert->Gradient(batch);
    ASSERT_EQ(grad.size(), cases.size());
    const double tolerance = float64 ? 1e-4 : 1e-3;
    for (size_t i = 0; i < cases.size(); ++i) {
      ASSERT_TRUE(grad[i].ok()) << grad[i].status().ToString();
      const ScheduleCase& c = cases[i];
      if (!float64 && c.alpha > 0.5) continue;
      auto allocated_utility = [&](const std::vector<double>& latent) {
        const std::vector<double> u =
            DirectUtility(Direct(items, 3, c.requested, latent, c.alpha, config), c.kind, config);
        double total = 0.0;
        for (int j = 0; j < kPixels; ++j) total += double{allocation[j]} * u[j];
        return total;
      };
      const double v = c.alpha * config.component_std * config.component_std + (1.0 - c.alpha);
      const double step = std::min(1e-6, 1e-4 * v / std::sqrt(c.alpha));
      for (int trial = 0; trial < 2; ++trial) {
        std::vector<double> direction(kPixels);
        for (double& d : direction) d = normal(rng);
        std::vector<double> plus(c.latent.begin(), c.latent.end());
        std::vector<double> minus(c.latent.begin(), c.latent.end());
        double analytic = 0.0;
        for (int j = 0; j < kPixels; ++j) {
          plus[j] += step * direction[j];
          minus[j] -= step * direction[j];
          analytic += double{(*grad[i])[j]} * direction[j];
        }
        const double numeric = (allocated_utility(plus) - allocated_utility(minus)) / (2.0 * step);
        EXPECT_NEAR(analytic, numeric, tolerance * std::abs(numeric) + 1e-10)
            << (float64 ? "float64" : "float32") << " a=" << c.alpha << " "
            << UtilityKindName(c.kind) << " trial " << trial;
      }
    }
  }
}

// A batch mixing concepts, noise levels and utility kinds gives each item what it gets alone.
TEST(ExactExpertTest, BatchedStepMatchesSingleItemSteps) {
  const std::unique_ptr<Expert> expert = MakeExpert(TinyConfig(false));
  const std::vector<FashionMnistItem> items = TinyItems({7, 8});
  std::vector<std::vector<float>> latents;
  std::vector<StepInput> batch;
  const double alphas[] = {0.2, 0.7, 0.95, 0.5};
  for (int i = 0; i < 4; ++i)
    latents.push_back(NoisedCanvas(items[i], 3 * i, 30 - 5 * i, alphas[i], i));
  for (int i = 0; i < 4; ++i) {
    batch.push_back({.latent = latents[i],
                     .timestep = 100 * i,
                     .alpha_cumprod = alphas[i],
                     .concept_name = i % 2 ? "bag" : "sneaker",
                     .utility = i < 2 ? UtilityKind::kAttention : UtilityKind::kScore});
  }
  const std::vector<StatusOr<StepOutput>> together = expert->Step(batch);
  ASSERT_EQ(together.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const std::vector<StatusOr<StepOutput>> alone = expert->Step({&batch[i], 1});
    ASSERT_TRUE(together[i].ok() && alone[0].ok());
    for (auto member :
         {&StepOutput::prediction_cond, &StepOutput::prediction_uncond, &StepOutput::utility}) {
      const std::vector<float>& got = (*together[i]).*member;
      const std::vector<float>& want = (*alone[0]).*member;
      double worst = 0.0;
      double scale = 0.0;
      for (size_t j = 0; j < want.size(); ++j) {
        worst = std::max(worst, double{std::abs(got[j] - want[j])});
        scale = std::max(scale, double{std::abs(want[j])});
      }
      EXPECT_LE(worst, 1e-5 * scale) << "item " << i;
    }
  }
}

// The workers batch whatever jobs are in flight, so an item's outputs must not depend on the
// batch around it, to the bit: otherwise a job's image changes from run to run with the timing of
// the others (it did for the score utility's gradient while its blur was an at::conv2d). Steps and
// gradients of a 32-item batch against each item alone, for both utility kinds.
TEST(ExactExpertTest, AnItemGetsTheSameBitsInABatchAsAlone) {
  const std::unique_ptr<Expert> expert = MakeExpert(TinyConfig(false));
  const std::vector<FashionMnistItem> items = TinyItems({7, 8});
  constexpr int kBatch = 32;
  const double alphas[] = {0.2, 0.7, 0.95, 0.5};
  std::vector<std::vector<float>> latents;
  for (int i = 0; i < kBatch; ++i) {
    latents.push_back(
        NoisedCanvas(items[i % 4], 3 * (i % 4), 30 - 5 * (i % 4), alphas[i % 4], 40 + i));
  }
  std::vector<float> allocation(kPixels);
  for (int j = 0; j < kPixels; ++j) allocation[j] = static_cast<float>((j % kSide) / 63.0);
  for (UtilityKind kind : {UtilityKind::kScore, UtilityKind::kAttention}) {
    std::vector<GradientInput> batch;
    std::vector<StepInput> steps;
    for (int i = 0; i < kBatch; ++i) {
      steps.push_back({.latent = latents[i],
                       .timestep = 100 * (i % 4),
                       .alpha_cumprod = alphas[i % 4],
                       .concept_name = i % 2 ? "bag" : "sneaker",
                       .utility = kind});
      batch.push_back({.step = steps.back(), .allocation = allocation});
    }
    const std::vector<StatusOr<StepOutput>> stepped = expert->Step(steps);
    const std::vector<StatusOr<std::vector<float>>> gradients = expert->Gradient(batch);
    ASSERT_EQ(stepped.size(), static_cast<size_t>(kBatch));
    ASSERT_EQ(gradients.size(), static_cast<size_t>(kBatch));
    int steps_differ = 0;
    int gradients_differ = 0;
    for (int i = 0; i < kBatch; ++i) {
      const std::vector<StatusOr<StepOutput>> step_alone = expert->Step({&steps[i], 1});
      const std::vector<StatusOr<std::vector<float>>> gradient_alone =
          expert->Gradient({&batch[i], 1});
      ASSERT_TRUE(stepped[i].ok() && step_alone[0].ok() && gradients[i].ok() &&
                  gradient_alone[0].ok());
      steps_differ += stepped[i]->prediction_cond != step_alone[0]->prediction_cond ||
                      stepped[i]->prediction_uncond != step_alone[0]->prediction_uncond ||
                      stepped[i]->utility != step_alone[0]->utility;
      gradients_differ += *gradients[i] != *gradient_alone[0];
    }
    EXPECT_EQ(steps_differ, 0) << UtilityKindName(kind) << ": items of " << kBatch;
    EXPECT_EQ(gradients_differ, 0) << UtilityKindName(kind) << ": items of " << kBatch;
  }
}

TEST(ExactExpertTest, UnknownConceptIsNotFoundAndListsTheKnownOnes) {
  const std::unique_ptr<Expert> expert = MakeExpert(TinyConfig(false));
  const std::vector<float> x(kPixels, 0.0f);
  StepInput input{.latent = x, .alpha_cumprod = 0.5, .concept_name = "dress"};
  const std::vector<StatusOr<StepOutput>> out = expert->Step({&input, 1});
  EXPECT_EQ(out[0].status().code(), StatusCode::kNotFound);
  EXPECT_EQ(out[0].status().message(),
            "expert 'tiny' does not know concept 'dress'; known concepts: sneaker, bag");
}

TEST(ExactExpertTest, WrongLatentSizeIsInvalidArgument) {
  const std::unique_ptr<Expert> expert = MakeExpert(TinyConfig(false));
  const std::vector<float> x(4000, 0.0f);
  StepInput input{.latent = x, .alpha_cumprod = 0.5, .concept_name = "bag"};
  const std::vector<StatusOr<StepOutput>> out = expert->Step({&input, 1});
  EXPECT_EQ(out[0].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out[0].status().message(),
            "latent has 4000 values, expert 'tiny' expects 1x64x64 (4096)");
}

TEST(ExactExpertTest, NonFiniteInputsAreInvalidArgument) {
  const std::unique_ptr<Expert> expert = MakeExpert(TinyConfig(false));
  std::vector<float> bad(kPixels, 0.0f);
  bad[17] = std::nanf("");
  const std::vector<float> good(kPixels, 0.0f);
  StepInput nan_latent{.latent = bad, .alpha_cumprod = 0.5, .concept_name = "bag"};
  StepInput inf_alpha{.latent = good, .alpha_cumprod = INFINITY, .concept_name = "bag"};
  StepInput alpha_one{.latent = good, .alpha_cumprod = 1.0, .concept_name = "bag"};
  const std::vector<StepInput> batch = {nan_latent, inf_alpha, alpha_one};
  const std::vector<StatusOr<StepOutput>> out = expert->Step(batch);
  for (const auto& result : out) EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out[0].status().message().find("index 17"), std::string::npos);
}

TEST(ExactExpertTest, BadItemDoesNotFailTheRestOfTheBatch) {
  const std::unique_ptr<Expert> expert = MakeExpert(TinyConfig(false));
  const std::vector<float> x(kPixels, -0.5f);
  const std::vector<float> short_latent(10, 0.0f);
  const std::vector<StepInput> batch = {
      {.latent = x, .alpha_cumprod = 0.5, .concept_name = "bag"},
      {.latent = short_latent, .alpha_cumprod = 0.5, .concept_name = "bag"},
      {.latent = x, .alpha_cumprod = 0.5, .concept_name = "sneaker"}};
  const std::vector<StatusOr<StepOutput>> out = expert->Step(batch);
  EXPECT_TRUE(out[0].ok());
  EXPECT_EQ(out[1].status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(out[2].ok());
}

TEST(ExactExpertTest, BadAllocationIsInvalidArgument) {
  const std::unique_ptr<Expert> expert = MakeExpert(TinyConfig(false));
  const std::vector<float> x(kPixels, 0.0f);
  const std::vector<float> short_allocation(100, 0.5f);
  std::vector<float> negative(kPixels, 0.5f);
  negative[3] = -1.0f;
  const StepInput step{.latent = x, .alpha_cumprod = 0.5, .concept_name = "bag"};
  const std::vector<GradientInput> batch = {{.step = step, .allocation = short_allocation},
                                            {.step = step, .allocation = negative}};
  const std::vector<StatusOr<std::vector<float>>> out = expert->Gradient(batch);
  EXPECT_EQ(out[0].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out[1].status().code(), StatusCode::kInvalidArgument);
}

TEST(ExactExpertTest, CreationErrorsNameTheProblem) {
  ExpertConfig missing = TinyConfig(false);
  missing.model_path = "/nonexistent/fashion-mnist";
  EXPECT_EQ(CreateExpert(missing).status().code(), StatusCode::kNotFound);
  ExpertConfig unknown_class = TinyConfig(false);
  unknown_class.concepts = {"sneaker", "hat"};
  EXPECT_EQ(CreateExpert(unknown_class).status().code(), StatusCode::kInvalidArgument);
  ExpertConfig no_concepts = TinyConfig(false);
  no_concepts.concepts.clear();
  EXPECT_EQ(CreateExpert(no_concepts).status().code(), StatusCode::kInvalidArgument);
  ExpertConfig bad_backend = TinyConfig(false);
  bad_backend.backend = "onnx";
  EXPECT_EQ(CreateExpert(bad_backend).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dnd::experts
