// Fashion-MNIST IDX reader (see fashion_mnist.h). The IDX format: big-endian magic (0x801 labels,
// 0x803 images), item count, then rows and columns for images, then unsigned bytes.
#include "worker/experts/fashion_mnist.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <memory>

#include <zlib.h>

namespace dnd::experts {
namespace {

constexpr std::array<std::string_view, kFashionMnistClasses> kClassNames = {
    "t_shirt", "trouser", "pullover", "dress", "coat",
    "sandal",  "shirt",   "sneaker",  "bag",   "ankle_boot"};

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

StatusOr<GzFile> OpenGz(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    return NotFoundError("Fashion-MNIST file '" + path + "' does not exist");
  }
  gzFile_s* file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return NotFoundError("cannot open '" + path + "'");
  gzbuffer(file, 1 << 16);
  return GzFile(file);
}

Status ReadExactly(gzFile_s* file, void* out, unsigned bytes, const std::string& path) {
  const int got = gzread(file, out, bytes);
  if (got != static_cast<int>(bytes)) {
    return DataLossError("'" + path + "' is truncated or not gzip");
  }
  return OkStatus();
}

StatusOr<uint32_t> ReadBigEndian32(gzFile_s* file, const std::string& path) {
  std::array<unsigned char, 4> bytes{};
  DND_RETURN_IF_ERROR(ReadExactly(file, bytes.data(), 4, path));
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
         uint32_t{bytes[3]};
}

}  // namespace

std::span<const std::string_view> FashionMnistClassNames() { return kClassNames; }

StatusOr<int> FashionMnistLabel(std::string_view class_name) {
  for (int label = 0; label < kFashionMnistClasses; ++label) {
    if (kClassNames[label] == class_name) return label;
  }
  std::string known;
  for (std::string_view name : kClassNames) {
    if (!known.empty()) known += ", ";
    known += name;
  }
  return NotFoundError("'" + std::string(class_name) +
                       "' is not a Fashion-MNIST class; known: " + known);
}

StatusOr<std::vector<std::string>> FashionMnistOrganisation(std::string_view organisation) {
  if (organisation == "footwear")
    return std::vector<std::string>{"sandal", "sneaker", "ankle_boot"};
  if (organisation == "tops") {
    return std::vector<std::string>{"t_shirt", "pullover", "coat", "shirt"};
  }
  if (organisation == "rest") return std::vector<std::string>{"trouser", "dress", "bag"};
  return NotFoundError("organisation '" + std::string(organisation) +
                       "' is not one of footwear, tops, rest");
}

StatusOr<std::vector<FashionMnistItem>> LoadFirstItemsPerClass(const std::string& directory,
                                                               std::span<const int> labels,
                                                               int per_class) {
  if (per_class < 1) return InvalidArgumentError("per_class must be at least 1");
  if (labels.empty()) return InvalidArgumentError("no labels requested");
  std::array<int, kFashionMnistClasses> slot_of_label;
  slot_of_label.fill(-1);
  for (size_t c = 0; c < labels.size(); ++c) {
    const int label = labels[c];
    if (label < 0 || label >= kFashionMnistClasses) {
      return InvalidArgumentError("label " + std::to_string(label) + " is outside 0..9");
    }
    if (slot_of_label[label] >= 0) {
      return InvalidArgumentError("label " + std::to_string(label) + " is requested twice");
    }
    slot_of_label[label] = static_cast<int>(c);
  }

  const std::string images_path = directory + "/train-images-idx3-ubyte.gz";
  const std::string labels_path = directory + "/train-labels-idx1-ubyte.gz";
  DND_ASSIGN_OR_RETURN(GzFile images, OpenGz(images_path));
  DND_ASSIGN_OR_RETURN(GzFile label_file, OpenGz(labels_path));

  DND_ASSIGN_OR_RETURN(const uint32_t label_magic, ReadBigEndian32(label_file.get(), labels_path));
  DND_ASSIGN_OR_RETURN(const uint32_t label_count, ReadBigEndian32(label_file.get(), labels_path));
  if (label_magic != 0x801) return DataLossError("'" + labels_path + "' is not an IDX label file");
  DND_ASSIGN_OR_RETURN(const uint32_t image_magic, ReadBigEndian32(images.get(), images_path));
  DND_ASSIGN_OR_RETURN(const uint32_t image_count, ReadBigEndian32(images.get(), images_path));
  DND_ASSIGN_OR_RETURN(const uint32_t rows, ReadBigEndian32(images.get(), images_path));
  DND_ASSIGN_OR_RETURN(const uint32_t cols, ReadBigEndian32(images.get(), images_path));
  if (image_magic != 0x803 || rows != kFashionMnistSide || cols != kFashionMnistSide) {
    return DataLossError("'" + images_path + "' is not an IDX file of 28x28 images");
  }
  if (image_count != label_count) {
    return DataLossError("Fashion-MNIST image and label counts differ");
  }

  const size_t num_classes = labels.size();
  std::vector<FashionMnistItem> result(num_classes * static_cast<size_t>(per_class));
  std::vector<int> filled(num_classes, 0);
  size_t remaining = result.size();
  FashionMnistItem item;
  for (uint32_t index = 0; index < image_count && remaining > 0; ++index) {
    unsigned char label = 0;
    DND_RETURN_IF_ERROR(ReadExactly(label_file.get(), &label, 1, labels_path));
    DND_RETURN_IF_ERROR(
        ReadExactly(images.get(), item.pixels.data(), kFashionMnistPixels, images_path));
    if (label >= kFashionMnistClasses) {
      return DataLossError("'" + labels_path + "' has label " + std::to_string(label));
    }
    const int slot = slot_of_label[label];
    if (slot < 0 || filled[slot] == per_class) continue;
    item.label = label;
    item.index = static_cast<int>(index);
    result[static_cast<size_t>(slot) * per_class + filled[slot]] = item;
    ++filled[slot];
    --remaining;
  }
  if (remaining > 0) {
    return DataLossError("Fashion-MNIST train split has fewer than " + std::to_string(per_class) +
                         " items of a requested class");
  }
  return result;
}

}  // namespace dnd::experts
