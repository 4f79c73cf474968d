// Process start-up that every dnd binary calls first thing in main(). It applies two facts of the
// machines we run on (measured; see docs/decisions.md "Start-up"):
//  - fresh memory pages cost ~19 us per 4 KiB page on these VMs, so glibc must not hand large
//    buffers back to the kernel between steps (mallopt M_MMAP_THRESHOLD / M_TRIM_THRESHOLD = 1
//    GiB);
//  - LibTorch starts with 1 intra-op thread, so binaries that run models set it to the core count.
#ifndef DND_PROTOCOL_STARTUP_H_
#define DND_PROTOCOL_STARTUP_H_

#include <functional>

namespace dnd {

struct StartupOptions {
  // Compute threads for numeric libraries; 0 = $DND_THREADS if set, else the number of cores.
  int num_threads = 0;
  // Called once with the resolved thread count, e.g. dnd::experts::SetTorchThreads for binaries
  // that link LibTorch. Empty for binaries that run no models.
  std::function<void(int)> set_compute_threads;
};

// Returns the resolved number of compute threads. Call once, from main(), before other threads
// start.
int InitProcess(const StartupOptions& options = {});

// Makes SIGINT and SIGTERM call request_stop(target) (a server's RequestStop) until
// ClearStopSignalTarget(). request_stop must be async-signal-safe, e.g. an atomic store. A signal
// handler is used rather than a thread waiting in sigwait because OpenBLAS starts its threads
// before main(), with the signals unblocked. One target per process; call from main().
void StopOnSignals(void (*request_stop)(void* target), void* target);
void ClearStopSignalTarget();

// The thread count InitProcess() would resolve for `requested` (0 = $DND_THREADS or cores).
int ResolveThreadCount(int requested);

}  // namespace dnd

#endif  // DND_PROTOCOL_STARTUP_H_
