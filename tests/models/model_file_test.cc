// Model files (worker/models/torch_support.h): a file loads into the architecture that wrote it,
// and a file of another version of the architecture is refused instead of half-loaded.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include "worker/models/torch_support.h"

namespace dnd::models {
namespace {

struct Inner : torch::nn::Module {
  explicit Inner(bool with_extra) {
    weight = register_parameter("weight", torch::full({3}, 2.0));
    if (with_extra) extra = register_parameter("extra", torch::ones({2}));
  }
  torch::Tensor weight, extra;
};

// Version 1 has a linear layer and an inner module; version 2 adds a tensor to the inner module
// (like the experts' concept embedding did), version 3 a whole new layer at the top.
struct Net : torch::nn::Module {
  Net(bool inner_extra, bool top_extra) {
    linear = register_module("linear", torch::nn::Linear(4, 2));
    inner = register_module("inner", std::make_shared<Inner>(inner_extra));
    if (top_extra) embedding = register_module("embedding", torch::nn::Embedding(5, 2));
    register_buffer("scale", torch::full({1}, 0.5));
  }
  torch::nn::Linear linear{nullptr};
  std::shared_ptr<Inner> inner;
  torch::nn::Embedding embedding{nullptr};
};

std::string TempFile(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("dnd-model-file-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(ModelFileTest, AFileLoadsIntoItsOwnArchitectureWithItsMetadata) {
  Net written(false, false);
  torch::NoGradGuard no_grad;
  written.linear->weight.fill_(0.25);
  const std::string path = TempFile("same.pt");
  ASSERT_TRUE(SaveModelFile(written, R"({"kind":"test"})", path).ok());
  Net read(false, false);
  auto meta = LoadModelFile(read, path);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(*meta, R"({"kind":"test"})");
  EXPECT_TRUE(torch::equal(read.linear->weight, written.linear->weight));
}

TEST(ModelFileTest, AFileOfANewerArchitectureIsRefusedNamingWhatIsForeign) {
  Net newer_inner(true, false), newer_top(false, true);
  const std::string inner_path = TempFile("inner.pt"), top_path = TempFile("top.pt");
  ASSERT_TRUE(SaveModelFile(newer_inner, "{}", inner_path).ok());
  ASSERT_TRUE(SaveModelFile(newer_top, "{}", top_path).ok());
  Net older(false, false);
  auto inner = LoadModelFile(older, inner_path);
  ASSERT_EQ(inner.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(inner.status().message().find("inner.extra"), std::string::npos)
      << inner.status().message();
  auto top = LoadModelFile(older, top_path);
  ASSERT_EQ(top.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(top.status().message().find("embedding"), std::string::npos) << top.status().message();
  // The other way round, a tensor the file lacks, was refused before too.
  Net older_file(false, false);
  const std::string old_path = TempFile("old.pt");
  ASSERT_TRUE(SaveModelFile(older_file, "{}", old_path).ok());
  Net newer(true, false);
  EXPECT_EQ(LoadModelFile(newer, old_path).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace dnd::models
