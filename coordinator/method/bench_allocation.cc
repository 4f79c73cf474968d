// Google Benchmark of one Divide-and-Denoise coordinator step on the CPU: one allocation solve
// (proportional fairness, default options) plus the composite combination of n proposals over a
// 4-channel latent, single thread, for m in {1024, 4096, 16384, 65536} and n in {2, 3, 5, 8}, as a
// job's first (cold) step and as a later (warm) step. Results and the command are in
// docs/benchmarks/allocation.md.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "coordinator/method/allocation.h"
#include "coordinator/method/composite.h"
#include "protocol/startup.h"

namespace dnd::method {
namespace {

constexpr int kChannels = 4;

// Peaked utility maps (one Gaussian blob per expert on a square grid) plus the fictitious row, at
// diffusion step `step` of a job: the blobs drift by 0.2% of the side and narrow by 1% per step,
// so consecutive steps' utilities differ as slowly varying expert maps do.
struct UtilityModel {
  int n = 0, m = 0, side = 0;
  std::vector<double> cx, cy, radius;
  UtilityModel(int n_experts, int positions, uint32_t seed)
      : n(n_experts), m(positions), side(static_cast<int>(std::lround(std::sqrt(positions)))) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    for (int i = 0; i < n; ++i) {
      cx.push_back(unif(rng) * side);
      cy.push_back(unif(rng) * side);
      radius.push_back(side * (0.1 + 0.2 * unif(rng)));
    }
  }
  void At(int step, std::vector<float>* u) const {
    u->resize(static_cast<size_t>(n + 1) * m);
    for (int i = 0; i < n; ++i) {
      const double x0 = cx[i] + 0.002 * side * step, y0 = cy[i] - 0.002 * side * step;
      const double r = radius[i] * std::pow(0.99, step);
      for (int j = 0; j < m; ++j) {
        const double dx = (j % side - x0) / r, dy = (j / side - y0) / r;
        (*u)[static_cast<size_t>(i) * m + j] =
            static_cast<float>(std::exp(-dx * dx - dy * dy) + 1e-3);
      }
    }
    for (int j = 0; j < m; ++j) (*u)[static_cast<size_t>(n) * m + j] = 1.0f / m;
  }
};

constexpr int kSteps = 50;  // steps of one simulated job (warm mode)

// start = 0 (cold, new solver): every iteration is a job's first step: AllocationSolver::Create
// (buffers allocated and first touched), the dual from lambda = 0, the previous allocation uniform
// (Q_T), step 0's utilities.
// start = 1 (cold, reused solver): the same solve on a solver Reset() from the last job: the cold
// solve's arithmetic without the allocation.
// start = 2 (warm): every iteration is one step s = 1..49 of a 50-step job, as the coordinator's
// step loop calls it: one solver per job, previous = the last step's result (aliasing the output,
// as strategy.cc passes it), so the dual starts from the last step's lambda* and log Q is reused.
// Untimed: step 0 of each job (a cold solve) and computing the utilities.
void BM_AllocationStep(benchmark::State& state) {
  const int m = static_cast<int>(state.range(0));
  const int n = static_cast<int>(state.range(1));
  const int start = static_cast<int>(state.range(2));
  const UtilityModel model(n, m, 7);
  std::vector<float> u;
  model.At(0, &u);
  std::vector<std::vector<float>> mu(n, std::vector<float>(static_cast<size_t>(kChannels) * m));
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (auto& f : mu) {
    for (float& v : f) v = normal(rng);
  }
  const std::vector<std::span<const float>> mus(mu.begin(), mu.end());
  std::vector<float> out(static_cast<size_t>(kChannels) * m);
  AllocationOptions options;
  const Allocation uniform = Allocation::Uniform(n + 1, m);
  auto solver = std::move(AllocationSolver::Create(options, n, m)).value();
  Allocation a;
  int step = 0;
  int64_t total_iterations = 0;
  for (auto _ : state) {
    if (start == 0 || start == 1) {
      if (start == 0) {
        solver = std::move(AllocationSolver::Create(options, n, m)).value();
      } else {
        solver->Reset();
      }
      if (!solver->SolveInto(u, uniform.q, &a).ok()) state.SkipWithError("allocation failed");
    } else {
      state.PauseTiming();
      if (step == 0) {
        solver->Reset();
        a = uniform;
        model.At(0, &u);
        if (!solver->SolveInto(u, a.q, &a).ok()) state.SkipWithError("allocation failed");
        step = 1;
      }
      model.At(step, &u);
      step = step + 1 == kSteps ? 0 : step + 1;
      state.ResumeTiming();
      if (!solver->SolveInto(u, a.q, &a).ok()) state.SkipWithError("allocation failed");
    }
    if (!a.converged) state.SkipWithError("allocation did not converge");
    total_iterations += a.dual_iterations;
    const CompositeInputs in{mus, a.q, kChannels, {}, 0.0, 0.5, 0.0};
    if (!CompositeMean(in, out).ok()) state.SkipWithError("composite failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["dual_iters"] =
      static_cast<double>(total_iterations) / std::max<int64_t>(1, state.iterations());
  state.counters["ns_per_position"] =
      benchmark::Counter(static_cast<double>(m), benchmark::Counter::kIsIterationInvariantRate |
                                                     benchmark::Counter::kInvert);
}

BENCHMARK(BM_AllocationStep)
    ->ArgNames({"m", "n", "start"})
    ->ArgsProduct({{1024, 4096, 16384, 65536}, {2, 3, 5, 8}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dnd::method

int main(int argc, char** argv) {
  dnd::InitProcess({.num_threads = 1, .set_compute_threads = {}});  // single thread, no page faults
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
