// .npy reading and canvas grids (bench_images.h).
#include "tools/bench/bench_images.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <regex>

#include "coordinator/service/result_writer.h"
#include "worker/models/canvases.h"

namespace dnd::bench {

StatusOr<NpyArray> ReadNpy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open " + path.string());
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string where = path.string() + ": ";
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) {
    return DataLossError(where + "not an .npy file (bad magic)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return DataLossError(where + "truncated header");
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    }
    header_start = 12;
  } else {
    return DataLossError(where + "unsupported .npy version " + std::to_string(major));
  }
  if (bytes.size() < header_start + header_len) return DataLossError(where + "truncated header");
  const std::string header = bytes.substr(header_start, header_len);
  if (header.find("'descr': '<f4'") == std::string::npos) {
    return DataLossError(where + "dtype is not little-endian float32 ('<f4'): " + header);
  }
  if (header.find("'fortran_order': False") == std::string::npos) {
    return DataLossError(where + "Fortran-order arrays are not supported");
  }
  std::smatch match;
  static const std::regex kShape(R"('shape':\s*\(([^)]*)\))");
  if (!std::regex_search(header, match, kShape)) return DataLossError(where + "no shape in header");
  NpyArray array;
  size_t count = 1;
  const std::string dims = match[1].str();
  static const std::regex kNumber(R"(\d+)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), kNumber);
       it != std::sregex_iterator(); ++it) {
    array.shape.push_back(std::stoul(it->str()));
    count *= array.shape.back();
  }
  const size_t body = header_start + header_len;
  if (bytes.size() < body + count * sizeof(float)) {
    return DataLossError(where + "body holds fewer than the " + std::to_string(count) +
                         " floats of its shape");
  }
  array.values.resize(count);
  std::memcpy(array.values.data(), bytes.data() + body, count * sizeof(float));
  return array;
}

Status WriteCanvasGrid(const std::vector<std::vector<float>>& cells, int rows, int columns,
                       int scale, const std::filesystem::path& file) {
  if (rows < 1 || columns < 1 || scale < 1 || cells.size() != static_cast<size_t>(rows * columns)) {
    return InvalidArgumentError("a grid of " + std::to_string(rows) + "x" +
                                std::to_string(columns) + " cells needs that many canvases, got " +
                                std::to_string(cells.size()));
  }
  constexpr int kGap = 2;
  const int side = models::kCanvasSide * scale;
  coordinator::RgbImage image;
  image.width = columns * side + (columns + 1) * kGap;
  image.height = rows * side + (rows + 1) * kGap;
  image.rgb.assign(static_cast<size_t>(image.width) * image.height * 3, 255);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < columns; ++c) {
      const std::vector<float>& cell = cells[static_cast<size_t>(r) * columns + c];
      const bool empty = cell.size() != static_cast<size_t>(models::kCanvasPixels) || cell[0] < 0;
      const int x0 = kGap + c * (side + kGap);
      const int y0 = kGap + r * (side + kGap);
      for (int y = 0; y < side; ++y) {
        for (int x = 0; x < side; ++x) {
          uint8_t* p = &image.rgb[(static_cast<size_t>(y0 + y) * image.width + x0 + x) * 3];
          if (empty) {
            p[0] = 90, p[1] = 0, p[2] = 0;
            continue;
          }
          const float v = cell[static_cast<size_t>(y / scale) * models::kCanvasSide + x / scale];
          const auto g = static_cast<uint8_t>(std::clamp(v, 0.0f, 1.0f) * 255.0f + 0.5f);
          p[0] = p[1] = p[2] = g;
        }
      }
    }
  }
  std::error_code ec;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), ec);
  return coordinator::WritePng(image, file);
}

std::vector<float> PixelLatentToCanvas(std::span<const float> latent) {
  std::vector<float> canvas(latent.size());
  for (size_t i = 0; i < latent.size(); ++i) {
    canvas[i] = std::clamp((latent[i] + 1.0f) * 0.5f, 0.0f, 1.0f);
  }
  return canvas;
}

}  // namespace dnd::bench
