// Tests of the TorchScript backend (worker/experts/torchscript_expert.h) end to end: a tiny model
// is written in TorchScript from C++ (torch::jit::Module::define), saved, loaded through
// CreateExpert and served; its outputs are recomputed independently in float64. Also the contract
// violations.
#include "worker/experts/torchscript_expert.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/script.h>

#include "tests/worker/reference_maps.h"
#include "worker/experts/expert.h"

namespace dnd::experts {
namespace {

constexpr int kC = 2;
constexpr int kH = 4;
constexpr int kW = 5;
constexpr int kValues = kC * kH * kW;
constexpr int kPositions = kH * kW;
// scale[cond + 1]: index 0 is the unconditional model, 1 = "cat", 2 = "dog".
const std::vector<double> kScale = {0.5, 1.5, -2.0};

// predict(x, t, cond) = scale[cond+1] x + (cond+1) tanh(x) + 0.001 t
// attention(x, t, cond) = (scale[cond+1] x[:, 0])^2
const char* const kPredict = R"JIT(
def predict(self, x, t, cond):
    s = self.scale.index_select(0, cond + 1).view(-1, 1, 1, 1)
    k = (cond + 1).float().view(-1, 1, 1, 1)
    return s * x + k * torch.tanh(x) + 0.001 * t.float().view(-1, 1, 1, 1)
)JIT";
const char* const kAttention = R"JIT(
def attention(self, x, t, cond):
    s = self.scale.index_select(0, cond + 1).view(-1, 1, 1)
    return (s * x[:, 0]) ** 2
)JIT";

struct ModuleParts {
  bool latent_space = true;
  bool latent_shape = true;
  bool concepts = true;
  bool prediction_type = true;
  bool predict = true;
  bool attention = true;
  std::string predict_source = kPredict;
};

// Writes a module with the chosen parts to a temporary file and returns its path.
std::string WriteModule(const ModuleParts& parts, const std::string& file_name) {
  torch::jit::Module module("TinyModel");
  module.register_parameter("scale", torch::tensor({0.5f, 1.5f, -2.0f}), false);
  if (parts.latent_space) {
    module.register_attribute("latent_space", c10::StringType::get(), std::string("tiny-2x4x5"));
  }
  if (parts.latent_shape) {
    module.register_attribute("latent_shape", c10::ListType::ofInts(),
                              c10::List<int64_t>({kC, kH, kW}));
  }
  if (parts.concepts) {
    module.register_attribute("concepts", c10::ListType::ofStrings(),
                              c10::List<std::string>({"cat", "dog"}));
  }
  if (parts.prediction_type) {
    module.register_attribute("prediction_type", c10::StringType::get(), std::string("epsilon"));
  }
  if (parts.predict) module.define(parts.predict_source);
  if (parts.attention) module.define(kAttention);
  const std::string path =
      (std::filesystem::temp_directory_path() / (std::to_string(getpid()) + "_" + file_name))
          .string();
  module.save(path);
  return path;
}

ExpertConfig Config(const std::string& path) {
  ExpertConfig config;
  config.backend = "torchscript";
  config.name = "tiny";
  config.model_path = path;
  return config;
}

std::vector<double> Predict(const std::vector<float>& x, int64_t t, int cond) {
  std::vector<double> out(kValues);
  for (int j = 0; j < kValues; ++j) {
    out[j] = kScale[cond + 1] * x[j] + (cond + 1) * std::tanh(double{x[j]}) + 0.001 * t;
  }
  return out;
}

std::vector<float> RandomLatent(unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(kValues);
  for (float& v : x) v = normal(rng);
  return x;
}

double MaxAbsDiff(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0.0;
  for (size_t j = 0; j < want.size(); ++j) worst = std::max(worst, std::abs(got[j] - want[j]));
  return worst;
}

TEST(TorchScriptExpertTest, DescribesTheModulesMetadata) {
  const std::string path = WriteModule({}, "describe.pt");
  StatusOr<std::unique_ptr<Expert>> expert = CreateExpert(Config(path));
  ASSERT_TRUE(expert.ok()) << expert.status().ToString();
  const ExpertInfo& info = (*expert)->Describe();
  EXPECT_EQ(info.latent, (LatentSpace{"tiny-2x4x5", kC, kH, kW}));
  EXPECT_EQ(info.concepts, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(info.prediction_type, PredictionType::kEpsilon);
  EXPECT_TRUE(info.SupportsUtility(UtilityKind::kAttention));
  std::filesystem::remove(path);
}

TEST(TorchScriptExpertTest, StepServesPredictionsAndUtilities) {
  const std::string path = WriteModule({}, "step.pt");
  StatusOr<std::unique_ptr<Expert>> expert = CreateExpert(Config(path));
  ASSERT_TRUE(expert.ok()) << expert.status().ToString();
  const std::vector<float> x0 = RandomLatent(1);
  const std::vector<float> x1 = RandomLatent(2);
  const std::vector<StepInput> batch = {
      {.latent = x0, .timestep = 10, .alpha_cumprod = 0.5, .concept_name = "dog"},
      {.latent = x1,
       .timestep = 900,
       .alpha_cumprod = 0.1,
       .concept_name = "cat",
       .utility = UtilityKind::kAttention}};
  const std::vector<StatusOr<StepOutput>> out = (*expert)->Step(batch);
  ASSERT_TRUE(out[0].ok()) << out[0].status().ToString();
  ASSERT_TRUE(out[1].ok()) << out[1].status().ToString();

  const std::vector<double> dog = Predict(x0, 10, 1);
  const std::vector<double> uncond0 = Predict(x0, 10, -1);
  EXPECT_LT(MaxAbsDiff(out[0]->prediction_cond, dog), 1e-5);
  EXPECT_LT(MaxAbsDiff(out[0]->prediction_uncond, uncond0), 1e-5);
  const std::vector<double> score = testing::ScoreMapReference(dog, uncond0, kC, kH, kW, 1.0, 3.0);
  EXPECT_LT(MaxAbsDiff(out[0]->utility, score), 1e-6);

  EXPECT_LT(MaxAbsDiff(out[1]->prediction_cond, Predict(x1, 900, 0)), 1e-5);
  EXPECT_LT(MaxAbsDiff(out[1]->prediction_uncond, Predict(x1, 900, -1)), 1e-5);
  std::vector<double> attention(kPositions);
  for (int j = 0; j < kPositions; ++j) attention[j] = std::pow(kScale[1] * x1[j], 2);
  EXPECT_LT(MaxAbsDiff(out[1]->utility, testing::NormaliseReference(attention)), 1e-6);
  std::filesystem::remove(path);
}

// Directional derivatives of U(x) = sum_j Q_j u_j(x), with U computed in float64 from the
// independent formulas above, against Gradient().
TEST(TorchScriptExpertTest, GradientMatchesFiniteDifferences) {
  const std::string path = WriteModule({}, "gradient.pt");
  StatusOr<std::unique_ptr<Expert>> expert = CreateExpert(Config(path));
  ASSERT_TRUE(expert.ok()) << expert.status().ToString();
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::normal_distribution<double> normal;
  std::vector<float> allocation(kPositions);
  for (float& q : allocation) q = uniform(rng);
  const std::vector<float> x = RandomLatent(3);
  for (UtilityKind kind : {UtilityKind::kScore, UtilityKind::kAttention}) {
    const StepInput step{
        .latent = x, .timestep = 3, .alpha_cumprod = 0.5, .concept_name = "dog", .utility = kind};
    const GradientInput request{.step = step, .allocation = allocation};
    const std::vector<StatusOr<std::vector<float>>> grad = (*expert)->Gradient({&request, 1});
    ASSERT_TRUE(grad[0].ok()) << grad[0].status().ToString();
    auto allocated_utility = [&](const std::vector<double>& latent) {
      std::vector<double> u(kPositions);
      if (kind == UtilityKind::kAttention) {
        for (int j = 0; j < kPositions; ++j) u[j] = std::pow(kScale[2] * latent[j], 2);
        u = testing::NormaliseReference(u);
      } else {
        std::vector<double> cond(kValues);
        std::vector<double> uncond(kValues);
        for (int j = 0; j < kValues; ++j) {
          cond[j] = kScale[2] * latent[j] + 2 * std::tanh(latent[j]) + 0.003;
          uncond[j] = kScale[0] * latent[j] + 0.003;
        }
        u = testing::ScoreMapReference(cond, uncond, kC, kH, kW, 1.0, 3.0);
      }
      double total = 0.0;
      for (int j = 0; j < kPositions; ++j) total += double{allocation[j]} * u[j];
      return total;
    };
    for (int trial = 0; trial < 3; ++trial) {
      constexpr double kStep = 1e-6;
      std::vector<double> plus(x.begin(), x.end());
      std::vector<double> minus(x.begin(), x.end());
      double analytic = 0.0;
      for (int j = 0; j < kValues; ++j) {
        const double d = normal(rng);
        plus[j] += kStep * d;
        minus[j] -= kStep * d;
        analytic += double{(*grad[0])[j]} * d;
      }
      const double numeric = (allocated_utility(plus) - allocated_utility(minus)) / (2.0 * kStep);
      // The model runs in float32: its gradient carries ~1e-6 relative rounding.
      EXPECT_NEAR(analytic, numeric, 1e-3 * std::abs(numeric) + 1e-6)
          << UtilityKindName(kind) << " trial " << trial;
    }
  }
  std::filesystem::remove(path);
}

TEST(TorchScriptExpertTest, ConceptSubsetAndErrors) {
  const std::string path = WriteModule({.attention = false}, "subset.pt");
  ExpertConfig config = Config(path);
  config.concepts = {"dog"};
  StatusOr<std::unique_ptr<Expert>> expert = CreateExpert(config);
  ASSERT_TRUE(expert.ok()) << expert.status().ToString();
  EXPECT_EQ((*expert)->Describe().concepts, std::vector<std::string>{"dog"});
  EXPECT_FALSE((*expert)->Describe().SupportsUtility(UtilityKind::kAttention));
  const std::vector<float> x = RandomLatent(4);
  const std::vector<float> wrong(kValues + 1, 0.0f);
  const std::vector<StepInput> batch = {
      {.latent = x, .alpha_cumprod = 0.5, .concept_name = "cat"},
      {.latent = x,
       .alpha_cumprod = 0.5,
       .concept_name = "dog",
       .utility = UtilityKind::kAttention},
      {.latent = wrong, .alpha_cumprod = 0.5, .concept_name = "dog"},
      {.latent = x, .alpha_cumprod = 0.5, .concept_name = "dog"}};
  const std::vector<StatusOr<StepOutput>> out = (*expert)->Step(batch);
  EXPECT_EQ(out[0].status().code(), StatusCode::kNotFound);
  EXPECT_EQ(out[1].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out[2].status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(out[3].ok());
  config.concepts = {"bird"};
  EXPECT_EQ(CreateExpert(config).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove(path);
}

TEST(TorchScriptExpertTest, MissingFileIsNotFound) {
  EXPECT_EQ(CreateExpert(Config("/nonexistent/model.pt")).status().code(), StatusCode::kNotFound);
}

TEST(TorchScriptExpertTest, FileThatIsNotTorchScriptIsInvalidArgument) {
  const std::string path =
      (std::filesystem::temp_directory_path() / (std::to_string(getpid()) + "_garbage.pt"))
          .string();
  std::ofstream(path) << "not a zip archive";
  EXPECT_EQ(CreateExpert(Config(path)).status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove(path);
}

// Each contract breach fails at creation with FailedPrecondition naming what is wrong.
TEST(TorchScriptExpertTest, ContractBreachesNameWhatIsMissing) {
  struct Case {
    ModuleParts parts;
    std::string expected_in_message;
  };
  const std::vector<Case> cases = {
      {{.predict = false}, "method 'predict(x, t, cond)' is missing"},
      {{.concepts = false}, "attribute 'concepts: List[str]' is missing"},
      {{.latent_shape = false}, "attribute 'latent_shape: List[int]' ([C, H, W]) is missing"},
      {{.latent_space = false}, "attribute 'latent_space: str' is missing"},
      {{.prediction_type = false}, "attribute 'prediction_type: str' is missing"},
      {{.predict_source = "def predict(self, x, t, cond):\n    return x[:, 0]\n"},
       "predict returned shape 2x4x5, expected 2x2x4x5"},
      {{.predict_source = "def predict(self, x, t):\n    return x\n"},
       "method 'predict' takes 2 arguments, expected 3 (x, t, cond)"},
  };
  int index = 0;
  for (const Case& c : cases) {
    const std::string path = WriteModule(c.parts, "breach" + std::to_string(index++) + ".pt");
    const Status status = CreateExpert(Config(path)).status();
    EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition) << status.ToString();
    EXPECT_NE(status.message().find(c.expected_in_message), std::string::npos) << status.message();
    std::filesystem::remove(path);
  }
}

}  // namespace
}  // namespace dnd::experts
