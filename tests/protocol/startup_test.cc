// The start-up helper: thread-count resolution and the malloc settings that keep step-sized buffers
// from being page-faulted in anew on every allocation (see protocol/startup.h).
#include "protocol/startup.h"

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

namespace dnd {
namespace {

long MinorFaults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Allocates, touches and frees `bytes`; returns the minor page faults this caused.
long FaultsOfOneBuffer(size_t bytes) {
  const long before = MinorFaults();
  char* p = static_cast<char*>(std::malloc(bytes));
  for (size_t i = 0; i < bytes; i += 4096) p[i] = static_cast<char>(i);
  // Keep the writes observable so the loop is not optimised away.
  volatile char sink = p[bytes / 2];
  (void)sink;
  std::free(p);
  return MinorFaults() - before;
}

TEST(StartupTest, ExplicitThreadCountWins) {
  EXPECT_EQ(ResolveThreadCount(3), 3);
}

TEST(StartupTest, EnvironmentThenCoresAreTheDefault) {
  setenv("DND_THREADS", "5", 1);
  EXPECT_EQ(ResolveThreadCount(0), 5);
  unsetenv("DND_THREADS");
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(ResolveThreadCount(0), cores > 0 ? cores : 1);
}

TEST(StartupTest, HookReceivesTheResolvedCount) {
  int seen = -1;
  const int got = InitProcess({.num_threads = 2, .set_compute_threads = [&](int n) { seen = n; }});
  EXPECT_EQ(got, 2);
  EXPECT_EQ(seen, 2);
}

TEST(StartupTest, LargeBuffersAreReusedWithoutPageFaults) {
  InitProcess({.num_threads = 1, .set_compute_threads = {}});
  constexpr size_t kBytes = 64u << 20;  // 16384 pages of 4 KiB
  const long first = FaultsOfOneBuffer(kBytes);
  const long second = FaultsOfOneBuffer(kBytes);
  // The first use faults its pages in; with the 1 GiB mmap/trim thresholds the freed block stays in
  // the heap, so the second use of the same size faults (almost) none. Without InitProcess each use
  // would mmap and fault all 16384 pages again.
  EXPECT_GT(first, 1000);
  EXPECT_LT(second, 100) << "first use: " << first << " faults";
}

}  // namespace
}  // namespace dnd
