// Tests of the Fashion-MNIST IDX reader (worker/experts/fashion_mnist.h) against bytes read
// independently with the zcat tool.
#include "worker/experts/fashion_mnist.h"

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace dnd::experts {
namespace {

const std::string kDir = "/usr/share/datasets/fashion-mnist";

// The first `bytes` decompressed bytes of a .gz file, read with zcat.
std::vector<unsigned char> Zcat(const std::string& path, size_t bytes) {
  const std::string command = "zcat " + path + " | head -c " + std::to_string(bytes);
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::vector<unsigned char> out(bytes);
  const size_t got = std::fread(out.data(), 1, bytes, pipe);
  pclose(pipe);
  out.resize(got);
  return out;
}

TEST(FashionMnistTest, FirstItemsPerClassFollowFileOrder) {
  constexpr int kScan = 200;
  const std::vector<unsigned char> labels = Zcat(kDir + "/train-labels-idx1-ubyte.gz", 8 + kScan);
  const std::vector<unsigned char> images =
      Zcat(kDir + "/train-images-idx3-ubyte.gz", 16 + kScan * 784);
  ASSERT_EQ(labels.size(), 8u + kScan);
  ASSERT_EQ(images.size(), 16u + kScan * 784);

  const std::vector<int> wanted = {9, 0, 5};
  constexpr int kPerClass = 3;
  StatusOr<std::vector<FashionMnistItem>> items = LoadFirstItemsPerClass(kDir, wanted, kPerClass);
  ASSERT_TRUE(items.ok()) << items.status().ToString();
  ASSERT_EQ(items->size(), wanted.size() * kPerClass);
  for (size_t c = 0; c < wanted.size(); ++c) {
    int found = 0;
    for (int index = 0; index < kScan && found < kPerClass; ++index) {
      if (labels[8 + index] != wanted[c]) continue;
      const FashionMnistItem& item = (*items)[c * kPerClass + found];
      EXPECT_EQ(item.label, wanted[c]);
      EXPECT_EQ(item.index, index);
      int wrong_pixels = 0;
      for (int j = 0; j < 784; ++j) wrong_pixels += item.pixels[j] != images[16 + index * 784 + j];
      EXPECT_EQ(wrong_pixels, 0) << "class " << wanted[c] << " item " << found;
      ++found;
    }
    ASSERT_EQ(found, kPerClass) << "scan more items";
  }
}

TEST(FashionMnistTest, ClassNamesMapToLabels) {
  EXPECT_EQ(*FashionMnistLabel("t_shirt"), 0);
  EXPECT_EQ(*FashionMnistLabel("sneaker"), 7);
  EXPECT_EQ(*FashionMnistLabel("ankle_boot"), 9);
  EXPECT_EQ(FashionMnistLabel("hat").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(FashionMnistClassNames().size(), 10u);
  EXPECT_EQ(*FashionMnistOrganisation("footwear"),
            (std::vector<std::string>{"sandal", "sneaker", "ankle_boot"}));
  EXPECT_EQ(FashionMnistOrganisation("hats").status().code(), StatusCode::kNotFound);
}

TEST(FashionMnistTest, MissingDirectoryIsNotFound) {
  const std::vector<int> wanted = {1};
  EXPECT_EQ(LoadFirstItemsPerClass("/nonexistent", wanted, 1).status().code(),
            StatusCode::kNotFound);
}

TEST(FashionMnistTest, BadRequestsAreInvalidArgument) {
  const std::vector<int> repeated = {1, 1};
  EXPECT_EQ(LoadFirstItemsPerClass(kDir, repeated, 1).status().code(),
            StatusCode::kInvalidArgument);
  const std::vector<int> out_of_range = {10};
  EXPECT_EQ(LoadFirstItemsPerClass(kDir, out_of_range, 1).status().code(),
            StatusCode::kInvalidArgument);
  const std::vector<int> one = {1};
  EXPECT_EQ(LoadFirstItemsPerClass(kDir, one, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(FashionMnistTest, TooManyItemsPerClassIsDataLoss) {
  const std::vector<int> one = {1};
  EXPECT_EQ(LoadFirstItemsPerClass(kDir, one, 6001).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace dnd::experts
