// `dnd demo` (demo_command.h): an embedded or distributed federation, one job through the client
// path of `dnd submit --wait`, results into --out.
#include "tools/demo_command.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

#include <CLI/CLI.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coordinator/service/coordinator_server.h"
#include "protocol/curve_keys.h"
#include "protocol/transport.h"
#include "tools/child_process.h"
#include "tools/command_support.h"
#include "tools/coordinator_client.h"
#include "tools/exit_codes.h"
#include "tools/job_spec_flags.h"
#include "worker/experts/expert.h"
#include "worker/experts/torch_runtime.h"
#include "worker/models/unet_expert.h"
#include "worker/service/shipped_models.h"
#include "worker/service/worker_server.h"

namespace dnd::tools {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kRegistrationTimeout = std::chrono::seconds(60);
// A worker heart-beats from the thread that runs its model, so one slow step on a starved machine
// (measured: a 2-core VM at load 11 with the trained experts) silences it for seconds; the
// deployment default of 3 s then fails the demo. Its workers are local processes or threads whose
// exit the demo notices anyway, so it waits longer for a heartbeat.
constexpr int kDemoLivenessMs = 30000;

struct DemoExpert {
  const char* name;
  std::vector<std::string> concepts;
};

const std::vector<DemoExpert>& DemoExperts() {
  static const std::vector<DemoExpert> experts = {
      {"footwear", {"sandal", "sneaker", "ankle_boot"}},
      {"rest", {"trouser", "dress", "bag"}},
  };
  return experts;
}

// Compute threads of every expert and of the decoder, in both modes: the same count everywhere, so
// that LibTorch reduces in the same order and the embedded and distributed runs write identical
// images; half the cores, so that the two workers of a distributed run do not oversubscribe them.
int DemoComputeThreads() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) /
                         static_cast<int>(DemoExperts().size()));
}

std::string JoinComma(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ",") + s;
  return out;
}

void Say(const DemoOptions& options, const std::string& line) {
  if (options.progress != nullptr) *options.progress << "demo: " << line << std::endl;
}

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  static StatusOr<TempDir> Create(const std::string& prefix) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        (std::filesystem::path(tmp != nullptr && *tmp ? tmp : "/tmp") / (prefix + "XXXXXX"))
            .string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return InternalError("cannot create a temporary directory " + pattern);
    }
    return TempDir(pattern);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return InternalError("cannot create a socket to probe for a free port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return UnavailableError("cannot bind a probe socket on 127.0.0.1");
  }
  const int port = ntohs(address.sin_port);
  close(fd);
  return port;
}

// Waits until every demo expert is registered and alive. `check_children` is called between
// polls and may fail the wait (a child process that exited).
Status WaitForExperts(CoordinatorClient& client, const std::function<Status()>& check_children) {
  const auto deadline = Clock::now() + kRegistrationTimeout;
  std::string seen = "none";
  for (;;) {
    if (check_children) DND_RETURN_IF_ERROR(check_children());
    auto experts = client.ListExperts();
    if (!experts.ok()) return experts.status().WithContext("waiting for the experts");
    std::set<std::string> alive;
    seen.clear();
    for (const auto& e : *experts) {
      if (e.alive) alive.insert(e.expert_name);
      seen += (seen.empty() ? "" : ", ") + e.expert_name + (e.alive ? "" : " (offline)");
    }
    bool all = true;
    for (const DemoExpert& e : DemoExperts()) all = all && alive.count(e.name) > 0;
    if (all) return OkStatus();
    if (Clock::now() >= deadline) {
      return DeadlineExceededError("the demo's experts did not register within 60 s; registered: " +
                                   (seen.empty() ? std::string("none") : seen));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Submits the demo's job through the client path of `dnd submit --wait` and fetches its results.
StatusOr<DemoResult> SubmitAndFetch(CoordinatorClient& client, const DemoOptions& options) {
  DND_ASSIGN_OR_RETURN(protocol::JobSpec spec, DemoJobSpec(options.steps, options.seed));
  const auto start = Clock::now();
  DemoResult result;
  DND_ASSIGN_OR_RETURN(result.job_id, client.Submit(protocol::SubmitJob{"dnd-demo", spec}));
  Say(options, "submitted " + result.job_id +
                   ": footwear:sneaker + rest:bag, Divide-and-Denoise, attention utility");
  WaitOptions wait;
  wait.progress = options.progress;
  wait.interactive = options.interactive;
  DND_RETURN_IF_ERROR(WaitForJob(client, result.job_id, wait).status());
  result.job_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  DND_ASSIGN_OR_RETURN(result.files,
                       FetchResultsInto(client, result.job_id, options.out_dir, /*force=*/true));
  return result;
}

StatusOr<DemoResult> RunEmbedded(const DemoOptions& options) {
  DND_ASSIGN_OR_RETURN(TempDir data, TempDir::Create("dnd-demo-"));
  DND_ASSIGN_OR_RETURN(auto context, protocol::TransportContext::Create());

  // Load the experts first: a missing data set should fail before anything starts.
  experts::SetTorchThreads(DemoComputeThreads());
  std::vector<std::unique_ptr<experts::Expert>> models;
  for (size_t i = 0; i < DemoExperts().size(); ++i) {
    auto model = models::CreateAnyExpert(DemoExpertConfig(options.models, i));
    if (!model.ok()) {
      return model.status().WithContext(std::string("loading expert ") + DemoExperts()[i].name);
    }
    models.push_back(std::move(model).value());
  }

  coordinator::CoordinatorOptions coordinator_options;
  coordinator_options.worker_endpoint = "tcp://127.0.0.1:*";
  coordinator_options.client_endpoint = "tcp://127.0.0.1:*";
  coordinator_options.worker_security = protocol::SecurityOptions::Plain();
  coordinator_options.client_security = protocol::SecurityOptions::Plain();
  coordinator_options.data_dir = data.path() / "data";
  coordinator_options.worker_liveness_ms = kDemoLivenessMs;
  if (options.models.neural) {
    DND_ASSIGN_OR_RETURN(coordinator_options.decoders,
                         coordinator::LoadAutoencoderDecoders({options.models.autoencoder}));
  }
  DND_ASSIGN_OR_RETURN(auto server,
                       coordinator::CoordinatorServer::Create(coordinator_options, *context));

  // Threads are joined by this guard on every path out of this function.
  Status server_status;
  std::vector<std::unique_ptr<worker::WorkerServer>> workers;
  std::vector<std::thread> threads;
  struct Stopper {
    coordinator::CoordinatorServer& server;
    std::vector<std::unique_ptr<worker::WorkerServer>>& workers;
    std::vector<std::thread>& threads;
    ~Stopper() {
      for (auto& w : workers) w->RequestStop();
      for (size_t i = 1; i < threads.size(); ++i) threads[i].join();
      server.RequestStop();
      if (!threads.empty()) threads[0].join();
    }
  } stopper{*server, workers, threads};

  threads.emplace_back([&] { server_status = server->Run(); });
  DND_ASSIGN_OR_RETURN(coordinator::BoundEndpoints bound,
                       server->WaitUntilBound(std::chrono::seconds(10)));
  Say(options, "coordinator on " + bound.client + " (clients), " + bound.worker + " (workers)");
  for (size_t i = 0; i < models.size(); ++i) {
    worker::WorkerOptions worker_options;
    worker_options.coordinator_endpoint = bound.worker;
    worker_options.security = protocol::SecurityOptions::Plain();
    worker_options.organisation = DemoExperts()[i].name;
    DND_ASSIGN_OR_RETURN(
        auto w, worker::WorkerServer::Create(worker_options, std::move(models[i]), *context));
    workers.push_back(std::move(w));
  }
  for (auto& w : workers) {
    worker::WorkerServer* raw = w.get();
    threads.emplace_back([raw] { (void)raw->Run(); });
  }

  ClientOptions client_options;
  client_options.endpoint = bound.client;
  client_options.security = protocol::SecurityOptions::Plain();
  DND_ASSIGN_OR_RETURN(auto client, CoordinatorClient::Connect(*context, client_options));
  DND_RETURN_IF_ERROR(WaitForExperts(*client, nullptr));
  Say(options,
      "experts footwear (sandal, sneaker, ankle_boot) and rest (trouser, dress, bag) "
      "registered");
  return SubmitAndFetch(*client, options);
}

// Writes DIR/NAME.key with `public_key` (the allow-list holds public keys only).
Status WritePublicKey(const std::filesystem::path& dir, const std::string& name,
                      const std::string& public_key) {
  std::ofstream out(protocol::PublicKeyPath(dir, name));
  out << "# CurveZMQ public key of " << name << " (dnd demo)\n" << public_key << "\n";
  out.close();
  if (!out) return InternalError("cannot write " + protocol::PublicKeyPath(dir, name).string());
  return OkStatus();
}

StatusOr<DemoResult> RunDistributed(const DemoOptions& options) {
  std::filesystem::path bin = options.binary_dir;
  if (bin.empty()) {
    std::error_code ec;
    bin = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
    if (ec) return InternalError("cannot read /proc/self/exe: " + ec.message());
  }
  const std::filesystem::path coordinator_bin = bin / "dnd-coordinator";
  const std::filesystem::path worker_bin = bin / "dnd-worker";
  for (const auto& b : {coordinator_bin, worker_bin}) {
    if (access(b.c_str(), X_OK) != 0) {
      return NotFoundError(b.string() +
                           " is missing; --distributed needs dnd-coordinator and dnd-worker "
                           "built next to dnd (cmake --build BUILD --target dnd-coordinator "
                           "dnd-worker)");
    }
  }
  DND_ASSIGN_OR_RETURN(TempDir run, TempDir::Create("dnd-demo-distributed-"));
  const std::filesystem::path keys = run.path() / "keys";
  const std::filesystem::path allow = run.path() / "allow";
  const std::filesystem::path logs = run.path() / "logs";
  for (const auto& d : {keys, allow, logs}) std::filesystem::create_directories(d);

  // Keys for the run: the coordinator's pair, and a pair per worker and for the client, whose
  // public halves form the coordinator's allow-list.
  std::vector<std::string> clients = {"client"};
  for (const DemoExpert& e : DemoExperts()) clients.push_back(e.name);
  for (const std::string& name : std::vector<std::string>{"coordinator"}) {
    DND_ASSIGN_OR_RETURN(auto pair, protocol::GenerateCurveKeyPair());
    DND_RETURN_IF_ERROR(protocol::WriteKeyPair(keys, name, pair));
  }
  for (const std::string& name : clients) {
    DND_ASSIGN_OR_RETURN(auto pair, protocol::GenerateCurveKeyPair());
    DND_RETURN_IF_ERROR(protocol::WriteKeyPair(keys, name, pair));
    DND_RETURN_IF_ERROR(WritePublicKey(allow, name, pair.public_key));
  }
  const std::string server_key = protocol::PublicKeyPath(keys, "coordinator").string();

  DND_ASSIGN_OR_RETURN(int worker_port, FreeLoopbackPort());
  DND_ASSIGN_OR_RETURN(int client_port, FreeLoopbackPort());
  const std::string worker_ep = "tcp://127.0.0.1:" + std::to_string(worker_port);
  const std::string client_ep = "tcp://127.0.0.1:" + std::to_string(client_port);

  // Declared before the client, so they are stopped after it is closed; each ChildProcess stops
  // its process on destruction (every error path included).
  std::vector<std::unique_ptr<ChildProcess>> children;
  // Every process computes with the embedded run's thread count (DemoComputeThreads).
  const std::string threads = std::to_string(DemoComputeThreads());
  // clang-format off
  std::vector<std::string> coordinator_args = {
      coordinator_bin.string(), "--worker-endpoint", worker_ep, "--client-endpoint", client_ep,
      "--key-dir", keys.string(), "--key-name", "coordinator", "--allow-dir", allow.string(),
      "--data-dir", (run.path() / "data").string(), "--max-jobs", "2", "--threads", threads,
      "--liveness-ms", std::to_string(kDemoLivenessMs)};
  // clang-format on
  if (options.models.neural) {
    coordinator_args.insert(coordinator_args.end(),
                            {"--autoencoder", options.models.autoencoder.string()});
  } else {
    coordinator_args.push_back("--no-decoder");
  }
  DND_ASSIGN_OR_RETURN(auto coordinator,
                       ChildProcess::Start(coordinator_args, logs / "coordinator.log"));
  children.push_back(std::move(coordinator));
  for (size_t i = 0; i < DemoExperts().size(); ++i) {
    const DemoExpert& e = DemoExperts()[i];
    const experts::ExpertConfig config = DemoExpertConfig(options.models, i);
    // clang-format off
    const std::vector<std::string> worker_args = {
        worker_bin.string(), "--coordinator", worker_ep, "--name", e.name, "--organisation", e.name,
        "--backend", config.backend, "--model", config.model_path, "--concepts",
        JoinComma(e.concepts), "--key-dir", keys.string(), "--key-name", e.name, "--server-key",
        server_key, "--threads", threads};
    // clang-format on
    DND_ASSIGN_OR_RETURN(auto w,
                         ChildProcess::Start(worker_args, logs / (std::string(e.name) + ".log")));
    children.push_back(std::move(w));
  }
  Say(options, "started dnd-coordinator (" + client_ep +
                   ") and two dnd-worker processes, CURVE "
                   "keys in " +
                   keys.string());
  const auto check_children = [&children]() -> Status {
    for (auto& c : children) {
      if (auto code = c->Poll()) {
        return InternalError(c->name() + " (" + c->log_path().filename().string() +
                             ") exited with code " + std::to_string(*code) + "; its log:\n" +
                             c->LogTail());
      }
    }
    return OkStatus();
  };

  DND_ASSIGN_OR_RETURN(auto context, protocol::TransportContext::Create());
  DND_ASSIGN_OR_RETURN(auto client_keys, protocol::ReadKeyPair(keys, "client"));
  DND_ASSIGN_OR_RETURN(auto coordinator_key, protocol::ReadKeyFile(server_key));
  ClientOptions client_options;
  client_options.endpoint = client_ep;
  client_options.security = protocol::SecurityOptions::CurveClient(client_keys, coordinator_key);
  // The coordinator may still be starting (it loads LibTorch and the autoencoder first): retry
  // "cannot reach" until registration's deadline, each time on a fresh connection, so that the
  // late reply to a timed-out request cannot be taken for the answer to the next one.
  std::unique_ptr<CoordinatorClient> client;
  const auto deadline = Clock::now() + kRegistrationTimeout;
  for (;;) {
    DND_ASSIGN_OR_RETURN(client, CoordinatorClient::Connect(*context, client_options));
    Status s = WaitForExperts(*client, check_children);
    if (s.ok()) break;
    if (s.code() != StatusCode::kUnavailable || Clock::now() >= deadline) {
      DND_RETURN_IF_ERROR(check_children());
      return s;
    }
  }
  Say(options, "experts registered over CURVE");
  auto result = SubmitAndFetch(*client, options);
  if (!result.ok()) {
    DND_RETURN_IF_ERROR(check_children());
    return result.status();
  }
  client.reset();
  for (auto& c : children) c->Stop();
  return result;
}

}  // namespace

DemoModels FindDemoModels() {
  DemoModels models;
  auto autoencoder = worker::FindShippedModel(worker::kAutoencoderFile);
  std::vector<std::string> missing;
  if (!autoencoder) missing.push_back(worker::kAutoencoderFile);
  for (const DemoExpert& e : DemoExperts()) {
    const std::string file = std::string(e.name) + ".pt";
    if (auto path = worker::FindShippedModel(file)) {
      models.experts.push_back(*path);
    } else {
      missing.push_back(file);
    }
  }
  if (missing.empty()) {
    models.neural = true;
    models.autoencoder = *autoencoder;
    models.description = "the trained experts (" + worker::ShippedModelsDir().string() + ")";
  } else {
    models.experts.clear();
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    models.description = "the exact Fashion-MNIST experts (no " + list + " in " +
                         worker::ShippedModelsDir().string() + ")";
  }
  return models;
}

experts::ExpertConfig DemoExpertConfig(const DemoModels& models, size_t index) {
  const DemoExpert& e = DemoExperts().at(index);
  experts::ExpertConfig config;
  config.name = e.name;
  config.concepts = e.concepts;
  if (models.neural) {
    config.backend = "neural";
    config.model_path = models.experts.at(index).string();
  } else {
    config.backend = "exact";
    config.model_path = std::string(experts::kDefaultFashionMnistDir);
  }
  return config;
}

StatusOr<protocol::JobSpec> DemoJobSpec(std::optional<int64_t> steps, uint64_t seed) {
  JobSpecFlags flags;
  flags.experts = {"footwear:sneaker", "rest:bag"};
  flags.strategy = "dnd";
  flags.utility = "attention";
  flags.steps = steps;
  flags.seed = seed;
  return BuildJobSpec(flags);
}

StatusOr<DemoResult> RunDemo(const DemoOptions& options) {
  return options.distributed ? RunDistributed(options) : RunEmbedded(options);
}

void RegisterDemoCommand(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  auto steps = std::make_shared<std::optional<int64_t>>();
  auto verbose = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "demo",
      "Run a coordinator and two expert workers (the shipped trained experts when present, else "
      "the exact ones), compose footwear:sneaker + rest:bag, and write the image, the allocation "
      "overlay, the final latent and the JSON record into --out");
  cmd->add_option("--out", options->out_dir, "output directory (files in it are replaced)")
      ->capture_default_str();
  cmd->add_flag("--distributed", options->distributed,
                "run dnd-coordinator and two dnd-worker processes over loopback TCP with CURVE "
                "keys made for the run, instead of threads of this process");
  cmd->add_option("--steps", *steps, "denoising steps (default 50)");
  cmd->add_option("--seed", options->seed, "seed of the initial noise")->capture_default_str();
  cmd->add_flag("--verbose", *verbose, "show the coordinator's and workers' logs (stderr)");
  cmd->callback([options, steps, verbose] {
    // The embedded services log through spdlog's default logger: keep stdout for the result
    // paths, and show only warnings unless asked.
    spdlog::set_default_logger(spdlog::stderr_color_mt("dnd-demo"));
    spdlog::set_level(*verbose ? spdlog::level::info : spdlog::level::warn);
    DemoOptions run = *options;
    run.steps = *steps;
    run.progress = &std::cerr;
    run.interactive = StderrIsTerminal();
    if (run.steps && (*run.steps <= 0 || *run.steps > 1000)) {
      ExitWith("demo", kExitUsage, "--steps must be in 1..1000");
    }
    run.models = FindDemoModels();
    Say(run,
        "starting a coordinator and two experts (" +
            std::string(run.distributed ? "separate processes, CURVE" : "embedded, one process") +
            "): " + run.models.description);
    auto result = RunDemo(run);
    if (!result.ok()) ExitWithStatus("demo", result.status());
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.2f", result->job_seconds);
    Say(run, "job " + result->job_id + " succeeded in " + seconds + " s; results:");
    for (const auto& path : result->files) std::cout << path.string() << "\n";
  });
}

}  // namespace dnd::tools
