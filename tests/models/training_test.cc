// The training loop on tiny runs (worker/models/torch_support.h through TrainAutoencoder): a run
// stopped and resumed gives exactly the model of an uninterrupted run; a checkpoint of another
// config is refused; bad configs are errors.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "worker/models/autoencoder.h"

namespace dnd::models {
namespace {

AutoencoderTrainConfig Tiny(const std::string& out) {
  AutoencoderTrainConfig c;
  c.train.out = out;
  c.train.seed = 11;
  c.train.steps = 6;
  c.train.batch_size = 4;
  c.train.learning_rate = 1e-3;
  c.train.warmup_steps = 2;
  c.train.checkpoint_every = 100;
  c.train.device = "cpu";
  c.crop_side = 28;
  c.normalisation_canvases = 8;
  c.eval_canvases = 4;
  return c;
}

std::string TempDir() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("dnd-training-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(TrainingTest, StoppedAndResumedRunEqualsAnUninterruptedOne) {
  const std::string dir = TempDir();
  int reports = 0;
  auto whole = TrainAutoencoder(Tiny(dir + "/whole.pt"), [&](const TrainProgress& p) {
    ++reports;
    EXPECT_EQ(p.total_steps, 6);
  });
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_TRUE(whole->finished);
  EXPECT_EQ(whole->steps_run, 6);
  EXPECT_EQ(reports, 6);

  AutoencoderTrainConfig first = Tiny(dir + "/split.pt");
  first.train.stop_after = 4;
  auto stopped = TrainAutoencoder(first, nullptr);
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_FALSE(stopped->finished);
  EXPECT_EQ(stopped->steps_run, 4);
  EXPECT_FALSE(std::filesystem::exists(dir + "/split.pt")) << "no model before the end";
  EXPECT_TRUE(std::filesystem::exists(dir + "/split.pt.ckpt"));

  AutoencoderTrainConfig second = Tiny(dir + "/split.pt");
  second.train.resume = true;
  int first_step = -1;
  auto resumed = TrainAutoencoder(second, [&](const TrainProgress& p) { first_step = p.first_step; });
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->steps_run, 2);
  EXPECT_EQ(first_step, 4);

  auto a = Autoencoder::Load(dir + "/whole.pt");
  auto b = Autoencoder::Load(dir + "/split.pt");
  ASSERT_TRUE(a.ok() && b.ok());
  // The id hashes every weight and the latent normalisation: equal ids, equal models.
  EXPECT_EQ((*a)->latent_space_id(), (*b)->latent_space_id());
  std::filesystem::remove_all(dir);
}

TEST(TrainingTest, ResumeRefusesAnotherConfigAndAMissingCheckpoint) {
  const std::string dir = TempDir();
  AutoencoderTrainConfig c = Tiny(dir + "/m.pt");
  c.train.stop_after = 2;
  ASSERT_TRUE(TrainAutoencoder(c, nullptr).ok());
  AutoencoderTrainConfig other = Tiny(dir + "/m.pt");
  other.train.resume = true;
  other.train.learning_rate = 5e-4;
  EXPECT_EQ(TrainAutoencoder(other, nullptr).status().code(), StatusCode::kFailedPrecondition);
  AutoencoderTrainConfig missing = Tiny(dir + "/none.pt");
  missing.train.resume = true;
  EXPECT_EQ(TrainAutoencoder(missing, nullptr).status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(TrainingTest, AFinishedRunCanBeTrainedLongerButNotShorter) {
  const std::string dir = TempDir();
  AutoencoderTrainConfig c = Tiny(dir + "/m.pt");
  c.train.steps = 4;
  ASSERT_TRUE(TrainAutoencoder(c, nullptr).ok());
  AutoencoderTrainConfig longer = Tiny(dir + "/m.pt");
  longer.train.steps = 6;
  longer.train.resume = true;
  auto more = TrainAutoencoder(longer, nullptr);
  ASSERT_TRUE(more.ok()) << more.status().ToString();
  EXPECT_EQ(more->steps_run, 2);
  AutoencoderTrainConfig shorter = Tiny(dir + "/m.pt");
  shorter.train.steps = 3;
  shorter.train.resume = true;
  EXPECT_EQ(TrainAutoencoder(shorter, nullptr).status().code(), StatusCode::kFailedPrecondition);
  std::filesystem::remove_all(dir);
}

TEST(TrainingTest, BadConfigsAreInvalidArguments) {
  AutoencoderTrainConfig c = Tiny("");
  EXPECT_EQ(TrainAutoencoder(c, nullptr).status().code(), StatusCode::kInvalidArgument);
  c = Tiny("/tmp/x.pt");
  c.crop_side = 30;
  EXPECT_EQ(TrainAutoencoder(c, nullptr).status().code(), StatusCode::kInvalidArgument);
  c = Tiny("/tmp/x.pt");
  c.train.device = "tpu";
  EXPECT_EQ(TrainAutoencoder(c, nullptr).status().code(), StatusCode::kInvalidArgument);
  c = Tiny("/tmp/x.pt");
  c.train.data_dir = "/nonexistent";
  EXPECT_EQ(TrainAutoencoder(c, nullptr).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace dnd::models
