#include "worker/models/canvases.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace dnd::models {
namespace {

StatusOr<std::vector<uint8_t>> ReadGzip(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    return NotFoundError("Fashion-MNIST file " + path +
                         " is missing (install Debian's dataset-fashion-mnist)");
  }
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) return NotFoundError("cannot open " + path);
  std::vector<uint8_t> data;
  std::vector<uint8_t> buffer(1 << 20);
  for (;;) {
    const int n = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (n < 0) {
      gzclose(file);
      return DataLossError("cannot decompress " + path);
    }
    if (n == 0) break;
    data.insert(data.end(), buffer.begin(), buffer.begin() + n);
  }
  gzclose(file);
  return data;
}

uint32_t BigEndian(const std::vector<uint8_t>& d, size_t at) {
  return (uint32_t{d[at]} << 24) | (uint32_t{d[at + 1]} << 16) | (uint32_t{d[at + 2]} << 8) |
         uint32_t{d[at + 3]};
}

int RoundedGaussianCoordinate(std::mt19937_64& rng, double std_px) {
  std::normal_distribution<double> normal(kMaxOffset / 2.0, std_px);
  for (;;) {
    const double v = std::round(normal(rng));
    if (v >= 0 && v <= kMaxOffset) return static_cast<int>(v);
  }
}

}  // namespace

std::vector<size_t> FashionMnistSplit::IndicesOf(std::span<const int> wanted) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (std::find(wanted.begin(), wanted.end(), labels[i]) != wanted.end()) out.push_back(i);
  }
  return out;
}

StatusOr<FashionMnistSplit> LoadFashionMnistSplit(const std::string& directory,
                                                  const std::string& split) {
  if (split != "train" && split != "t10k") {
    return InvalidArgumentError("split must be train or t10k, not '" + split + "'");
  }
  const std::string images_path = directory + "/" + split + "-images-idx3-ubyte.gz";
  const std::string labels_path = directory + "/" + split + "-labels-idx1-ubyte.gz";
  DND_ASSIGN_OR_RETURN(std::vector<uint8_t> images, ReadGzip(images_path));
  DND_ASSIGN_OR_RETURN(std::vector<uint8_t> labels, ReadGzip(labels_path));
  if (images.size() < 16 || BigEndian(images, 0) != 0x803 || BigEndian(images, 8) != 28 ||
      BigEndian(images, 12) != 28) {
    return DataLossError(images_path + ": not an IDX file of 28x28 images");
  }
  if (labels.size() < 8 || BigEndian(labels, 0) != 0x801) {
    return DataLossError(labels_path + ": not an IDX label file");
  }
  const size_t n = BigEndian(images, 4);
  if (BigEndian(labels, 4) != n || images.size() != 16 + n * 784 || labels.size() != 8 + n) {
    return DataLossError(split + " split: image and label counts or file sizes disagree");
  }
  FashionMnistSplit out;
  out.pixels.assign(images.begin() + 16, images.end());
  out.labels.assign(labels.begin() + 8, labels.end());
  for (uint8_t l : out.labels) {
    if (l >= kNumClasses) return DataLossError(labels_path + ": label out of range");
  }
  return out;
}

Offset SampleCentredOffset(std::mt19937_64& rng, double std_px) {
  const int x = RoundedGaussianCoordinate(rng, std_px);
  const int y = RoundedGaussianCoordinate(rng, std_px);
  return {x, y};
}

Offset SampleUniformOffset(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> u(0, kMaxOffset);
  const int x = u(rng);
  const int y = u(rng);
  return {x, y};
}

void PasteItem(std::span<const uint8_t> item, Offset offset, std::span<float> canvas) {
  for (int r = 0; r < kItemSide; ++r) {
    for (int c = 0; c < kItemSide; ++c) {
      float& p = canvas[(offset.y + r) * kCanvasSide + offset.x + c];
      p = std::max(p, item[r * kItemSide + c] / 255.0f);
    }
  }
}

StatusOr<std::vector<Offset>> SideBySideOffsets(int count) {
  switch (count) {
    case 1:
      return std::vector<Offset>{{18, 18}};
    case 2:
      return std::vector<Offset>{{0, 18}, {36, 18}};
    case 3:
      return std::vector<Offset>{{0, 0}, {36, 0}, {18, 36}};
    default:
      return InvalidArgumentError("side-by-side layouts hold 1 to 3 items, not " +
                                  std::to_string(count));
  }
}

}  // namespace dnd::models
