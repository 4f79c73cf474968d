// Reading Fashion-MNIST's IDX files (Debian's dataset-fashion-mnist: gzip'ed IDX under
// /usr/share/datasets/fashion-mnist) and the names of its ten classes. Used by the exact expert to
// build its mixture, and by tests to recompute it independently. No LibTorch.
#ifndef DND_WORKER_EXPERTS_FASHION_MNIST_H_
#define DND_WORKER_EXPERTS_FASHION_MNIST_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"

namespace dnd::experts {

inline constexpr int kFashionMnistSide = 28;
inline constexpr int kFashionMnistPixels = kFashionMnistSide * kFashionMnistSide;
inline constexpr int kFashionMnistClasses = 10;

// One train item: its label (0..9) and its 28x28 pixels, row-major, 0 = black.
struct FashionMnistItem {
  int label = 0;
  int index = 0;  // position in the train split's files
  std::array<uint8_t, kFashionMnistPixels> pixels{};
};

// The class names used as concept names, indexed by label: t_shirt, trouser, pullover, dress, coat,
// sandal, shirt, sneaker, bag, ankle_boot.
std::span<const std::string_view> FashionMnistClassNames();
// Label of a class name; NotFound (listing the names) for anything else.
StatusOr<int> FashionMnistLabel(std::string_view class_name);
// The classes of the three example organisations: "footwear" = sandal, sneaker, ankle_boot;
// "tops" = t_shirt, pullover, coat, shirt; "rest" = trouser, dress, bag. NotFound otherwise.
StatusOr<std::vector<std::string>> FashionMnistOrganisation(std::string_view organisation);

// Streams the train split in file order from `directory` (train-images-idx3-ubyte.gz and
// train-labels-idx1-ubyte.gz) and returns the first `per_class` items of each of `labels`, grouped
// by label in the order of `labels` (result[c * per_class + k] is the k-th item of labels[c]).
// Stops reading as soon as every class is full. Errors: InvalidArgument (bad label, per_class < 1,
// repeated label), NotFound (a file is missing), DataLoss (bad header, truncated file, or fewer
// than per_class items of a class). Thread-safe.
StatusOr<std::vector<FashionMnistItem>> LoadFirstItemsPerClass(const std::string& directory,
                                                               std::span<const int> labels,
                                                               int per_class);

}  // namespace dnd::experts

#endif  // DND_WORKER_EXPERTS_FASHION_MNIST_H_
