// Tests of tools/bench/bench_images.h: .npy files written byte by byte in the test (numpy's
// documented format) are read back exactly; bad files are refused with DataLoss / NotFound.
#include "tools/bench/bench_images.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

namespace dnd::bench {
namespace {

std::filesystem::path WriteNpy(const std::string& name, const std::string& header_dict,
                               const std::vector<float>& values) {
  std::string header = header_dict;
  // Pad with spaces so that magic (6) + version (2) + length (2) + header + '\n' is 64-aligned.
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  const auto path = std::filesystem::path(::testing::TempDir()) / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(BenchImagesTest, ReadsFloat32NpyWithItsShape) {
  std::vector<float> values(2 * 3 * 4);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i) - 1.0f;
  const auto path =
      WriteNpy("a.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", values);
  auto array = ReadNpy(path);
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  EXPECT_EQ(array->shape, (std::vector<size_t>{2, 3, 4}));
  EXPECT_EQ(array->values, values);
}

TEST(BenchImagesTest, RefusesOtherDtypesAndTruncatedBodies) {
  const auto f8 =
      WriteNpy("b.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", {1, 2, 3, 4});
  EXPECT_EQ(ReadNpy(f8).status().code(), StatusCode::kDataLoss);
  const auto short_body =
      WriteNpy("c.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", {1, 2});
  EXPECT_EQ(ReadNpy(short_body).status().code(), StatusCode::kDataLoss);
  const auto fortran =
      WriteNpy("d.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", {1, 2});
  EXPECT_EQ(ReadNpy(fortran).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ReadNpy("/nonexistent/x.npy").status().code(), StatusCode::kNotFound);
}

TEST(BenchImagesTest, PixelLatentMapsMinusOneToBlackAndClamps) {
  const std::vector<float> latent = {-1.0f, 0.0f, 1.0f, 3.0f, -2.0f};
  const std::vector<float> canvas = PixelLatentToCanvas(latent);
  EXPECT_EQ(canvas, (std::vector<float>{0.0f, 0.5f, 1.0f, 1.0f, 0.0f}));
}

TEST(BenchImagesTest, GridRefusesAWrongCellCount) {
  std::vector<std::vector<float>> cells(3, std::vector<float>(64 * 64, 0.5f));
  const auto file = std::filesystem::path(::testing::TempDir()) / "grid.png";
  EXPECT_EQ(WriteCanvasGrid(cells, 2, 2, 1, file).code(), StatusCode::kInvalidArgument);
  cells.emplace_back(64 * 64, 1.0f);
  ASSERT_TRUE(WriteCanvasGrid(cells, 2, 2, 1, file).ok());
  EXPECT_GT(std::filesystem::file_size(file), 100u);
}

}  // namespace
}  // namespace dnd::bench
