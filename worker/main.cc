// dnd-worker: serves one organisation's private expert to a coordinator. Flags -> config -> wire
// the components -> run. See docs/worker.md for a deployment walk-through.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "protocol/curve_keys.h"
#include "protocol/startup.h"
#include "protocol/transport.h"
#include "worker/experts/expert.h"
#include "worker/experts/torch_runtime.h"
#include "worker/service/worker_server.h"

namespace {

// Exit codes (docs/worker.md): 0 stopped cleanly, 2 bad usage or configuration, 3 model failed to
// load, 4 refused by the coordinator or the socket failed.
constexpr int kExitUsage = 2;
constexpr int kExitModel = 3;
constexpr int kExitServe = 4;

int Fail(int code, const dnd::Status& status) {
  spdlog::error("{}", status.ToString());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dnd-worker: serves one private diffusion expert to a dnd coordinator"};
  std::string endpoint;
  std::string organisation;
  dnd::experts::ExpertConfig expert;
  expert.backend = "exact";
  expert.model_path = std::string(dnd::experts::kDefaultFashionMnistDir);
  dnd::worker::WorkerOptions options;
  bool plain = false;
  std::string key_dir, key_name, server_key_file;
  int threads = 0;
  app.add_option("--coordinator", endpoint, "coordinator's worker endpoint, e.g. tcp://host:5555")
      ->required();
  app.add_option("--name", expert.name, "this expert's name, unique in the federation")->required();
  app.add_option("--organisation", organisation, "the owning organisation");
  app.add_option("--backend", expert.backend, "exact | torchscript")
      ->check(CLI::IsMember({"exact", "torchscript"}))
      ->capture_default_str();
  app.add_option("--model", expert.model_path,
                 "torchscript: the .pt file; exact: the Fashion-MNIST directory")
      ->capture_default_str();
  app.add_option("--concepts", expert.concepts,
                 "concepts to serve (exact: Fashion-MNIST class names; torchscript: subset)")
      ->delimiter(',');
  app.add_option("--items-per-class", expert.items_per_class, "exact: train items per class")
      ->capture_default_str();
  app.add_option("--max-batch", options.max_batch, "largest batch of concurrent requests")
      ->capture_default_str();
  app.add_option("--batch-wait-ms", options.batch_wait_ms, "how long a batch may wait to fill")
      ->capture_default_str();
  app.add_option("--threads", threads, "compute threads (0 = $DND_THREADS or all cores)");
  app.add_flag("--plain", plain, "no encryption or authentication (tests and demos only)");
  app.add_option("--key-dir", key_dir, "directory with this worker's CURVE key pair");
  app.add_option("--key-name", key_name,
                 "name of the key pair in --key-dir (NAME.key, NAME.key_secret)");
  app.add_option("--server-key", server_key_file, "the coordinator's public key file");
  CLI11_PARSE(app, argc, argv);

  const int resolved_threads = dnd::InitProcess(
      {.num_threads = threads, .set_compute_threads = dnd::experts::SetTorchThreads});

  options.coordinator_endpoint = endpoint;
  options.organisation = organisation;
  if (plain) {
    options.security = dnd::protocol::SecurityOptions::Plain();
  } else {
    if (key_dir.empty() || key_name.empty() || server_key_file.empty()) {
      std::fprintf(
          stderr,
          "dnd-worker: give --key-dir, --key-name and --server-key for CURVE, or --plain\n");
      return kExitUsage;
    }
    auto keys = dnd::protocol::ReadKeyPair(key_dir, key_name);
    if (!keys.ok()) return Fail(kExitUsage, keys.status());
    auto server_key = dnd::protocol::ReadKeyFile(server_key_file);
    if (!server_key.ok()) return Fail(kExitUsage, server_key.status());
    options.security = dnd::protocol::SecurityOptions::CurveClient(*keys, *server_key);
  }

  const auto load_start = std::chrono::steady_clock::now();
  auto model = dnd::experts::CreateExpert(expert);
  if (!model.ok()) return Fail(kExitModel, model.status().WithContext("loading the expert"));
  spdlog::info("worker: expert '{}' loaded in {} ms, {} compute threads", expert.name,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - load_start)
                   .count(),
               resolved_threads);

  auto context = dnd::protocol::TransportContext::Create();
  if (!context.ok()) return Fail(kExitServe, context.status());
  auto server = dnd::worker::WorkerServer::Create(options, std::move(model).value(), **context);
  if (!server.ok()) return Fail(kExitUsage, server.status());

  dnd::StopOnSignals([](void* s) { static_cast<dnd::worker::WorkerServer*>(s)->RequestStop(); },
                     server->get());
  dnd::Status status = (*server)->Run();
  dnd::ClearStopSignalTarget();
  if (!status.ok()) return Fail(kExitServe, status);
  return 0;
}
