// dnd-worker: serves one organisation's private expert to a coordinator (backends exact,
// torchscript and neural, the trained UNets of worker/models). Flags -> config -> wire the
// components -> run. See docs/worker.md for a deployment walk-through.
#include <chrono>
#include <cstdio>
#include <filesystem>
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
#include "worker/models/autoencoder.h"
#include "worker/models/unet_expert.h"
#include "worker/service/shipped_models.h"
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

// --model's default for each backend: the exact expert reads Debian's Fashion-MNIST; a neural
// expert named NAME is the shipped NAME.pt ($DND_MODELS_DIR or the source tree's
// worker/models/weights); torchscript has none.
dnd::Status ResolveModelPath(dnd::experts::ExpertConfig& expert, bool model_given) {
  if (model_given) return dnd::OkStatus();
  if (expert.backend == "exact") {
    expert.model_path = std::string(dnd::experts::kDefaultFashionMnistDir);
  } else if (expert.backend == "neural") {
    const std::string file = expert.name + ".pt";
    auto shipped = dnd::worker::FindShippedModel(file);
    if (!shipped) {
      return dnd::NotFoundError("no shipped model " +
                                (dnd::worker::ShippedModelsDir() / file).string() +
                                " for expert '" + expert.name +
                                "' (shipped: footwear, tops, rest); give --model FILE or " +
                                "set " + dnd::worker::kModelsDirEnv);
    }
    expert.model_path = shipped->string();
  } else {
    return dnd::InvalidArgumentError("--backend " + expert.backend + " needs --model FILE");
  }
  return dnd::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dnd-worker: serves one private diffusion expert to a dnd coordinator"};
  std::string endpoint;
  std::string organisation;
  dnd::experts::ExpertConfig expert;
  expert.backend = "exact";
  dnd::worker::WorkerOptions options;
  bool plain = false;
  std::string key_dir, key_name, server_key_file;
  int threads = 0;
  app.add_option("--coordinator", endpoint, "coordinator's worker endpoint, e.g. tcp://host:5555")
      ->required();
  app.add_option("--name", expert.name, "this expert's name, unique in the federation")->required();
  app.add_option("--organisation", organisation, "the owning organisation");
  app.add_option("--backend", expert.backend, "exact | torchscript | neural")
      ->check(CLI::IsMember({"exact", "torchscript", "neural"}))
      ->capture_default_str();
  CLI::Option* model_flag = app.add_option(
      "--model", expert.model_path,
      "neural: the expert file (default: the shipped NAME.pt); torchscript: the .pt file; exact: "
      "the Fashion-MNIST directory (default " +
          std::string(dnd::experts::kDefaultFashionMnistDir) + ")");
  std::string latent_space;
  app.add_option("--latent-space", latent_space,
                 "refuse to start unless the expert's latent space is this one: an id, or the "
                 "federation's autoencoder file");
  app.add_option("--concepts", expert.concepts,
                 "concepts to serve (exact: Fashion-MNIST class names; torchscript, neural: a "
                 "subset of the model's; default all)")
      ->delimiter(',');
  app.add_option("--items-per-class", expert.items_per_class, "exact: train items per class")
      ->capture_default_str();
  app.add_option("--max-batch", options.max_batch, "largest batch of concurrent requests")
      ->capture_default_str();
  app.add_option("--batch-wait-ms", options.batch_wait_ms, "how long a batch may wait to fill")
      ->capture_default_str();
  app.add_option("--guidance-scale", options.guidance_scale,
                 "this expert's classifier-free guidance scale, used by jobs that set none "
                 "(0 = the coordinator's default)")
      ->check(CLI::Range(0.0, 100.0))
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

  if (dnd::Status s = ResolveModelPath(expert, model_flag->count() > 0); !s.ok()) {
    return Fail(s.code() == dnd::StatusCode::kNotFound ? kExitModel : kExitUsage, s);
  }
  const auto load_start = std::chrono::steady_clock::now();
  auto model = dnd::models::CreateAnyExpert(expert);
  if (!model.ok()) {
    return Fail(kExitModel, model.status().WithContext("loading the " + expert.backend +
                                                       " expert from " + expert.model_path));
  }
  const dnd::experts::LatentSpace& latent = (*model)->Describe().latent;
  if (std::error_code ec;
      !latent_space.empty() && std::filesystem::is_regular_file(latent_space, ec)) {
    auto autoencoder = dnd::models::Autoencoder::Load(latent_space);
    if (!autoencoder.ok()) {
      return Fail(kExitUsage, autoencoder.status().WithContext("--latent-space"));
    }
    latent_space = (*autoencoder)->latent_space_id();
  }
  if (!latent_space.empty() && latent.id != latent_space) {
    return Fail(kExitModel,
                dnd::FailedPreconditionError(
                    "expert '" + expert.name + "' (" + expert.model_path +
                    ") works in latent space '" + latent.id + "', not the federation's '" +
                    latent_space + "' (--latent-space): it was trained with another autoencoder"));
  }
  spdlog::info(
      "worker: expert '{}' ({} backend, latent space '{}' {}) loaded in {} ms, {} compute "
      "threads",
      expert.name, expert.backend, latent.id, latent.ShapeString(),
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            load_start)
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
