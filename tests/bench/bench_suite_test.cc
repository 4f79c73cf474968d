// Tests of tools/bench/bench_suite.h: the shipped suite file holds exactly the prompts issue 7
// asks for (checked against an independent enumeration), and malformed files are refused.
#include "tools/bench/bench_suite.h"

#include <set>

#include <gtest/gtest.h>

namespace dnd::bench {
namespace {

const std::string kSuiteFile = std::string(DND_SOURCE_DIR) + "/tools/bench/compose_suite.json";

TEST(BenchSuiteTest, PairsAreEveryCrossExpertPairOnceWithFourSeeds) {
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  // Independent enumeration of the cross-expert pairs (issue 7's classes).
  const std::vector<std::vector<std::string>> groups = {{"sandal", "sneaker", "ankle_boot"},
                                                        {"t_shirt", "pullover", "coat", "shirt"},
                                                        {"trouser", "dress", "bag"}};
  std::set<std::set<std::string>> expected;
  for (size_t a = 0; a < groups.size(); ++a) {
    for (size_t b = a + 1; b < groups.size(); ++b) {
      for (const auto& x : groups[a]) {
        for (const auto& y : groups[b]) expected.insert({x, y});
      }
    }
  }
  ASSERT_EQ(expected.size(), 33u);
  auto pairs = file->FindSuite("pairs");
  ASSERT_TRUE(pairs.ok());
  std::set<std::set<std::string>> seen;
  for (const Prompt& p : pairs->prompts) {
    ASSERT_EQ(p.classes.size(), 2u);
    EXPECT_TRUE(seen.insert({p.classes[0], p.classes[1]}).second) << p.Name() << " twice";
    EXPECT_EQ(p.seeds.size(), 4u) << p.Name();
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(pairs->NumImages(), 132);
}

TEST(BenchSuiteTest, TriplesAreEveryTripleWithOneClassPerExpertOnceWithFourSeeds) {
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::set<std::set<std::string>> expected;  // independent enumeration: 3 x 4 x 3
  for (const char* f : {"sandal", "sneaker", "ankle_boot"}) {
    for (const char* t : {"t_shirt", "pullover", "coat", "shirt"}) {
      for (const char* r : {"trouser", "dress", "bag"}) expected.insert({f, t, r});
    }
  }
  ASSERT_EQ(expected.size(), 36u);
  auto triples = file->FindSuite("triples");
  ASSERT_TRUE(triples.ok());
  std::set<std::set<std::string>> seen;
  for (const Prompt& p : triples->prompts) {
    ASSERT_EQ(p.classes.size(), 3u);
    std::set<std::string> experts;
    for (const std::string& c : p.classes) experts.insert(*file->ExpertOf(c));
    EXPECT_EQ(experts.size(), 3u) << p.Name();
    EXPECT_EQ(p.seeds.size(), 4u);
    EXPECT_TRUE(seen.insert({p.classes.begin(), p.classes.end()}).second) << p.Name() << " twice";
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(triples->NumImages(), 144);
}

TEST(BenchSuiteTest, NoTwoReportedImagesShareASeed) {
  // The seed fixes a job's initial noise: a seed shared by every prompt would make the suite's
  // images a handful of noise draws (docs/results.md, "Why the suites' seeds changed").
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok());
  std::set<uint64_t> seeds;
  int images = 0;
  for (const Suite& s : file->suites) {
    for (const Prompt& p : s.prompts) {
      for (uint64_t seed : p.seeds) {
        EXPECT_TRUE(seeds.insert(seed).second) << s.name << " " << p.Name() << " seed " << seed;
        ++images;
      }
    }
  }
  EXPECT_EQ(images, 132 + 144);
}

TEST(BenchSuiteTest, TuningSeedsDoNotOverlapTheReportedSuites) {
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok());
  std::set<uint64_t> reported;
  for (const Suite& s : file->suites) {
    for (const Prompt& p : s.prompts) reported.insert(p.seeds.begin(), p.seeds.end());
  }
  ASSERT_FALSE(file->tuning.empty());
  for (const Suite& s : file->tuning) {
    for (const Prompt& p : s.prompts) {
      for (uint64_t seed : p.seeds) EXPECT_EQ(reported.count(seed), 0u) << seed;
    }
  }
}

TEST(BenchSuiteTest, TheTriplesTuningFileHasTheSuitesFirstTriplesWithTuningSeedsOnly) {
  // tools/bench/compose_tuning_triples.json (the separation sweep of the views): the reported
  // suite's first 12 triples (the suite had only these until session 10), 8 seeds each, none of
  // them a seed of a reported suite.
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok());
  auto tuning =
      LoadSuiteFile(std::string(DND_SOURCE_DIR) + "/tools/bench/compose_tuning_triples.json");
  ASSERT_TRUE(tuning.ok()) << tuning.status().ToString();
  std::set<uint64_t> reported;
  for (const Suite& s : file->suites) {
    for (const Prompt& p : s.prompts) reported.insert(p.seeds.begin(), p.seeds.end());
  }
  const Suite triples = *file->FindSuite("triples");
  ASSERT_EQ(tuning->tuning.size(), 1u);
  const Suite& tuned = tuning->tuning[0];
  EXPECT_EQ(tuned.name, "triples");
  ASSERT_EQ(tuned.prompts.size(), 12u);
  ASSERT_GT(triples.prompts.size(), tuned.prompts.size());
  for (size_t i = 0; i < tuned.prompts.size(); ++i) {
    EXPECT_EQ(tuned.prompts[i].classes, triples.prompts[i].classes) << "prompt " << i;
    EXPECT_EQ(tuned.prompts[i].seeds.size(), 8u) << "prompt " << i;
    for (uint64_t seed : tuned.prompts[i].seeds) EXPECT_EQ(reported.count(seed), 0u) << seed;
  }
  EXPECT_EQ(tuned.NumImages(), 96);
}

TEST(BenchSuiteTest, QuickSubsetTakesTheNamedPromptsAndFirstSeeds) {
  auto file = LoadSuiteFile(kSuiteFile);
  ASSERT_TRUE(file.ok());
  const Suite pairs = *file->FindSuite("pairs");
  const Suite quick = QuickSubset(*file, pairs);
  ASSERT_EQ(quick.prompts.size(), file->quick_prompts.at("pairs").size());
  for (size_t i = 0; i < quick.prompts.size(); ++i) {
    const Prompt& original = pairs.prompts[file->quick_prompts.at("pairs")[i]];
    EXPECT_EQ(quick.prompts[i].classes, original.classes);
    ASSERT_EQ(quick.prompts[i].seeds.size(), static_cast<size_t>(file->quick_seeds_per_prompt));
    EXPECT_EQ(quick.prompts[i].seeds[0], original.seeds[0]);
  }
}

TEST(BenchSuiteTest, ClassesArePutInExpertOrder) {
  const std::string text = R"({"experts": {"a": ["bag"], "b": ["sandal"]},
      "expert_order": ["b", "a"],
      "suites": {"pairs": [{"classes": ["bag", "sandal"], "seeds": [1]}]}})";
  auto file = ParseSuiteFile(text);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->suites[0].prompts[0].classes, (std::vector<std::string>{"sandal", "bag"}));
}

TEST(BenchSuiteTest, RefusesTwoClassesOfOneExpert) {
  const std::string text = R"({"experts": {"a": ["bag", "dress"], "b": ["sandal"]},
      "expert_order": ["a", "b"],
      "suites": {"pairs": [{"classes": ["bag", "dress"], "seeds": [1]}]}})";
  EXPECT_EQ(ParseSuiteFile(text).status().code(), StatusCode::kInvalidArgument);
}

TEST(BenchSuiteTest, RefusesUnknownClassAndMissingSeeds) {
  EXPECT_EQ(ParseSuiteFile(R"({"experts": {"a": ["hat"]}, "expert_order": ["a"],
      "suites": {}})")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSuiteFile(R"({"experts": {"a": ["bag"]}, "expert_order": ["a"],
      "suites": {"x": [{"classes": ["bag"], "seeds": []}]}})")
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseSuiteFile("not json").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadSuiteFile("/nonexistent/suite.json").status().code(), StatusCode::kNotFound);
}

TEST(BenchSuiteTest, RefusesQuickIndexOutsideItsSuite) {
  const std::string text = R"({"experts": {"a": ["bag"]}, "expert_order": ["a"],
      "suites": {"pairs": [{"classes": ["bag"], "seeds": [1]}]},
      "quick": {"pairs": [3]}})";
  EXPECT_EQ(ParseSuiteFile(text).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dnd::bench
