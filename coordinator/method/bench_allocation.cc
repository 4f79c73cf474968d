// Google Benchmark of one Divide-and-Denoise coordinator step on the CPU: one allocation solve
// (proportional fairness, default options) plus the composite combination of n proposals over a
// 4-channel latent, single thread, for m in {1024, 4096, 16384, 65536} and n in {2, 3, 5, 8}.
// Results and the command are in docs/benchmarks/allocation.md.
#include <cmath>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "coordinator/method/allocation.h"
#include "coordinator/method/composite.h"

namespace dnd::method {
namespace {

constexpr int kChannels = 4;

// Peaked utility maps (one Gaussian blob per expert on a square grid) plus the fictitious row.
std::vector<float> Utilities(int n, int m, uint32_t seed) {
  const int side = static_cast<int>(std::lround(std::sqrt(m)));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<float> u(static_cast<size_t>(n + 1) * m);
  for (int i = 0; i < n; ++i) {
    const double cx = unif(rng) * side, cy = unif(rng) * side, r = side * (0.1 + 0.2 * unif(rng));
    for (int j = 0; j < m; ++j) {
      const double dx = (j % side - cx) / r, dy = (j / side - cy) / r;
      u[static_cast<size_t>(i) * m + j] = static_cast<float>(std::exp(-dx * dx - dy * dy) + 1e-3);
    }
  }
  for (int j = 0; j < m; ++j) u[static_cast<size_t>(n) * m + j] = 1.0f / m;
  return u;
}

// warm = 0: every iteration uses a fresh solver (cold dual start, lambda = 0).
// warm = 1: one solver reused on the same input (the steady state of a job's step loop, where the
// previous step's multipliers start the dual).
void BM_AllocationStep(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0));
  const int n = static_cast<int>(state.range(1));
  const bool warm = state.range(2) != 0;
  const auto u = Utilities(n, m, 7);
  const Allocation prev = Allocation::Uniform(n + 1, m);
  std::vector<std::vector<float>> mu(n, std::vector<float>(static_cast<size_t>(kChannels) * m));
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (auto& f : mu) {
    for (float& v : f) v = normal(rng);
  }
  const std::vector<std::span<const float>> mus(mu.begin(), mu.end());
  std::vector<float> out(static_cast<size_t>(kChannels) * m);
  AllocationOptions options;
  auto solver = std::move(AllocationSolver::Create(options, n, m)).value();
  int iterations = 0;
  Allocation a;
  for (auto _ : state) {
    if (!warm) solver = std::move(AllocationSolver::Create(options, n, m)).value();
    if (!solver->SolveInto(u, prev.q, &a).ok() || !a.converged) {
      state.SkipWithError("allocation did not converge");
    }
    iterations = a.dual_iterations;
    const CompositeInputs in{mus, a.q, kChannels, {}, 0.0, 0.5, 0.0};
    if (!CompositeMean(in, out).ok()) state.SkipWithError("composite failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["dual_iters"] = iterations;
  state.counters["ns_per_position"] =
      benchmark::Counter(static_cast<double>(m), benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
}

BENCHMARK(BM_AllocationStep)
    ->ArgNames({"m", "n", "warm"})
    ->ArgsProduct({{1024, 4096, 16384, 65536}, {2, 3, 5, 8}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dnd::method

BENCHMARK_MAIN();
