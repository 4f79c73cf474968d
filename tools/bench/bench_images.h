// Pictures and arrays of the benchmarks: canvases (64x64 floats in [0, 1]) tiled into grid PNGs,
// and reading a job's final latent back (latent.npy, numpy's format) from a coordinator's result
// directory. No LibTorch.
#ifndef DND_TOOLS_BENCH_BENCH_IMAGES_H_
#define DND_TOOLS_BENCH_BENCH_IMAGES_H_

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"

namespace dnd::bench {

// A float32 array read from an .npy file. Value type.
struct NpyArray {
  std::vector<size_t> shape;
  std::vector<float> values;  // C order
};

// Reads a little-endian float32 ('<f4'), C-order .npy file (format version 1.0 or 2.0).
// NotFound when it cannot be opened; DataLoss for a bad magic, header, dtype, Fortran order or a
// truncated body.
StatusOr<NpyArray> ReadNpy(const std::filesystem::path& path);

// A grid of canvases: rows x columns cells of kCanvasSide^2 floats in [0, 1] (grey levels; a
// negative first value marks an empty cell, drawn dark red), each drawn scale x scale pixels per
// canvas pixel with a `gap`-pixel white border between cells. cells.size() must be rows*columns.
// Written as an RGB PNG; Internal on an I/O failure, InvalidArgument on a size mismatch.
Status WriteCanvasGrid(const std::vector<std::vector<float>>& cells, int rows, int columns,
                       int scale, const std::filesystem::path& file);

// The canvas of a 1x64x64 pixel-space latent in [-1, 1]: (x + 1) / 2, clamped to [0, 1].
std::vector<float> PixelLatentToCanvas(std::span<const float> latent);

}  // namespace dnd::bench

#endif  // DND_TOOLS_BENCH_BENCH_IMAGES_H_
