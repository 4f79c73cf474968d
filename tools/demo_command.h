// `dnd demo`: the whole system in one command. Embedded (default): a coordinator and two expert
// workers ("footwear": sandal, sneaker, ankle_boot; "rest": trouser, dress, bag) on threads of this
// process, over loopback TCP with the same sockets and code paths as a deployment. The experts are
// the shipped trained ones (backend neural, the coordinator decoding with the shipped autoencoder)
// when worker/models/weights holds them, else the exact Fashion-MNIST experts. --distributed:
// dnd-coordinator and two dnd-worker processes (found next to this binary) on loopback with CURVE
// keys made for the run. Either way the job footwear:sneaker + rest:bag (Divide-and-Denoise,
// attention utility) goes through the `dnd submit --wait` client path, and image.png,
// allocation.png, allocation_steps.png and record.json land in --out.
#ifndef DND_TOOLS_DEMO_COMMAND_H_
#define DND_TOOLS_DEMO_COMMAND_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "protocol/messages.h"
#include "protocol/status.h"
#include "worker/experts/expert.h"

namespace CLI {
class App;
}  // namespace CLI

namespace dnd::tools {

// Which experts the demo runs. Value type.
struct DemoModels {
  bool neural = false;                         // the trained experts, else the exact ones
  std::filesystem::path autoencoder;           // neural: the coordinator's decoder
  std::vector<std::filesystem::path> experts;  // neural: footwear.pt, rest.pt
  std::string description;                     // for the demo's first line
};

// The shipped trained experts and autoencoder (worker/service/shipped_models.h) when all of
// autoencoder.pt, footwear.pt and rest.pt are there; otherwise the exact experts, and the
// description says which files were missing.
DemoModels FindDemoModels();
// The config of demo expert `index` (0 footwear, 1 rest) under `models`.
experts::ExpertConfig DemoExpertConfig(const DemoModels& models, size_t index);

struct DemoOptions {
  std::filesystem::path out_dir = "out";
  bool distributed = false;
  std::optional<int64_t> steps;  // unset = the coordinator's default (50)
  uint64_t seed = 0;
  std::filesystem::path binary_dir;  // --distributed: where dnd-coordinator and dnd-worker are;
                                     // empty = the directory of /proc/self/exe
  std::ostream* progress = nullptr;  // progress bar and status lines; null = silent
  bool interactive = false;          // redraw the bar in place
  DemoModels models;                 // default: the exact experts
};

struct DemoResult {
  std::string job_id;
  std::vector<std::filesystem::path> files;  // image.png, allocation.png, ... in --out
  double job_seconds = 0;                    // submit -> final event (the job's wall time)
};

// The demo's job: footwear:sneaker + rest:bag, strategy dnd, attention utility, defaults otherwise.
StatusOr<protocol::JobSpec> DemoJobSpec(std::optional<int64_t> steps, uint64_t seed);

// Runs the demo and stops everything it started (threads joined, processes SIGTERMed, temporary
// directories removed) on success and on every error. Existing files in out_dir are replaced.
// Every expert and the decoder compute with max(1, cores / 2) LibTorch threads in both modes (the
// embedded run sets this process's count), so both write identical images.
// Errors: NotFound (Fashion-MNIST data, a model file, or dnd-coordinator / dnd-worker not built),
// DeadlineExceeded (experts not registered within 60 s), the job's own outcome (Aborted for a
// failed job), and the client's errors. Call from the main thread.
StatusOr<DemoResult> RunDemo(const DemoOptions& options);

// Adds `dnd demo [--out DIR] [--distributed] [--steps N] [--seed S]`.
void RegisterDemoCommand(CLI::App& app);

}  // namespace dnd::tools

#endif  // DND_TOOLS_DEMO_COMMAND_H_
