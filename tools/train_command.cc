#include "tools/train_command.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "tools/exit_codes.h"
#include "tools/progress_bar.h"
#include "worker/models/autoencoder.h"
#include "worker/models/detector.h"
#include "worker/models/unet_expert.h"

namespace dnd::tools {
namespace {

// Flags shared by the three subcommands; a set flag overrides the config file.
struct TrainFlags {
  std::string config;
  std::string out;
  std::string checkpoint;
  bool resume = false;
  std::optional<uint64_t> seed;
  std::optional<int> steps;
  std::optional<int> checkpoint_every;
  int stop_after = 0;
  std::string device;
  std::string data_dir;
};

void AddTrainFlags(CLI::App& cmd, TrainFlags& f) {
  cmd.add_option("--config", f.config, "JSON config of the run (worker/models/configs/*.json)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--out", f.out, "model file to write (overrides the config's \"out\")");
  cmd.add_option("--checkpoint", f.checkpoint, "training state file (default: OUT.ckpt)");
  cmd.add_flag("--resume", f.resume, "continue from the checkpoint of an interrupted run");
  cmd.add_option("--seed", f.seed, "overrides the config's seed");
  cmd.add_option("--steps", f.steps, "overrides the config's steps")->check(CLI::PositiveNumber);
  cmd.add_option("--checkpoint-every", f.checkpoint_every, "steps between checkpoints")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--stop-after", f.stop_after,
                 "stop after this many steps, leaving a checkpoint for --resume (time-boxed runs)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--device", f.device, "auto | cpu | cuda (overrides the config)");
  cmd.add_option("--data-dir", f.data_dir, "Fashion-MNIST directory (overrides the config)");
}

StatusOr<nlohmann::json> ReadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read config " + path);
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return InvalidArgumentError("config " + path + " is not valid JSON: " + e.what());
  }
}

// Reads the keys this run knows and refuses any other (a typo must not silently train the
// default).
class ConfigReader {
 public:
  explicit ConfigReader(nlohmann::json json) : json_(std::move(json)) {}
  template <typename T>
  void Get(const char* key, T& value) {
    seen_.push_back(key);
    if (json_.contains(key)) value = json_.at(key).get<T>();
  }
  Status CheckNoUnknownKeys(const std::string& path) const {
    for (const auto& item : json_.items()) {
      if (std::find(seen_.begin(), seen_.end(), item.key()) == seen_.end()) {
        return InvalidArgumentError("config " + path + ": unknown key \"" + item.key() + "\"");
      }
    }
    return OkStatus();
  }

 private:
  nlohmann::json json_;
  std::vector<std::string> seen_;
};

void ReadTrainOptions(ConfigReader& r, models::TrainOptions& t) {
  std::string model;
  r.Get("model", model);  // checked by the caller
  r.Get("out", t.out);
  r.Get("seed", t.seed);
  r.Get("steps", t.steps);
  r.Get("batch_size", t.batch_size);
  r.Get("learning_rate", t.learning_rate);
  r.Get("warmup_steps", t.warmup_steps);
  r.Get("checkpoint_every", t.checkpoint_every);
  r.Get("device", t.device);
  r.Get("data_dir", t.data_dir);
}

void ApplyFlags(const TrainFlags& f, models::TrainOptions& t) {
  if (!f.out.empty()) t.out = f.out;
  if (!f.checkpoint.empty()) t.checkpoint = f.checkpoint;
  t.resume = f.resume;
  t.stop_after = f.stop_after;
  if (f.seed) t.seed = *f.seed;
  if (f.steps) t.steps = *f.steps;
  if (f.checkpoint_every) t.checkpoint_every = *f.checkpoint_every;
  if (!f.device.empty()) t.device = f.device;
  if (!f.data_dir.empty()) t.data_dir = f.data_dir;
}

// The progress line: the bar of `dnd watch` plus the loss. Redrawn in place on a terminal, one line
// per 5% otherwise.
models::ProgressFn MakeProgress(const std::string& what) {
  const bool interactive = isatty(STDERR_FILENO) != 0;
  auto last_twentieth = std::make_shared<int>(-1);
  return [=](const models::TrainProgress& p) {
    const double done_here = p.step - p.first_step;
    std::optional<double> eta;
    if (done_here > 0) eta = p.elapsed_seconds / done_here * (p.total_steps - p.step);
    char loss[48];
    std::snprintf(loss, sizeof(loss), "  loss %.5f", p.loss);
    const std::string line = what + " " +
                             FormatProgressLine(static_cast<uint32_t>(p.step),
                                                static_cast<uint32_t>(p.total_steps),
                                                p.elapsed_seconds, eta) +
                             loss;
    if (interactive) {
      std::cerr << "\r" << line << (p.step == p.total_steps ? "\n" : "") << std::flush;
      return;
    }
    const int twentieth = p.step * 20 / std::max(1, p.total_steps);
    if (twentieth != *last_twentieth) {
      *last_twentieth = twentieth;
      std::cerr << line << "\n" << std::flush;
    }
  };
}

int Report(const StatusOr<models::TrainReport>& report) {
  if (!report.ok()) {
    std::cerr << "dnd train: " << report.status().ToString() << "\n";
    switch (report.status().code()) {
      case StatusCode::kInvalidArgument:
      case StatusCode::kNotFound:
      case StatusCode::kFailedPrecondition:
        return kExitUsage;
      default:
        return kExitJobFailed;
    }
  }
  // The loop's wall time per step (data preparation before the loop and evaluation after it are
  // not in it): what sizes a time-boxed run.
  char per_step[48] = "";
  if (report->steps_run > 0) {
    std::snprintf(per_step, sizeof(per_step), ", %.1f ms/step",
                  1000.0 * report->seconds / report->steps_run);
  }
  if (!report->finished) {
    std::cout << "stopped after " << report->steps_run << " steps (--stop-after) in "
              << FormatDuration(report->seconds) << per_step << "; continue with --resume\n";
    return kExitOk;
  }
  // CPU time of the whole process (every thread, data preparation and evaluation included).
  const double cpu_seconds = static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
  std::cout << "wrote " << report->out << " (" << report->steps_run << " steps on "
            << report->device << " in " << FormatDuration(report->seconds) << " wall" << per_step
            << ", " << FormatDuration(cpu_seconds) << " CPU)\n";
  for (const auto& [name, value] : report->metrics) std::cout << "  " << name << " " << value << "\n";
  return kExitOk;
}

int RunAutoencoder(const TrainFlags& f) {
  auto json = ReadConfig(f.config);
  if (!json.ok()) return Report(json.status());
  models::AutoencoderTrainConfig c;
  try {
    ConfigReader r(*json);
    ReadTrainOptions(r, c.train);
    r.Get("crop_side", c.crop_side);
    r.Get("two_item_fraction", c.two_item_fraction);
    r.Get("normalisation_canvases", c.normalisation_canvases);
    r.Get("eval_canvases", c.eval_canvases);
    if (Status s = r.CheckNoUnknownKeys(f.config); !s.ok()) return Report(s);
  } catch (const std::exception& e) {
    return Report(InvalidArgumentError("config " + f.config + ": " + e.what()));
  }
  ApplyFlags(f, c.train);
  return Report(models::TrainAutoencoder(c, MakeProgress("autoencoder")));
}

int RunExpert(const TrainFlags& f) {
  auto json = ReadConfig(f.config);
  if (!json.ok()) return Report(json.status());
  models::ExpertTrainConfig c;
  try {
    ConfigReader r(*json);
    ReadTrainOptions(r, c.train);
    r.Get("name", c.name);
    r.Get("concepts", c.concepts);
    r.Get("autoencoder", c.autoencoder);
    r.Get("channels", c.channels);
    r.Get("heads", c.heads);
    r.Get("token_dim", c.token_dim);
    r.Get("cfg_dropout", c.cfg_dropout);
    r.Get("position_prior_std_px", c.position_prior_std_px);
    r.Get("pool_canvases", c.pool_canvases);
    r.Get("ema_decay", c.ema_decay);
    r.Get("attention_loss_weight", c.attention_loss_weight);
    if (Status s = r.CheckNoUnknownKeys(f.config); !s.ok()) return Report(s);
  } catch (const std::exception& e) {
    return Report(InvalidArgumentError("config " + f.config + ": " + e.what()));
  }
  ApplyFlags(f, c.train);
  return Report(models::TrainExpert(c, MakeProgress("expert " + c.name)));
}

int RunDetector(const TrainFlags& f) {
  auto json = ReadConfig(f.config);
  if (!json.ok()) return Report(json.status());
  models::DetectorTrainConfig c;
  try {
    ConfigReader r(*json);
    ReadTrainOptions(r, c.train);
    r.Get("max_blur_sigma_px", c.max_blur_sigma_px);
    r.Get("max_noise_std", c.max_noise_std);
    r.Get("empty_fraction", c.empty_fraction);
    r.Get("eval_canvases_per_count", c.eval_canvases_per_count);
    if (Status s = r.CheckNoUnknownKeys(f.config); !s.ok()) return Report(s);
  } catch (const std::exception& e) {
    return Report(InvalidArgumentError("config " + f.config + ": " + e.what()));
  }
  ApplyFlags(f, c.train);
  return Report(models::TrainDetector(c, MakeProgress("detector")));
}

}  // namespace

void RegisterTrainCommand(CLI::App& app) {
  CLI::App* train = app.add_subcommand(
      "train", "Train the shared autoencoder, an organisation's expert, or the presence detector");
  AddTrainSubcommands(*train);
}

void AddTrainSubcommands(CLI::App& train) {
  train.require_subcommand(1);
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* ae = train.add_subcommand("autoencoder", "the shared latent space 1x64x64 <-> 4x16x16");
  AddTrainFlags(*ae, *flags);
  CLI::App* expert = train.add_subcommand(
      "expert", "an organisation's private cross-attention UNet on the shared latent space");
  CLI::App* detector =
      train.add_subcommand("detector", "the presence detector that judges the benchmark");
  const std::pair<CLI::App*, int (*)(const TrainFlags&)> runs[] = {
      {ae, RunAutoencoder}, {expert, RunExpert}, {detector, RunDetector}};
  for (const auto& [cmd, run] : runs) {
    if (cmd != ae) AddTrainFlags(*cmd, *flags);
    cmd->final_callback([flags, run = run] {
      const int code = run(*flags);
      if (code != kExitOk) throw CLI::RuntimeError(code);
    });
  }
}

}  // namespace dnd::tools
