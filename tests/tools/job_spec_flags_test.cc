// Tests of `dnd submit`'s flag parsing into a JobSpec (tools/job_spec_flags.h) and of the exit
// code of bad usage through the whole command line (RunDnd): nothing here needs a coordinator,
// since every one of these inputs is refused before connecting.
#include "tools/job_spec_flags.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <png.h>

#include "tools/dnd_app.h"
#include "tools/exit_codes.h"

namespace dnd::tools {
namespace {

// Parses `args` as the flags of a `submit`-like command and builds the spec.
StatusOr<protocol::JobSpec> Build(const std::vector<std::string>& args) {
  CLI::App app{"test"};
  JobSpecFlags flags;
  AddJobSpecFlags(app, flags);
  std::vector<const char*> argv = {"test"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return BuildJobSpec(flags);
}

TEST(JobSpecFlagsTest, ExpertConceptPairsKeepTheirOrder) {
  auto spec = Build({"--expert", "footwear:sneaker", "--expert", "rest:bag"});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ASSERT_EQ(spec->experts.size(), 2u);
  EXPECT_EQ(spec->experts[0].expert_name, "footwear");
  EXPECT_EQ(spec->experts[0].concept_name, "sneaker");
  EXPECT_EQ(spec->experts[1].expert_name, "rest");
  EXPECT_EQ(spec->experts[1].concept_name, "bag");
  EXPECT_EQ(spec->experts[1].weight, 1.0f);
}

TEST(JobSpecFlagsTest, UnsetNumbersAskForTheCoordinatorsDefaults) {
  auto spec = Build({"--expert", "a:b"});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->steps, 0u);  // 0 = the coordinator's default
  EXPECT_EQ(spec->cfg_scale, 0.0f);
  EXPECT_EQ(spec->beta, 0.0);
  EXPECT_LT(spec->eta, 0.0);    // 0 is a valid eta: "unset" is negative
  EXPECT_LT(spec->gamma, 0.0);  // likewise
  EXPECT_EQ(spec->fairness.rho, 0.0);
  EXPECT_EQ(spec->seed, 0u);
  EXPECT_EQ(spec->strategy, protocol::Strategy::kDnd);
  EXPECT_EQ(spec->utility, protocol::UtilityKind::kScore);
  EXPECT_TRUE(spec->fairness.proportional);
  EXPECT_FALSE(spec->fairness.envy_free);
  EXPECT_FALSE(spec->fairness.equitable);
  EXPECT_TRUE(spec->layout.empty());
  EXPECT_LT(spec->guidance_outside, 0.0);  // unset: the coordinator's default
}

TEST(JobSpecFlagsTest, EveryNumberIsCarriedOver) {
  auto spec = Build({"--expert",
                     "a:b",
                     "--steps",
                     "20",
                     "--seed",
                     "7",
                     "--cfg",
                     "4.5",
                     "--eta",
                     "0",
                     "--beta",
                     "0.002",
                     "--gamma",
                     "0",
                     "--rho",
                     "0.5",
                     "--epsilon",
                     "0.1",
                     "--utility",
                     "attention",
                     "--strategy",
                     "averaging",
                     "--guidance-region",
                     "everywhere"});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->steps, 20u);
  EXPECT_EQ(spec->seed, 7u);
  EXPECT_EQ(spec->cfg_scale, 4.5f);
  EXPECT_EQ(spec->eta, 0.0);
  EXPECT_EQ(spec->beta, 0.002);
  EXPECT_EQ(spec->gamma, 0.0);
  EXPECT_EQ(spec->fairness.rho, 0.5);
  EXPECT_EQ(spec->fairness.epsilon, 0.1);
  EXPECT_EQ(spec->utility, protocol::UtilityKind::kAttention);
  EXPECT_EQ(spec->strategy, protocol::Strategy::kAveraging);
  EXPECT_EQ(spec->guidance_outside, 1.0);
  auto own = Build({"--expert", "a:b", "--guidance-region", "own"});
  ASSERT_TRUE(own.ok()) << own.status().ToString();
  EXPECT_EQ(own->guidance_outside, 0.0);
  auto partial = Build({"--expert", "a:b", "--guidance-outside", "0.35"});
  ASSERT_TRUE(partial.ok()) << partial.status().ToString();
  EXPECT_EQ(partial->guidance_outside, 0.35);
  // The shorthand and the weight set the same field: giving both is refused.
  EXPECT_EQ(Build({"--expert", "a:b", "--guidance-outside", "0.5", "--guidance-region", "own"})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

protocol::ExpertInfo Listed(const std::string& name, std::vector<protocol::UtilityKind> kinds) {
  protocol::ExpertInfo info;
  info.expert_name = name;
  info.utilities = std::move(kinds);
  return info;
}

TEST(JobSpecFlagsTest, DefaultUtilityIsAttentionOnlyWhenEveryNamedExpertReportsIt) {
  using protocol::UtilityKind;
  auto spec = Build({"--expert", "footwear:sneaker", "--expert", "rest:bag"});
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const std::vector<protocol::ExpertInfo> both = {
      Listed("footwear", {UtilityKind::kScore, UtilityKind::kAttention}),
      Listed("rest", {UtilityKind::kAttention, UtilityKind::kScore}),
      Listed("tops", {UtilityKind::kScore})};  // not named: does not matter
  EXPECT_EQ(DefaultUtility(*spec, both), UtilityKind::kAttention);
  const std::vector<protocol::ExpertInfo> one_score_only = {
      Listed("footwear", {UtilityKind::kScore, UtilityKind::kAttention}),
      Listed("rest", {UtilityKind::kScore})};
  EXPECT_EQ(DefaultUtility(*spec, one_score_only), UtilityKind::kScore);
  // An expert the registry does not list: score (the coordinator then names the unknown expert).
  EXPECT_EQ(DefaultUtility(*spec, {both[0]}), UtilityKind::kScore);
}

TEST(JobSpecFlagsTest, FairnessListsCombineAndNoneStandsAlone) {
  auto both = Build({"--expert", "a:b", "--fairness", "envy-free,equitable"});
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_FALSE(both->fairness.proportional);
  EXPECT_TRUE(both->fairness.envy_free);
  EXPECT_TRUE(both->fairness.equitable);

  auto repeated =
      Build({"--expert", "a:b", "--fairness", "proportional", "--fairness", "equitable"});
  ASSERT_TRUE(repeated.ok()) << repeated.status().ToString();
  EXPECT_TRUE(repeated->fairness.proportional);
  EXPECT_TRUE(repeated->fairness.equitable);

  auto none = Build({"--expert", "a:b", "--fairness", "none"});
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->fairness.proportional || none->fairness.envy_free || none->fairness.equitable);

  EXPECT_EQ(Build({"--expert", "a:b", "--fairness", "none,equitable"}).status().code(),
            StatusCode::kInvalidArgument);
  auto unknown = Build({"--expert", "a:b", "--fairness", "fair"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("envy-free"), std::string::npos)
      << "the message lists the valid names: " << unknown.status().message();
}

TEST(JobSpecFlagsTest, MalformedExpertConceptIsRefused) {
  for (const char* bad : {"footwear", ":sneaker", "footwear:", "a:b:c", ""}) {
    auto ref = ParseExpertRef(bad);
    EXPECT_EQ(ref.status().code(), StatusCode::kInvalidArgument) << "'" << bad << "'";
  }
  auto ok = ParseExpertRef("rest:ankle_boot");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->expert_name, "rest");
  EXPECT_EQ(ok->concept_name, "ankle_boot");
}

TEST(JobSpecFlagsTest, TheSameExpertTwiceIsRefused) {
  EXPECT_EQ(Build({"--expert", "a:b", "--expert", "a:c"}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(JobSpecFlagsTest, NumbersOutOfRangeOrNotFiniteAreRefused) {
  const std::vector<std::vector<std::string>> bad = {{"--steps", "0"},
                                                     {"--steps", "-5"},
                                                     {"--steps", "1001"},
                                                     {"--cfg", "nan"},
                                                     {"--cfg", "inf"},
                                                     {"--cfg", "0"},
                                                     {"--cfg", "-1"},
                                                     {"--eta", "1.5"},
                                                     {"--eta", "-0.1"},
                                                     {"--beta", "0"},
                                                     {"--beta", "nan"},
                                                     {"--gamma", "-1"},
                                                     {"--rho", "0"},
                                                     {"--rho", "1.5"},
                                                     {"--epsilon", "-1"},
                                                     {"--strategy", "best"},
                                                     {"--utility", "joy"},
                                                     {"--guidance-region", "mine"},
                                                     {"--guidance-outside", "-0.1"},
                                                     {"--guidance-outside", "1.01"},
                                                     {"--guidance-outside", "nan"}};
  for (const auto& flags : bad) {
    std::vector<std::string> args = {"--expert", "a:b"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto spec = Build(args);
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << flags[0] << " " << flags[1];
  }
}

TEST(JobSpecFlagsTest, LayoutNeedsMultiDiffusionAndOneMaskPerExpert) {
  EXPECT_EQ(Build({"--expert", "a:b", "--layout", "strips"}).status().code(),
            StatusCode::kInvalidArgument);
  auto strips = Build(
      {"--expert", "a:b", "--expert", "c:d", "--strategy", "multidiffusion", "--layout", "strips"});
  ASSERT_TRUE(strips.ok()) << strips.status().ToString();
  EXPECT_TRUE(strips->layout.empty()) << "strips = the coordinator's default layout";
  EXPECT_EQ(Build({"--expert", "a:b", "--expert", "c:d", "--strategy", "multidiffusion", "--layout",
                   "one.png"})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Build({"--expert", "a:b", "--strategy", "multidiffusion", "--layout",
                   "/nonexistent/mask.png"})
                .status()
                .code(),
            StatusCode::kNotFound);
}

TEST(JobSpecFlagsTest, LayoutMaskIsReadAsPixelOver255) {
  // A 3x2 grayscale PNG written with libpng's simplified API; expected values are pixel / 255.
  const std::vector<uint8_t> pixels = {0, 255, 128, 64, 1, 200};
  const auto path = std::filesystem::path(::testing::TempDir()) / "dnd_layout_mask_test.png";
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = 3;
  image.height = 2;
  image.format = PNG_FORMAT_GRAY;
  ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr));
  auto mask = ReadLayoutMask(path.string());
  ASSERT_TRUE(mask.ok()) << mask.status().ToString();
  EXPECT_EQ(mask->shape, (std::vector<uint32_t>{2, 3}));
  ASSERT_EQ(mask->f32.size(), pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) {
    EXPECT_NEAR(mask->f32[i], static_cast<double>(pixels[i]) / 255.0, 1e-7) << i;
  }
  const auto not_png = std::filesystem::path(::testing::TempDir()) / "dnd_not_a_png.png";
  { std::ofstream(not_png) << "hello"; }
  EXPECT_EQ(ReadLayoutMask(not_png.string()).status().code(), StatusCode::kInvalidArgument);
}

// The whole command line: bad usage exits 64 before any connection is tried (the address below
// has nothing listening, so a connection attempt would give 2 instead).
TEST(DndCommandLineTest, BadUsageExitsWithTheUsageCode) {
  const std::vector<std::string> base = {
      "submit", "--plain", "--coordinator", "tcp://127.0.0.1:1", "--connect-timeout", "0.2"};
  const std::vector<std::vector<std::string>> bad = {
      {"--expert", "a:b", "--steps", "0"},
      {"--expert", "a:b", "--steps", "abc"},  // CLI11's conversion error, mapped to 64
      {"--expert", "a:b", "--cfg", "nan"},
      {"--expert", "ab"},
      {"--expert", "a:b", "--no-such-flag"},
      {"--steps", "10"},  // --expert is required
  };
  for (const auto& extra : bad) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    std::string joined;
    for (const auto& a : extra) joined += a + " ";
    EXPECT_EQ(RunDnd(args), kExitUsage) << joined;
  }
  EXPECT_EQ(RunDnd(std::vector<std::string>{}), kExitUsage) << "no subcommand";
  EXPECT_EQ(RunDnd(std::vector<std::string>{"frobnicate"}), kExitUsage);
  EXPECT_EQ(RunDnd(std::vector<std::string>{"--help"}), kExitOk);
  EXPECT_EQ(RunDnd(std::vector<std::string>{"submit", "--help"}), kExitOk);
}

TEST(DndCommandLineTest, ConnectionFlagsMayFollowTheSubcommand) {
  // Valid usage against a port where nothing listens: exit code 2 (cannot connect), which shows
  // that --plain, --coordinator and --connect-timeout were accepted after the subcommand.
  EXPECT_EQ(RunDnd(std::vector<std::string>{"status", "--plain", "--coordinator",
                                            "tcp://127.0.0.1:1", "--connect-timeout", "0.3"}),
            kExitUnavailable);
  EXPECT_EQ(RunDnd(std::vector<std::string>{"--plain", "--coordinator", "tcp://127.0.0.1:1",
                                            "--connect-timeout", "0.3", "experts"}),
            kExitUnavailable);
}

TEST(DndCommandLineTest, CurveWithoutKeysIsBadUsage) {
  EXPECT_EQ(RunDnd(std::vector<std::string>{"status", "--coordinator", "tcp://127.0.0.1:1"}),
            kExitUsage);
  EXPECT_EQ(RunDnd(std::vector<std::string>{"status", "--key-dir", "/nonexistent", "--key-name",
                                            "me", "--server-key", "/nonexistent/c.key"}),
            kExitUsage);
}

TEST(ExitCodesTest, StatusCodesMapToTheDocumentedExitCodes) {
  EXPECT_EQ(ExitCodeFor(OkStatus()), 0);
  EXPECT_EQ(ExitCodeFor(AbortedError("job failed")), 1);
  EXPECT_EQ(ExitCodeFor(CancelledError("job cancelled")), 1);
  EXPECT_EQ(ExitCodeFor(UnavailableError("x")), 2);
  EXPECT_EQ(ExitCodeFor(UnauthenticatedError("x")), 2);
  EXPECT_EQ(ExitCodeFor(DeadlineExceededError("x")), 3);
  EXPECT_EQ(ExitCodeFor(InvalidArgumentError("x")), 64);
  EXPECT_EQ(ExitCodeFor(NotFoundError("x")), 64);
  EXPECT_EQ(ExitCodeFor(AlreadyExistsError("x")), 64);
  EXPECT_EQ(ExitCodeFor(InternalError("x")), 70);
  EXPECT_EQ(ExitCodeFor(DataLossError("x")), 70);
}

}  // namespace
}  // namespace dnd::tools
