// The composition benchmark's --quick run end to end (issue 7 item 7) and a tiny experts gate, on
// the exact closed-form experts through a real embedded coordinator and workers. The judge is a
// stand-in (a fixed rule on the canvas), so the test checks that the tables are produced and that
// the counts add up, never the scores.
#include <filesystem>
#include <iostream>
#include <numeric>

#include <gtest/gtest.h>

#include "tools/bench/bench_images.h"
#include "tools/bench/compose_bench.h"
#include "tools/bench/experts_bench.h"
#include "worker/experts/fashion_mnist.h"

namespace dnd::bench {
namespace {

const std::string kSuiteFile = std::string(DND_SOURCE_DIR) + "/tools/bench/compose_suite.json";
constexpr int kPixels = 64 * 64;

// Says "trouser" when the left half is brighter than the right, "bag" when the canvas is not
// black, and "sandal" when its top half is brighter than the bottom: arbitrary but deterministic.
class StandInJudge : public Judge {
 public:
  StatusOr<std::vector<std::vector<int>>> Detect(std::span<const float> canvases) override {
    if (canvases.size() % kPixels != 0) return InvalidArgumentError("not canvases");
    std::vector<std::vector<int>> out;
    for (size_t n = 0; n < canvases.size() / kPixels; ++n) {
      double left = 0, right = 0, top = 0, bottom = 0;
      for (int y = 0; y < 64; ++y) {
        for (int x = 0; x < 64; ++x) {
          const double v = canvases[n * kPixels + y * 64 + x];
          (x < 32 ? left : right) += v;
          (y < 32 ? top : bottom) += v;
        }
      }
      std::vector<int> labels;
      if (left > right) labels.push_back(1);
      if (top > bottom) labels.push_back(5);
      if (left + right > 10) labels.push_back(8);
      out.push_back(labels);
    }
    ++calls;
    return out;
  }
  StatusOr<std::array<double, kJudgeClasses>> RealRecall(const std::string&) override {
    std::array<double, kJudgeClasses> recall;
    recall.fill(0.95);
    recall[6] = 0.5;  // a "confusable" class, to exercise the lowered gate
    return recall;
  }
  std::string Describe() const override { return "stand-in judge (test)"; }
  int calls = 0;
};

std::vector<std::unique_ptr<experts::Expert>> ExactExperts(const std::vector<std::string>& names) {
  std::vector<std::unique_ptr<experts::Expert>> out;
  for (const std::string& name : names) {
    experts::ExpertConfig config;
    config.backend = "exact";
    config.name = name;
    config.model_path = std::string(experts::kDefaultFashionMnistDir);
    config.concepts = *experts::FashionMnistOrganisation(name);
    auto expert = experts::CreateExpert(config);
    EXPECT_TRUE(expert.ok()) << expert.status().ToString();
    if (expert.ok()) out.push_back(std::move(expert).value());
  }
  return out;
}

LatentDecoder PixelDecoder() {
  return [](std::span<const float> latents) -> StatusOr<std::vector<float>> {
    return PixelLatentToCanvas(latents);
  };
}

TEST(BenchQuickTest, QuickComposeProducesTablesWhoseCountsAddUp) {
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto experts = ExactExperts(file->expert_order);
  ASSERT_EQ(experts.size(), 3u);
  StandInJudge judge;
  ComposeBenchOptions options;
  options.domain = "exact";
  options.quick = true;
  options.data_dir = std::string(experts::kDefaultFashionMnistDir);
  options.jobs_in_flight = 16;
  options.guidance_scales = {{"tops", 7.0}};  // the tops worker's owner's scale
  options.progress = &std::cerr;  // in the test log: per-strategy lines and timings
  auto report = RunComposeBench(options, *file, std::move(experts), PixelDecoder(), judge);
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  ASSERT_EQ(report->suites.size(), file->suites.size());
  const nlohmann::json json = ComposeReportJson(*report);
  const std::string markdown = ComposeReportMarkdown(*report);
  EXPECT_EQ(json["guidance_scales"]["tops"], 7.0);
  EXPECT_EQ(json["cfg"], "default");
  EXPECT_NE(markdown.find("tops 7.0 (the owners' scales)"), std::string::npos) << markdown;
  for (const SuiteReport& suite : report->suites) {
    const Suite quick = QuickSubset(*file, *file->FindSuite(suite.name));
    const int images = quick.NumImages();
    ASSERT_GT(images, 0);
    ASSERT_EQ(suite.strategies.size(), AllStrategies().size());
    for (const StrategyRun& run : suite.strategies) {
      const Tally& t = run.tally;
      SCOPED_TRACE(suite.name + " / " + run.name);
      EXPECT_EQ(t.images, images);
      EXPECT_EQ(t.prompts, static_cast<int>(quick.prompts.size()));
      EXPECT_EQ(t.failed_images, 0);
      EXPECT_LE(t.correct_images, t.images);
      EXPECT_LE(t.correct_prompts, t.prompts);
      EXPECT_EQ(t.missing_images + t.correct_images, t.images);
      // Recount from the per-image judgements.
      int correct = 0;
      for (const JudgedImage& image : run.images) correct += image.Correct() ? 1 : 0;
      EXPECT_EQ(correct, t.correct_images);
      // Every image has a share per requested expert, and shares are fractions.
      for (const JudgedImage& image : run.images) {
        EXPECT_EQ(image.shares.size(), image.requested.size());
        for (const auto& [expert, share] : image.shares) {
          EXPECT_GE(share, 0.0);
          EXPECT_LE(share, 1.0);
        }
      }
      const nlohmann::json& j = json["suites"][suite.name]["strategies"][run.name];
      EXPECT_EQ(j["images"], t.images);
      EXPECT_EQ(j["correct_images"], t.correct_images);
      EXPECT_EQ(j["prompts"], t.prompts);
      EXPECT_EQ(j["correct_prompts"], t.correct_prompts);
      EXPECT_NE(markdown.find("| " + run.name + " |"), std::string::npos);
    }
    EXPECT_EQ(suite.ceiling.tally.images, images);
    EXPECT_TRUE(json["suites"][suite.name].contains("ceiling"));
    EXPECT_EQ(json["suites"][suite.name]["ceiling"]["images"], images);
  }
  // Averaging gives the experts equal shares (1/n each); MultiDiffusion's equal strips differ by
  // at most one column of the 64 (integer strip widths); shares of the real experts sum to 1.
  for (const SuiteReport& suite : report->suites) {
    for (const StrategyRun& run : suite.strategies) {
      if (run.name != "multidiffusion" && run.name != "averaging") continue;
      for (const JudgedImage& image : run.images) {
        double total = 0;
        for (const auto& [expert, share] : image.shares) {
          EXPECT_NEAR(share, 1.0 / image.requested.size(),
                      run.name == "averaging" ? 1e-6 : 1.0 / 64 + 1e-6)
              << run.name;
          total += share;
        }
        EXPECT_NEAR(total, 1.0, 1e-6) << run.name;
      }
    }
  }
  const auto dir = std::filesystem::path(::testing::TempDir()) / "bench_quick_grids";
  auto grids = WriteComposeGrids(*report, dir.string());
  ASSERT_TRUE(grids.ok()) << grids.status().ToString();
  EXPECT_GE(grids->size(), report->suites.size());
  for (const std::string& f : *grids) EXPECT_TRUE(std::filesystem::exists(f)) << f;
}

// The sweep's third axis (guidance outside the region) on a cut-down tuning subset: one point per
// (beta, gamma, outside), counts that add up, and the axis in the JSON and the markdown.
TEST(BenchQuickTest, SweepHasAPointPerGuidanceOutsideWeight) {
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_FALSE(file->tuning.empty());
  // Two pairs of the tuning subset with one seed each, and no triples: seconds, not minutes.
  Suite tuning = file->tuning.front();
  tuning.prompts.resize(2);
  for (Prompt& p : tuning.prompts) p.seeds.resize(1);
  file->tuning = {tuning};
  StandInJudge judge;
  ComposeBenchOptions options;
  options.domain = "exact";
  options.sweep_only = true;
  options.sweep_betas = {0.0003};
  options.sweep_gammas = {0.01};
  options.sweep_outsides = {0.0, 0.5, 1.0};
  options.steps = 4;
  options.data_dir = std::string(experts::kDefaultFashionMnistDir);
  auto report =
      RunComposeBench(options, *file, ExactExperts(file->expert_order), PixelDecoder(), judge);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->suites.empty());  // --sweep-only
  ASSERT_EQ(report->sweep.size(), 3u);
  const nlohmann::json json = ComposeReportJson(*report);
  const std::string markdown = ComposeReportMarkdown(*report);
  EXPECT_NE(markdown.find("| beta | gamma | outside |"), std::string::npos) << markdown;
  for (size_t k = 0; k < report->sweep.size(); ++k) {
    const SweepPoint& point = report->sweep[k];
    ASSERT_TRUE(point.guidance_outside.has_value());
    EXPECT_EQ(*point.guidance_outside, options.sweep_outsides[k]);
    EXPECT_EQ(point.beta, 0.0003);
    EXPECT_EQ(point.gamma, 0.01);
    ASSERT_EQ(point.suites.size(), 1u);
    EXPECT_EQ(point.total.images, 2);
    EXPECT_EQ(point.total.failed_images, 0);
    EXPECT_EQ(point.total.missing_images + point.total.correct_images, point.total.images);
    EXPECT_EQ(json["sweep"][k]["guidance_outside"], options.sweep_outsides[k]);
    EXPECT_EQ(json["sweep"][k]["total"]["images"], 2);
  }
  EXPECT_NE(markdown.find("| 0.00030 | 0.010 | 0.50 |"), std::string::npos) << markdown;
}

// Mass of a canvas outside the columns [from, to).
double MassOutsideColumns(const std::vector<float>& canvas, int from, int to) {
  double mass = 0;
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      if (x < from || x >= to) mass += canvas[y * 64 + x];
    }
  }
  return mass;
}

TEST(BenchQuickTest, CeilingOnlyJudgesRealItemsInTheAskedLayoutWithoutJobs) {
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const Suite pairs = *file->FindSuite("pairs");
  auto run = [&](const std::string& layout_text) {
    StandInJudge judge;
    ComposeBenchOptions options;
    options.domain = "exact";
    options.suites = {"pairs"};
    options.ceiling_only = true;
    options.ceiling_layout = *ParseCeilingLayout(layout_text);
    options.data_dir = std::string(experts::kDefaultFashionMnistDir);
    auto report = RunComposeBench(options, *file, ExactExperts(file->expert_order),
                                  PixelDecoder(), judge);
    EXPECT_EQ(judge.calls, 1);  // the ceiling alone: one batch of canvases
    return report;
  };
  auto stacked = run("apart:0");
  auto apart = run("side-by-side");
  ASSERT_TRUE(stacked.ok()) << stacked.status().ToString();
  ASSERT_TRUE(apart.ok()) << apart.status().ToString();
  ASSERT_EQ(stacked->suites.size(), 1u);
  const SuiteReport& suite = stacked->suites[0];
  EXPECT_TRUE(suite.strategies.empty());
  EXPECT_EQ(suite.ceiling.tally.images, pairs.NumImages());
  ASSERT_EQ(suite.ceiling.canvases.size(), static_cast<size_t>(pairs.NumImages()));
  ASSERT_EQ(apart->suites[0].ceiling.canvases.size(), suite.ceiling.canvases.size());
  // apart:0 stacks both items on the centre (columns 18..45); side by side they reach the edges.
  double outside_stacked = 0, outside_apart = 0;
  for (size_t i = 0; i < suite.ceiling.canvases.size(); ++i) {
    outside_stacked += MassOutsideColumns(suite.ceiling.canvases[i], 18, 46);
    outside_apart += MassOutsideColumns(apart->suites[0].ceiling.canvases[i], 18, 46);
  }
  EXPECT_EQ(outside_stacked, 0.0);
  EXPECT_GT(outside_apart, 100.0);
  const nlohmann::json json = ComposeReportJson(*stacked);
  EXPECT_EQ(json["suites"]["pairs"]["ceiling"]["layout"], "apart:0");
  EXPECT_EQ(json["suites"]["pairs"]["ceiling"]["images"], pairs.NumImages());
  EXPECT_NE(ComposeReportMarkdown(*stacked).find("ceiling (real items, apart:0)"),
            std::string::npos);
}

TEST(BenchQuickTest, ExpertsGateCountsSamplesPerConcept) {
  auto experts = ExactExperts({"rest"});
  ASSERT_EQ(experts.size(), 1u);
  StandInJudge judge;
  ExpertsBenchOptions options;
  options.domain = "exact";
  options.samples = 3;
  options.steps = 4;
  options.batch = 2;  // two calls per concept: 2 + 1 samples
  auto report = RunExpertsBench(options, {experts[0].get()}, PixelDecoder(), judge);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->concepts.size(), 3u);  // trouser, dress, bag
  for (const ConceptResult& c : report->concepts) {
    EXPECT_EQ(c.samples, 3);
    EXPECT_LE(c.exact, c.contains);
    EXPECT_LE(c.contains, c.samples);
    EXPECT_EQ(c.canvases.size(), 3u);
    EXPECT_EQ(c.passed, c.contains >= 0.85 * 3);
  }
  const nlohmann::json j = ExpertsReportJson(*report);
  ASSERT_EQ(j["concepts"].size(), 3u);
  for (const char* key : {"expert", "concept", "samples", "contains", "exact", "real_recall"}) {
    EXPECT_TRUE(j["concepts"][0].contains(key)) << key;
  }
}

TEST(BenchQuickTest, GateIsLoweredOnlyForClassesTheJudgeMisses) {
  EXPECT_DOUBLE_EQ(GateThreshold(0.97), 0.85);
  EXPECT_DOUBLE_EQ(GateThreshold(0.90), 0.85);
  EXPECT_NEAR(GateThreshold(0.70), 0.65, 1e-12);
}

TEST(BenchQuickTest, ExpertsGateRefusesZeroSamples) {
  StandInJudge judge;
  ExpertsBenchOptions options;
  options.samples = 0;
  EXPECT_EQ(RunExpertsBench(options, {}, PixelDecoder(), judge).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dnd::bench
