// Fashion-MNIST canvases for the trained models (docs/models.md): the full train and test splits,
// single items placed with the centre-preferring position prior of the experts' training data,
// multi-item canvases for the presence detector, and the side-by-side layouts of the benchmark's
// ceiling. Pixels are floats in [0, 1] with black = 0 (the autoencoder's and detector's range).
// No LibTorch in this header or its source.
#ifndef DND_WORKER_MODELS_CANVASES_H_
#define DND_WORKER_MODELS_CANVASES_H_

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"

namespace dnd::models {

inline constexpr int kCanvasSide = 64;
inline constexpr int kCanvasPixels = kCanvasSide * kCanvasSide;
inline constexpr int kItemSide = 28;
inline constexpr int kMaxOffset = kCanvasSide - kItemSide;  // 36: offsets are 0..36 per axis
inline constexpr int kNumClasses = 10;

// One split of Fashion-MNIST, in file order. Value type.
struct FashionMnistSplit {
  std::vector<uint8_t> pixels;  // size() * 784, row-major 28x28 per item, 0 = black
  std::vector<uint8_t> labels;  // 0..9
  size_t size() const { return labels.size(); }
  std::span<const uint8_t> Item(size_t i) const {
    return std::span<const uint8_t>(pixels).subspan(i * kItemSide * kItemSide,
                                                    kItemSide * kItemSide);
  }
  // Indices of the items whose label is in `labels`, in file order.
  std::vector<size_t> IndicesOf(std::span<const int> wanted) const;
};

// Reads "<directory>/<split>-images-idx3-ubyte.gz" and the labels, split = "train" or "t10k".
// Errors: InvalidArgument (other split), NotFound (missing file), DataLoss (bad header, truncated).
StatusOr<FashionMnistSplit> LoadFashionMnistSplit(const std::string& directory,
                                                  const std::string& split);

// An item's top-left corner on the canvas, each coordinate in [0, kMaxOffset].
struct Offset {
  int x = 0;
  int y = 0;
};

// The experts' position prior (the same as the exact expert's): each coordinate is a rounded
// Gaussian around the centre (18) with `std_px`, redrawn until it lands in [0, kMaxOffset].
Offset SampleCentredOffset(std::mt19937_64& rng, double std_px = 7.0);
// Uniform over [0, kMaxOffset]^2 (the detector's training canvases).
Offset SampleUniformOffset(std::mt19937_64& rng);

// Pastes `item` (784 bytes) at `offset` into `canvas` (kCanvasPixels floats), taking the pixel-wise
// maximum with what is there (overlapping items stay visible, as on a light table).
void PasteItem(std::span<const uint8_t> item, Offset offset, std::span<float> canvas);

// The benchmark's non-overlapping layouts: 1 item centred, 2 side by side (x 0 and 36, y 18),
// 3 as a triangle (0,0), (36,0), (18,36). InvalidArgument for other counts.
StatusOr<std::vector<Offset>> SideBySideOffsets(int count);

}  // namespace dnd::models

#endif  // DND_WORKER_MODELS_CANVASES_H_
