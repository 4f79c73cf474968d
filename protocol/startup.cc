// See startup.h.
#include "protocol/startup.h"

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include <malloc.h>
#include <signal.h>

namespace dnd {
namespace {

// What a stop signal calls; the only state a signal handler can reach.
std::atomic<void (*)(void*)> g_request_stop{nullptr};
std::atomic<void*> g_stop_target{nullptr};

void OnStopSignal(int) {
  void (*request_stop)(void*) = g_request_stop.load();
  void* target = g_stop_target.load();
  if (request_stop != nullptr && target != nullptr) request_stop(target);
}

}  // namespace

void StopOnSignals(void (*request_stop)(void* target), void* target) {
  g_request_stop.store(request_stop);
  g_stop_target.store(target);
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void ClearStopSignalTarget() { g_stop_target.store(nullptr); }

int ResolveThreadCount(int requested) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("DND_THREADS"); env != nullptr && *env != '\0') {
    const int from_env = std::atoi(env);
    if (from_env > 0) return from_env;
  }
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

int InitProcess(const StartupOptions& options) {
  // Keep large allocations on the heap and never trim it: a 1 GiB threshold means step-sized
  // buffers are reused instead of being mmap'ed (and page-faulted) anew every step.
  constexpr int kOneGiB = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kOneGiB);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
  const int threads = ResolveThreadCount(options.num_threads);
  if (options.set_compute_threads) options.set_compute_threads(threads);
  return threads;
}

}  // namespace dnd
