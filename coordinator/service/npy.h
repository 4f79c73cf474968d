// NumPy .npy files (format version 1.0) of float32 arrays: the coordinator writes each job's final
// latent as latent.npy (C x H x W), and tools that read results back (dnd bench) parse it with
// ParseNpyFloat32. Little-endian "<f4", C order. No dependencies beyond the Status type.
#ifndef DND_COORDINATOR_SERVICE_NPY_H_
#define DND_COORDINATOR_SERVICE_NPY_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/status.h"

namespace dnd::coordinator {

// A float32 array and its shape (C order). Value type.
struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> values;  // product(shape) entries
};

// The bytes of a .npy v1.0 file holding `values` with `shape`: the magic "\x93NUMPY", version 1.0,
// a little-endian uint16 header length, the header dict
// "{'descr': '<f4', 'fortran_order': False, 'shape': (C, H, W), }" padded with spaces and ended
// by '\n' so that the data starts at a multiple of 64 bytes, then the values little-endian.
// InvalidArgument when product(shape) != values.size() or a dimension is negative.
StatusOr<std::string> EncodeNpyFloat32(std::span<const float> values,
                                       std::span<const int64_t> shape);

// Parses what EncodeNpyFloat32 writes (any .npy v1.0/v2.0 file of '<f4' in C order).
// DataLoss for a file that is not such a .npy file (the message says what is wrong).
StatusOr<NpyArray> ParseNpyFloat32(std::string_view bytes);

}  // namespace dnd::coordinator

#endif  // DND_COORDINATOR_SERVICE_NPY_H_
