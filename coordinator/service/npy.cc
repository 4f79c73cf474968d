// See npy.h. The header dict is written and parsed by hand: it is one fixed line of Python
// literal syntax, and a JSON library would not read it.
#include "coordinator/service/npy.h"

#include <bit>
#include <cstring>
#include <regex>

namespace dnd::coordinator {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kAlignment = 64;

static_assert(std::endian::native == std::endian::little, "npy writer assumes little-endian");

}  // namespace

StatusOr<std::string> EncodeNpyFloat32(std::span<const float> values,
                                       std::span<const int64_t> shape) {
  int64_t count = 1;
  std::string dims;  // Python tuple syntax: "4, 16, 16"; "7," for one dimension; "" for a scalar
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] < 0)
      return InvalidArgumentError("npy: negative dimension " + std::to_string(shape[k]));
    count *= shape[k];
    dims += (k > 0 ? ", " : "") + std::to_string(shape[k]);
  }
  if (shape.size() == 1) dims += ",";
  if (static_cast<size_t>(count) != values.size()) {
    return InvalidArgumentError("npy: shape holds " + std::to_string(count) + " values, got " +
                                std::to_string(values.size()));
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic (6) + version (2) + length (2) + header + '\n', padded to the alignment.
  const size_t unpadded = kMagic.size() + 4 + header.size() + 1;
  header.append((kAlignment - unpadded % kAlignment) % kAlignment, ' ');
  header.push_back('\n');
  std::string out(kMagic);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>((header.size() >> 8) & 0xff));
  out += header;
  const size_t data_start = out.size();
  out.resize(data_start + values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(out.data() + data_start, values.data(), values.size_bytes());
  return out;
}

StatusOr<NpyArray> ParseNpyFloat32(std::string_view bytes) {
  if (bytes.size() < 10 || bytes.substr(0, kMagic.size()) != kMagic) {
    return DataLossError("npy: not a .npy file (no \\x93NUMPY magic)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length = static_cast<unsigned char>(bytes[8]) |
                    (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 && bytes.size() >= 12) {
    header_length = 0;
    for (int k = 0; k < 4; ++k) {
      header_length |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + k])) << (8 * k);
    }
    header_start = 12;
  } else {
    return DataLossError("npy: unsupported format version " + std::to_string(major));
  }
  if (bytes.size() < header_start + header_length) return DataLossError("npy: truncated header");
  const std::string header(bytes.substr(header_start, header_length));
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")) ||
      m[1].str() != "<f4") {
    return DataLossError("npy: dtype is not little-endian float32 ('<f4'): " + header);
  }
  if (!std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")) ||
      m[1].str() != "False") {
    return DataLossError("npy: only C-order arrays are read: " + header);
  }
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) {
    return DataLossError("npy: no shape in the header: " + header);
  }
  NpyArray array;
  const std::string dims = m[1].str();
  const std::regex number(R"(\d+)");
  int64_t count = 1;
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number);
       it != std::sregex_iterator(); ++it) {
    array.shape.push_back(std::stoll(it->str()));
    count *= array.shape.back();
  }
  const size_t data_start = header_start + header_length;
  const size_t data_bytes = static_cast<size_t>(count) * sizeof(float);
  if (bytes.size() != data_start + data_bytes) {
    return DataLossError("npy: the shape needs " + std::to_string(data_bytes) + " data bytes, " +
                         "the file has " + std::to_string(bytes.size() - data_start));
  }
  array.values.resize(static_cast<size_t>(count));
  if (count > 0) std::memcpy(array.values.data(), bytes.data() + data_start, data_bytes);
  return array;
}

}  // namespace dnd::coordinator
