// dnd-coordinator: binds the worker and client endpoints and runs composition jobs.
// Flags -> config -> wire the components -> run. See docs/coordinator.md.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "coordinator/service/coordinator_server.h"
#include "protocol/curve_keys.h"
#include "protocol/startup.h"
#include "protocol/transport.h"
#include "worker/experts/torch_runtime.h"
#include "worker/service/shipped_models.h"

namespace {

// Exit codes: 0 stopped cleanly, 2 bad usage or configuration, 4 cannot bind or serve.
constexpr int kExitUsage = 2;
constexpr int kExitServe = 4;

int Fail(int code, const dnd::Status& status) {
  spdlog::error("{}", status.ToString());
  return code;
}

// The autoencoder files to load: the --autoencoder flags; without any, the shipped
// autoencoder.pt when present ($DND_MODELS_DIR, else the source tree), and none with --no-decoder.
std::vector<std::filesystem::path> AutoencoderFiles(const std::vector<std::string>& flags,
                                                    bool no_decoder) {
  if (no_decoder) return {};
  if (!flags.empty()) return {flags.begin(), flags.end()};
  if (auto shipped = dnd::worker::FindShippedModel(dnd::worker::kAutoencoderFile)) {
    return {*shipped};
  }
  spdlog::info("coordinator: no {} in {}: latent-space results get a channel-mean preview",
               dnd::worker::kAutoencoderFile, dnd::worker::ShippedModelsDir().string());
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dnd-coordinator: composes private diffusion experts with Divide-and-Denoise"};
  dnd::coordinator::CoordinatorOptions options;
  std::string data_dir = options.data_dir.string();
  bool plain = false;
  std::string key_dir, key_name, allow_dir;
  std::vector<std::string> autoencoders;
  bool no_decoder = false;
  int threads = 0;
  app.add_option("--worker-endpoint", options.worker_endpoint, "where workers connect")
      ->capture_default_str();
  app.add_option("--client-endpoint", options.client_endpoint, "where the dnd CLI connects")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir, "jobs and results")->capture_default_str();
  app.add_option("--max-jobs", options.max_concurrent_jobs, "jobs running at once")
      ->capture_default_str();
  app.add_option("--keep-finished-jobs", options.keep_finished_jobs,
                 "finished jobs kept in memory for status; older ones are dropped (their results "
                 "stay on disk for dnd fetch)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--step-deadline-ms", options.step_deadline_ms,
                 "how long a job waits for the experts' replies to one step")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", options.heartbeat_interval_ms, "worker heartbeat interval")
      ->capture_default_str();
  app.add_option("--liveness-ms", options.worker_liveness_ms,
                 "a worker silent this long is offline")
      ->capture_default_str();
  app.add_flag("--plain", plain, "no encryption or authentication (tests and demos only)");
  app.add_option("--key-dir", key_dir, "directory with the coordinator's CURVE key pair");
  app.add_option("--key-name", key_name, "key pair name in --key-dir (NAME.key, NAME.key_secret)");
  app.add_option("--allow-dir", allow_dir,
                 "directory of allow-listed public keys (*.key) of workers and clients");
  app.add_option("--autoencoder", autoencoders,
                 "autoencoder file(s) that decode image.png, one per latent space (default: the "
                 "shipped autoencoder.pt in $DND_MODELS_DIR or the source tree, when present)");
  app.add_flag("--no-decoder", no_decoder,
               "load no autoencoder: latent-space results get a channel-mean preview")
      ->excludes("--autoencoder");
  app.add_option("--threads", threads,
                 "LibTorch threads of the decoder (0 = $DND_THREADS or all cores)");
  app.add_option("--utility-smoothing", options.defaults.utility_smoothing,
                 "Gaussian blur (standard deviation in latent positions) of every utility map "
                 "before the allocation; 0 = none")
      ->check(CLI::Range(0.0, 64.0))
      ->capture_default_str();
  app.add_option("--view-gain", options.defaults.view_gain,
                 "region-centred views: each dnd expert sees the latent moved by this times the "
                 "offset of its region from the frame's centre; 0 = the frame as it is")
      ->check(CLI::Range(0.0, 8.0))
      ->capture_default_str();
  app.add_option("--view-max-shift", options.defaults.view_max_shift,
                 "largest view shift, in latent positions each way")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--view-min-separation", options.defaults.view_min_separation,
                 "least distance, in latent positions, between two dnd experts' view centres "
                 "(they are pushed apart); 0 = not separated")
      ->check(CLI::Range(0.0, 1024.0))
      ->capture_default_str();
  app.add_option("--view-reference-size", options.defaults.view_reference_size,
                 "the views' largest shift and least separation are given for a latent this many "
                 "positions on its shorter side and scaled to each job's; 0 = not scaled")
      ->check(CLI::Range(0, 65536))
      ->capture_default_str();
  app.add_option("--guidance-outside", options.defaults.guidance_outside,
                 "default weight of each expert's guidance gradient outside its own region, for "
                 "jobs that do not set it (0: only its region, 1: everywhere)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  dnd::InitProcess({.num_threads = threads, .set_compute_threads = dnd::experts::SetTorchThreads});
  options.data_dir = data_dir;

  auto decoders =
      dnd::coordinator::LoadAutoencoderDecoders(AutoencoderFiles(autoencoders, no_decoder));
  if (!decoders.ok()) return Fail(kExitUsage, decoders.status());
  options.decoders = std::move(decoders).value();
  for (const auto& decoder : options.decoders) {
    spdlog::info("coordinator: decodes latent space '{}' with its autoencoder",
                 decoder->latent_space_id());
  }

  if (plain) {
    options.worker_security = dnd::protocol::SecurityOptions::Plain();
    options.client_security = dnd::protocol::SecurityOptions::Plain();
  } else {
    if (key_dir.empty() || key_name.empty() || allow_dir.empty()) {
      std::fprintf(stderr,
                   "dnd-coordinator: give --key-dir, --key-name and --allow-dir for CURVE, or "
                   "--plain\n");
      return kExitUsage;
    }
    auto keys = dnd::protocol::ReadKeyPair(key_dir, key_name);
    if (!keys.ok()) return Fail(kExitUsage, keys.status());
    auto allowed = dnd::protocol::ReadAllowList(allow_dir);
    if (!allowed.ok()) return Fail(kExitUsage, allowed.status());
    if (allowed->empty()) {
      return Fail(kExitUsage, dnd::InvalidArgumentError("no *.key files in " + allow_dir +
                                                        ": nobody could connect"));
    }
    options.worker_security = dnd::protocol::SecurityOptions::CurveServer(*keys, *allowed);
    options.client_security = dnd::protocol::SecurityOptions::CurveServer(*keys, *allowed);
  }

  auto context = dnd::protocol::TransportContext::Create();
  if (!context.ok()) return Fail(kExitServe, context.status());
  auto server = dnd::coordinator::CoordinatorServer::Create(options, **context);
  if (!server.ok()) return Fail(kExitUsage, server.status());
  dnd::StopOnSignals(
      [](void* s) { static_cast<dnd::coordinator::CoordinatorServer*>(s)->RequestStop(); },
      server->get());
  dnd::Status status = (*server)->Run();
  dnd::ClearStopSignalTarget();
  if (!status.ok()) return Fail(kExitServe, status);
  return 0;
}
