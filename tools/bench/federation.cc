// The embedded federation of the benchmarks (federation.h), built the way `dnd demo` builds its
// embedded one (tools/demo_command.cc), but with many jobs in flight.
#include "tools/bench/federation.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "coordinator/service/coordinator_server.h"
#include "protocol/transport.h"
#include "tools/bench/bench_images.h"
#include "tools/coordinator_client.h"
#include "tools/job_spec_flags.h"
#include "worker/service/worker_server.h"

namespace dnd::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

StatusOr<fs::path> MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      (fs::path(tmp != nullptr && *tmp ? tmp : "/tmp") / "dnd-bench-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return InternalError("cannot create a temporary directory " + pattern);
  }
  return fs::path(pattern);
}

// Reads the final latent and shares of a succeeded job from its result directory.
Status ReadOutcome(const fs::path& dir, const protocol::JobSpec& spec, JobOutcome& outcome) {
  std::ifstream in(dir / "record.json");
  if (!in) return NotFoundError("no record.json in " + dir.string());
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json record = nlohmann::json::parse(text.str(), nullptr, false);
  if (record.is_discarded()) return DataLossError("unreadable " + (dir / "record.json").string());
  outcome.wall_ms = record.value("wall_ms", 0.0);
  if (record.contains("latent_space")) {
    outcome.latent_shape = record["latent_space"]["shape"].get<std::vector<uint32_t>>();
  }
  if (record.contains("steps") && !record["steps"].empty()) {
    const auto share = record["steps"].back()["share"].get<std::vector<double>>();
    for (size_t i = 0; i < spec.experts.size() && i < share.size(); ++i) {
      outcome.shares[spec.experts[i].expert_name] = share[i];
    }
  }
  auto npy = ReadNpy(dir / "latent.npy");
  if (npy.ok()) {
    outcome.latent = std::move(npy->values);
    outcome.latent_shape.assign(npy->shape.begin(), npy->shape.end());
    return OkStatus();
  }
  if (npy.status().code() != StatusCode::kNotFound) return npy.status();
  // No latent.npy (a coordinator from before it was written): a pixel-space job's image.png is
  // its latent, drawn scale x scale pixels per position.
  if (outcome.latent_shape.size() != 3 || outcome.latent_shape[0] != 1) {
    return NotFoundError("the coordinator wrote no latent.npy in " + dir.string() + ", and a " +
                         std::to_string(outcome.latent_shape.size()) +
                         "-dimensional latent of more than one channel cannot be read from "
                         "image.png");
  }
  DND_ASSIGN_OR_RETURN(protocol::Tensor png, tools::ReadLayoutMask((dir / "image.png").string()));
  const uint32_t h = outcome.latent_shape[1];
  const uint32_t w = outcome.latent_shape[2];
  if (png.shape.size() != 2 || png.shape[0] % h != 0 || png.shape[1] % w != 0) {
    return DataLossError("image.png of " + dir.string() + " is not a multiple of the latent size");
  }
  const uint32_t scale = png.shape[0] / h;
  outcome.latent.resize(static_cast<size_t>(h) * w);
  for (uint32_t y = 0; y < h; ++y) {
    for (uint32_t x = 0; x < w; ++x) {
      const float v = png.f32[static_cast<size_t>(y * scale) * png.shape[1] + x * scale];
      outcome.latent[static_cast<size_t>(y) * w + x] = v * 2.0f - 1.0f;
    }
  }
  return OkStatus();
}

}  // namespace

struct EmbeddedFederation::State {
  fs::path data_dir;
  std::unique_ptr<protocol::TransportContext> context;
  std::unique_ptr<coordinator::CoordinatorServer> server;
  std::vector<std::unique_ptr<worker::WorkerServer>> workers;
  std::thread server_thread;
  std::vector<std::thread> worker_threads;
  std::unique_ptr<tools::CoordinatorClient> client;
  Status server_status;
  uint64_t next_token = 0;

  ~State() {
    client.reset();
    for (auto& w : workers) w->RequestStop();
    for (auto& t : worker_threads) t.join();
    if (server) server->RequestStop();
    if (server_thread.joinable()) server_thread.join();
    std::error_code ec;
    if (!data_dir.empty()) fs::remove_all(data_dir, ec);
  }
};

EmbeddedFederation::EmbeddedFederation(std::unique_ptr<State> state) : state_(std::move(state)) {}
EmbeddedFederation::~EmbeddedFederation() = default;

StatusOr<std::unique_ptr<EmbeddedFederation>> EmbeddedFederation::Start(
    std::vector<std::unique_ptr<experts::Expert>> experts, const FederationOptions& options) {
  if (experts.empty()) return InvalidArgumentError("a federation needs at least one expert");
  auto state = std::make_unique<State>();
  DND_ASSIGN_OR_RETURN(state->data_dir, MakeTempDir());
  DND_ASSIGN_OR_RETURN(state->context, protocol::TransportContext::Create());

  coordinator::CoordinatorOptions coordinator_options;
  coordinator_options.worker_endpoint = "tcp://127.0.0.1:*";
  coordinator_options.client_endpoint = "tcp://127.0.0.1:*";
  coordinator_options.worker_security = protocol::SecurityOptions::Plain();
  coordinator_options.client_security = protocol::SecurityOptions::Plain();
  coordinator_options.data_dir = state->data_dir / "data";
  coordinator_options.max_concurrent_jobs = options.max_concurrent_jobs;
  coordinator_options.step_deadline_ms = options.step_deadline_ms;
  if (options.utility_smoothing) {
    coordinator_options.defaults.utility_smoothing = *options.utility_smoothing;
  }
  if (options.view_gain) coordinator_options.defaults.view_gain = *options.view_gain;
  if (options.view_max_shift) {
    coordinator_options.defaults.view_max_shift = *options.view_max_shift;
  }
  if (options.view_min_separation) {
    coordinator_options.defaults.view_min_separation = *options.view_min_separation;
  }
  if (options.view_reference_size) {
    coordinator_options.defaults.view_reference_size = *options.view_reference_size;
  }
  // A loaded machine (training runs beside the benchmark) may starve the coordinator's and the
  // workers' threads for seconds: not an outage here. Heartbeats every 5 s: a worker registers
  // again only after 15 s without hearing from the coordinator (measured: with 1 s, workers
  // re-registered under load average 13).
  // In-process workers do not vanish; a starved one (measured: a run whose process group was
  // given nice 19 lost every job after 60 s without heartbeats) is slow, not gone.
  coordinator_options.heartbeat_interval_ms = 5000;
  coordinator_options.worker_liveness_ms = 600000;
  DND_ASSIGN_OR_RETURN(
      state->server, coordinator::CoordinatorServer::Create(coordinator_options, *state->context));
  coordinator::CoordinatorServer* server = state->server.get();
  Status* server_status = &state->server_status;
  state->server_thread = std::thread([server, server_status] { *server_status = server->Run(); });
  DND_ASSIGN_OR_RETURN(coordinator::BoundEndpoints bound,
                       state->server->WaitUntilBound(std::chrono::seconds(10)));

  std::set<std::string> names;
  for (auto& expert : experts) {
    worker::WorkerOptions worker_options;
    worker_options.coordinator_endpoint = bound.worker;
    worker_options.security = protocol::SecurityOptions::Plain();
    worker_options.organisation = expert->Describe().name;
    worker_options.max_batch = options.max_batch;
    worker_options.batch_wait_ms = options.batch_wait_ms;
    worker_options.guidance_cache_jobs = static_cast<size_t>(options.max_concurrent_jobs) * 2 + 8;
    if (auto it = options.guidance_scales.find(expert->Describe().name);
        it != options.guidance_scales.end()) {
      worker_options.guidance_scale = it->second;
    }
    names.insert(expert->Describe().name);
    DND_ASSIGN_OR_RETURN(
        auto w, worker::WorkerServer::Create(worker_options, std::move(expert), *state->context));
    state->workers.push_back(std::move(w));
  }
  for (auto& w : state->workers) {
    worker::WorkerServer* raw = w.get();
    state->worker_threads.emplace_back([raw] { (void)raw->Run(); });
  }

  tools::ClientOptions client_options;
  client_options.endpoint = bound.client;
  client_options.security = protocol::SecurityOptions::Plain();
  client_options.reply_timeout_ms = 60000;
  DND_ASSIGN_OR_RETURN(state->client,
                       tools::CoordinatorClient::Connect(*state->context, client_options));
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    DND_ASSIGN_OR_RETURN(auto listed, state->client->ListExperts());
    std::set<std::string> alive;
    for (const auto& e : listed) {
      if (e.alive) alive.insert(e.expert_name);
    }
    if (alive == names) break;
    if (Clock::now() >= deadline) {
      return DeadlineExceededError("the benchmark's experts did not register within 60 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::unique_ptr<EmbeddedFederation>(new EmbeddedFederation(std::move(state)));
}

StatusOr<std::vector<JobOutcome>> EmbeddedFederation::RunJobs(
    const std::vector<protocol::JobSpec>& specs, const std::function<void(int, int)>& progress) {
  std::vector<JobOutcome> outcomes(specs.size());
  std::map<std::string, size_t> pending;  // job id -> index
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::string token =
        "bench-" + std::to_string(getpid()) + "-" + std::to_string(state_->next_token++);
    auto id = state_->client->Submit(protocol::SubmitJob{token, specs[i]});
    if (!id.ok()) return id.status().WithContext("submitting job " + std::to_string(i));
    outcomes[i].job_id = *id;
    pending[*id] = i;
  }
  const int total = static_cast<int>(specs.size());
  int done = 0;
  if (progress) progress(done, total);
  while (!pending.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    DND_ASSIGN_OR_RETURN(auto statuses, state_->client->GetStatus(""));
    for (const protocol::JobStatus& s : statuses) {
      auto it = pending.find(s.job_id);
      if (it == pending.end() || !tools::IsTerminal(s.state)) continue;
      JobOutcome& outcome = outcomes[it->second];
      if (s.state == protocol::JobState::kSucceeded) {
        Status read =
            ReadOutcome(state_->data_dir / "data" / "jobs" / s.job_id, specs[it->second], outcome);
        outcome.succeeded = read.ok();
        if (!read.ok()) outcome.reason = read.ToString();
      } else {
        outcome.reason = std::string(protocol::JobStateName(s.state)) + ": " + s.reason;
      }
      pending.erase(it);
      ++done;
    }
    if (progress) progress(done, total);
  }
  return outcomes;
}

}  // namespace dnd::bench
