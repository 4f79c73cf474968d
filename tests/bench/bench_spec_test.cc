// The job spec of one bench image (BuildComposeSpec): each strategy's difference from the default,
// and the run's overrides reaching the strategies they are for (`dnd bench compose --fairness`,
// `--rho`, the sweep's beta, gamma and guidance outside).
#include <gtest/gtest.h>

#include "tools/bench/compose_bench.h"

namespace dnd::bench {
namespace {

const std::string kSuiteFile = std::string(DND_SOURCE_DIR) + "/tools/bench/compose_suite.json";

protocol::JobSpec SpecOf(const std::string& strategy, const SpecOverrides& overrides) {
  auto file = LoadSuiteFile(kSuiteFile);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  const Prompt prompt = file->FindSuite("triples")->prompts.at(0);
  auto spec = BuildComposeSpec(*file, prompt, 77, *FindStrategy(strategy), overrides);
  EXPECT_TRUE(spec.ok()) << strategy << ": " << spec.status().ToString();
  return spec.ok() ? *spec : protocol::JobSpec{};
}

TEST(BenchSpecTest, ThePromptsClassesGoToTheirExpertsWithTheSeed) {
  const protocol::JobSpec spec = SpecOf("dnd", {});
  ASSERT_EQ(spec.experts.size(), 3u);
  EXPECT_EQ(spec.experts[0].expert_name, "footwear");
  EXPECT_EQ(spec.experts[0].concept_name, "sandal");
  EXPECT_EQ(spec.experts[1].expert_name, "tops");
  EXPECT_EQ(spec.experts[2].expert_name, "rest");
  EXPECT_EQ(spec.seed, 77u);
  EXPECT_EQ(spec.utility, protocol::UtilityKind::kAttention);
  EXPECT_TRUE(spec.fairness.proportional);  // the default notion
  EXPECT_FALSE(spec.fairness.envy_free);
  EXPECT_EQ(spec.fairness.rho, 0.0);  // unset: the coordinator's
}

TEST(BenchSpecTest, FairnessOverridesReachTheDndStrategiesButNotNofair) {
  SpecOverrides overrides;
  overrides.fairness = {"envy-free"};
  overrides.rho = 0.5;
  for (const char* name : {"dnd", "dnd-score", "dnd-noguide", "dnd-literal"}) {
    const protocol::JobSpec spec = SpecOf(name, overrides);
    EXPECT_TRUE(spec.fairness.envy_free) << name;
    EXPECT_FALSE(spec.fairness.proportional) << name;
    EXPECT_EQ(spec.fairness.rho, 0.5) << name;
  }
  const protocol::JobSpec nofair = SpecOf("dnd-nofair", overrides);
  EXPECT_EQ(nofair.fairness, protocol::Fairness{});  // none: no notion at all
  SpecOverrides two;
  two.fairness = {"proportional", "equitable"};
  const protocol::JobSpec both = SpecOf("dnd", two);
  EXPECT_TRUE(both.fairness.proportional);
  EXPECT_TRUE(both.fairness.equitable);
  EXPECT_FALSE(both.fairness.envy_free);
}

TEST(BenchSpecTest, EachStrategyDiffersFromTheDefaultAsNamed) {
  SpecOverrides overrides;
  overrides.gamma = 0.02;
  overrides.guidance_outside = 0.3;
  overrides.beta = 0.001;
  const protocol::JobSpec dnd = SpecOf("dnd", overrides);
  EXPECT_EQ(dnd.gamma, 0.02);
  EXPECT_EQ(dnd.guidance_outside, 0.3);
  EXPECT_EQ(dnd.beta, 0.001);
  EXPECT_EQ(SpecOf("dnd-noguide", {}).gamma, 0.0);
  EXPECT_EQ(SpecOf("dnd-score", {}).utility, protocol::UtilityKind::kScore);
  EXPECT_EQ(SpecOf("averaging", {}).strategy, protocol::Strategy::kAveraging);
  EXPECT_EQ(SpecOf("multidiffusion", {}).strategy, protocol::Strategy::kMultiDiffusion);
  // The literal guidance acts everywhere: weight 1 outside the region, whatever was swept.
  EXPECT_EQ(SpecOf("dnd-literal", overrides).guidance_outside, 1.0);
}

}  // namespace
}  // namespace dnd::bench
