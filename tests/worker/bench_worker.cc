// bench_worker: latency and throughput of the exact Fashion-MNIST expert (worker/experts) per step
// (conditional + unconditional + utility) and per guidance gradient, vs batch size and mixture size
// K. Results and the command are in docs/benchmarks/worker.md. Google Benchmark's usual flags
// apply.
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "protocol/startup.h"
#include "worker/experts/expert.h"
#include "worker/experts/fashion_mnist.h"
#include "worker/experts/torch_runtime.h"

namespace dnd::experts {
namespace {

// One expert per (K, organisation), built once and reused across benchmarks.
Expert& CachedExpert(int items_per_class) {
  static std::map<int, std::unique_ptr<Expert>> experts;
  auto& slot = experts[items_per_class];
  if (!slot) {
    ExpertConfig config;
    config.backend = "exact";
    config.name = "footwear";
    config.concepts = FashionMnistOrganisation("footwear").value();
    config.items_per_class = items_per_class;
    slot = std::move(CreateExpert(config)).value();
  }
  return *slot;
}

std::vector<std::vector<float>> Latents(int count) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> latents(count, std::vector<float>(64 * 64));
  for (auto& latent : latents) {
    for (float& v : latent) v = normal(rng);
  }
  return latents;
}

// Args: {items per class K, batch size, utility kind (0 score, 1 attention)}.
void BM_ExactStep(benchmark::State& state) {
  Expert& expert = CachedExpert(static_cast<int>(state.range(0)));
  const int batch_size = static_cast<int>(state.range(1));
  const UtilityKind kind = state.range(2) ? UtilityKind::kAttention : UtilityKind::kScore;
  const std::vector<std::vector<float>> latents = Latents(batch_size);
  const char* concepts[] = {"sandal", "sneaker", "ankle_boot"};
  std::vector<StepInput> batch;
  for (int b = 0; b < batch_size; ++b) {
    batch.push_back({.latent = latents[b],
                     .timestep = 500,
                     .alpha_cumprod = 0.3 + 0.05 * b,
                     .concept_name = concepts[b % 3],
                     .utility = kind});
  }
  for (auto _ : state) {
    std::vector<StatusOr<StepOutput>> out = expert.Step(batch);
    if (!out[0].ok()) state.SkipWithError(out[0].status().ToString().c_str());
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
  state.counters["threads"] = TorchThreads();
}

// Args: {items per class K, batch size, utility kind}.
void BM_ExactGradient(benchmark::State& state) {
  Expert& expert = CachedExpert(static_cast<int>(state.range(0)));
  const int batch_size = static_cast<int>(state.range(1));
  const UtilityKind kind = state.range(2) ? UtilityKind::kAttention : UtilityKind::kScore;
  const std::vector<std::vector<float>> latents = Latents(batch_size);
  const std::vector<float> allocation(64 * 64, 0.5f);
  std::vector<GradientInput> batch;
  for (int b = 0; b < batch_size; ++b) {
    batch.push_back({.step = {.latent = latents[b],
                              .timestep = 500,
                              .alpha_cumprod = 0.3 + 0.05 * b,
                              .concept_name = "sneaker",
                              .utility = kind},
                     .allocation = allocation});
  }
  for (auto _ : state) {
    std::vector<StatusOr<std::vector<float>>> out = expert.Gradient(batch);
    if (!out[0].ok()) state.SkipWithError(out[0].status().ToString().c_str());
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations() * batch_size);
  state.counters["threads"] = TorchThreads();
}

// Start-up: reading the data subset and building the mixture tensors. Arg: K.
void BM_ExactCreate(benchmark::State& state) {
  for (auto _ : state) {
    ExpertConfig config;
    config.backend = "exact";
    config.name = "footwear";
    config.concepts = FashionMnistOrganisation("footwear").value();
    config.items_per_class = static_cast<int>(state.range(0));
    StatusOr<std::unique_ptr<Expert>> expert = CreateExpert(config);
    if (!expert.ok()) state.SkipWithError(expert.status().ToString().c_str());
  }
}

BENCHMARK(BM_ExactCreate)->Arg(32)->Arg(64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ExactStep)
    ->ArgNames({"K", "batch", "attention"})
    ->ArgsProduct({{16, 32, 64}, {1}, {0, 1}})
    ->ArgsProduct({{32}, {2, 4, 8}, {0}})
    ->Args({32, 8, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ExactGradient)
    ->ArgNames({"K", "batch", "attention"})
    ->ArgsProduct({{32}, {1, 2, 4, 8}, {0}})
    ->Args({32, 1, 1})
    ->Args({32, 8, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace dnd::experts

int main(int argc, char** argv) {
  dnd::InitProcess({.set_compute_threads = dnd::experts::SetTorchThreads});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
