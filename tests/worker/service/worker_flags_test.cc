// dnd-worker's model flags as a real process: the neural backend's missing, foreign and unknown
// files, the default `--backend neural --name NAME` lookup in $DND_MODELS_DIR, --latent-space,
// and a backend that needs --model. Each case exits before connecting (exit codes of
// docs/worker.md: 2 usage, 3 model).
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/subprocess.h"

namespace dnd {
namespace {

namespace fs = std::filesystem;

constexpr int kExitUsage = 2, kExitModel = 3;

class WorkerFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("dnd-worker-flags-test-"); }
  void TearDown() override {
    unsetenv("DND_MODELS_DIR");
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Runs dnd-worker with `flags` (plus a coordinator endpoint nobody listens on and --plain) and
  // returns its exit code and output; a worker still running after 60 s fails the test.
  std::pair<std::optional<int>, std::string> Run(std::vector<std::string> flags) {
    std::vector<std::string> argv = {DND_WORKER_BINARY, "--coordinator", "tcp://127.0.0.1:1",
                                     "--plain",         "--threads",     "1"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    testing::Subprocess worker(argv, dir_ + "/worker-" + std::to_string(++runs_) + ".log");
    std::optional<int> code = worker.Wait(std::chrono::seconds(60));
    return {code, worker.Output()};
  }

  std::string dir_;
  int runs_ = 0;
};

TEST_F(WorkerFlagsTest, AMissingNeuralModelFileExitsThreeAndNamesIt) {
  auto [code, output] =
      Run({"--name", "footwear", "--backend", "neural", "--model", dir_ + "/no-such-expert.pt"});
  EXPECT_EQ(code, std::optional<int>(kExitModel)) << output;
  EXPECT_NE(output.find("no-such-expert.pt"), std::string::npos) << output;
}

TEST_F(WorkerFlagsTest, AFileThatIsNotAnExpertExitsThree) {
  std::ofstream(dir_ + "/notes.pt") << "not a model\n";
  auto [code, output] =
      Run({"--name", "footwear", "--backend", "neural", "--model", dir_ + "/notes.pt"});
  EXPECT_EQ(code, std::optional<int>(kExitModel)) << output;
  EXPECT_NE(output.find("notes.pt"), std::string::npos) << output;
}

TEST_F(WorkerFlagsTest, TheDefaultNeuralModelIsNamePtInTheModelsDirectory) {
  setenv("DND_MODELS_DIR", dir_.c_str(), 1);  // an empty directory
  auto [code, output] = Run({"--name", "hats", "--backend", "neural"});
  EXPECT_EQ(code, std::optional<int>(kExitModel)) << output;
  EXPECT_NE(output.find((fs::path(dir_) / "hats.pt").string()), std::string::npos) << output;
  EXPECT_NE(output.find("DND_MODELS_DIR"), std::string::npos) << "says how to point elsewhere";
}

TEST_F(WorkerFlagsTest, TorchscriptWithoutAModelIsAUsageError) {
  auto [code, output] = Run({"--name", "mine", "--backend", "torchscript"});
  EXPECT_EQ(code, std::optional<int>(kExitUsage)) << output;
  EXPECT_NE(output.find("--model"), std::string::npos) << output;
}

TEST_F(WorkerFlagsTest, AnExpertOfAnotherLatentSpaceIsRefused) {
  // The exact expert's latent space is pixel space ("fashion-mnist-1x64x64").
  auto [code, output] = Run({"--name", "footwear", "--concepts", "sneaker", "--items-per-class",
                             "2", "--latent-space", "fmnist-ae-4x16x16-00000000"});
  EXPECT_EQ(code, std::optional<int>(kExitModel)) << output;
  EXPECT_NE(output.find("fashion-mnist-1x64x64"), std::string::npos) << output;
  EXPECT_NE(output.find("fmnist-ae-4x16x16-00000000"), std::string::npos) << output;
}

TEST_F(WorkerFlagsTest, TheShippedFootwearExpertLoadsByName) {
  const fs::path shipped = fs::path(DND_SOURCE_DIR) / "worker/models/weights/footwear.pt";
  if (!fs::exists(shipped)) GTEST_SKIP() << "no " << shipped;
  // A latent space it is not in: it loads (found by name), then refuses with both ids.
  auto [code, output] =
      Run({"--name", "footwear", "--backend", "neural", "--latent-space", "fashion-mnist-1x64x64"});
  EXPECT_EQ(code, std::optional<int>(kExitModel)) << output;
  EXPECT_NE(output.find("fmnist-ae-4x16x16-"), std::string::npos) << output;
}

}  // namespace
}  // namespace dnd
