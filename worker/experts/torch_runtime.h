// LibTorch process settings for binaries that run experts: the hook that dnd::InitProcess
// (protocol/startup.h) calls with the resolved thread count. No LibTorch in this header.
#ifndef DND_WORKER_EXPERTS_TORCH_RUNTIME_H_
#define DND_WORKER_EXPERTS_TORCH_RUNTIME_H_

namespace dnd::experts {

// Sets LibTorch's intra-op threads to `num_threads` (>= 1) and, when it is still allowed (before
// any inter-op work has started; LibTorch permits it once per process), its inter-op threads too.
// Call from main() through InitProcess({.set_compute_threads = SetTorchThreads}).
void SetTorchThreads(int num_threads);

// LibTorch's current intra-op thread count.
int TorchThreads();

}  // namespace dnd::experts

#endif  // DND_WORKER_EXPERTS_TORCH_RUNTIME_H_
