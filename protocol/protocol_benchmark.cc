// bench_protocol: cost of the wire protocol for one step message, a StepRequest carrying a 4x64x64
// float32 latent (64 KiB): encode+decode in process, and a loopback round trip
// DEALER -> ROUTER -> DEALER over tcp://127.0.0.1, plain and with CURVE. Numbers: docs/benchmarks/.
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include <benchmark/benchmark.h>

#include "protocol/codec.h"
#include "protocol/curve_keys.h"
#include "protocol/messages.h"
#include "protocol/startup.h"
#include "protocol/transport.h"

namespace dnd::protocol {
namespace {

StepRequest MakeStepRequest() {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(4 * 64 * 64);
  for (float& v : values) v = normal(rng);
  StepRequest r;
  r.job_id = "job-bench";
  r.step_index = 7;
  r.timestep = 801;
  r.prev_timestep = 781;
  r.alpha_cumprod = 0.0731;
  r.latent = MakeFloatTensor({4, 64, 64}, std::move(values));
  r.concept_name = "sneaker";
  r.cfg_scale = 7.5f;
  return r;
}

void Require(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "bench_protocol: %s\n", what.c_str());
    std::abort();
  }
}

void BM_StepRequestEncodeDecode(benchmark::State& state) {
  const CoordinatorToWorker message = MakeStepRequest();
  for (auto _ : state) {
    std::string bytes = Encode(message);
    auto decoded = DecodeCoordinatorToWorker(AsBytes(bytes));
    Require(decoded.ok(), decoded.status().ToString());
    benchmark::DoNotOptimize(decoded);
  }
  state.SetBytesProcessed(state.iterations() * 4 * 64 * 64 * sizeof(float));
}
BENCHMARK(BM_StepRequestEncodeDecode)->Unit(benchmark::kMicrosecond);

// One iteration: encode, DEALER send, ROUTER receive + decode, ROUTER send back (re-encoded),
// DEALER receive + decode.
void RoundTrip(benchmark::State& state, bool curve) {
  auto context = TransportContext::Create();
  Require(context.ok(), context.status().ToString());
  SecurityOptions server_security = SecurityOptions::Plain();
  SecurityOptions client_security = SecurityOptions::Plain();
  if (curve) {
    auto server_keys = GenerateCurveKeyPair();
    auto client_keys = GenerateCurveKeyPair();
    Require(server_keys.ok() && client_keys.ok(), "key generation failed");
    server_security = SecurityOptions::CurveServer(*server_keys, {client_keys->public_key});
    client_security = SecurityOptions::CurveClient(*client_keys, server_keys->public_key);
  }
  auto router = RouterSocket::Bind(**context, "tcp://127.0.0.1:*", server_security);
  Require(router.ok(), router.status().ToString());
  auto dealer = DealerSocket::Connect(**context, (*router)->endpoint(), client_security);
  Require(dealer.ok(), dealer.status().ToString());
  const CoordinatorToWorker message = MakeStepRequest();
  for (auto _ : state) {
    Require((*dealer)->Send(Encode(message)).ok(), "dealer send");
    auto in = (*router)->Receive(5000);
    Require(in.ok(), in.status().ToString());
    auto request = DecodeCoordinatorToWorker(AsBytes(in->payload));
    Require(request.ok(), request.status().ToString());
    Require((*router)->Send(in->peer, Encode(*request)).ok(), "router send");
    auto back = (*dealer)->Receive(5000);
    Require(back.ok(), back.status().ToString());
    auto reply = DecodeCoordinatorToWorker(AsBytes(*back));
    Require(reply.ok(), reply.status().ToString());
    benchmark::DoNotOptimize(reply);
  }
  state.SetBytesProcessed(state.iterations() * 2 * 4 * 64 * 64 * sizeof(float));
}

void BM_LoopbackRoundTripPlain(benchmark::State& state) { RoundTrip(state, false); }
void BM_LoopbackRoundTripCurve(benchmark::State& state) { RoundTrip(state, true); }
BENCHMARK(BM_LoopbackRoundTripPlain)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_LoopbackRoundTripCurve)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace dnd::protocol

int main(int argc, char** argv) {
  dnd::InitProcess();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
