// See torch_runtime.h.
#include "worker/experts/torch_runtime.h"

#include <algorithm>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

namespace dnd::experts {

void SetTorchThreads(int num_threads) {
  const int n = std::max(1, num_threads);
  at::set_num_threads(n);
  try {
    at::set_num_interop_threads(n);
  } catch (const c10::Error&) {
    // Already set, or inter-op work has started: LibTorch allows it only once. Keep the old value.
  }
}

int TorchThreads() { return at::get_num_threads(); }

}  // namespace dnd::experts
