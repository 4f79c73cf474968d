#include "worker/models/torch_support.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace dnd::models {
namespace {

constexpr char kMetaKey[] = "dnd_metadata";
constexpr char kFormatKey[] = "dnd_format";
constexpr char kModelFormat[] = "dnd-model-1";
constexpr char kCheckpointFormat[] = "dnd-checkpoint-1";

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Writes to a temporary file and renames it, so a crash never leaves half a file behind.
Status SaveArchive(torch::serialize::OutputArchive& archive, const std::string& path) {
  const std::string tmp = path + ".tmp";
  try {
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    archive.save_to(tmp);
    std::filesystem::rename(tmp, path);
  } catch (const std::exception& e) {
    return InternalError("cannot write " + path + ": " + e.what());
  }
  return OkStatus();
}

StatusOr<std::string> ReadString(torch::serialize::InputArchive& archive, const char* key,
                                 const std::string& path) {
  c10::IValue value;
  if (!archive.try_read(key, value) || !value.isString()) {
    return DataLossError(path + " has no '" + key + "' entry: not a dnd model or checkpoint");
  }
  return value.toStringRef();
}

// A run may be resumed with the same config, or with only "steps" raised (to train a finished
// run longer: the cosine schedule then stretches over the new total).
bool SameConfigButSteps(const std::string& saved, const std::string& now) {
  if (saved == now) return true;
  try {
    nlohmann::json a = nlohmann::json::parse(saved), b = nlohmann::json::parse(now);
    a.erase("steps");
    b.erase("steps");
    return a == b;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

StatusOr<std::string> ResolveDevice(const std::string& requested) {
  const bool cuda = torch::cuda::is_available();
  if (requested == "auto") return std::string(cuda ? "cuda" : "cpu");
  if (requested == "cpu") return std::string("cpu");
  if (requested == "cuda") {
    if (!cuda) {
      return FailedPreconditionError(
          "device cuda asked for, but this LibTorch has no CUDA device (Debian's libtorch is "
          "CPU-only; build against a CUDA LibTorch on a machine with a GPU)");
    }
    return std::string("cuda");
  }
  return InvalidArgumentError("device must be auto, cpu or cuda, not '" + requested + "'");
}

double LearningRate(const TrainOptions& options, int step) {
  const double peak = options.learning_rate;
  if (step < options.warmup_steps) return peak * (step + 1) / options.warmup_steps;
  const double span = std::max(1, options.steps - options.warmup_steps);
  const double progress = std::min(1.0, (step - options.warmup_steps) / span);
  return peak * (0.1 + 0.9 * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

uint64_t StepSeed(uint64_t seed, int step, uint64_t stream) {
  return SplitMix64(SplitMix64(SplitMix64(seed) ^ static_cast<uint64_t>(step)) ^ stream);
}

Status SaveModelFile(torch::nn::Module& module, const std::string& metadata_json,
                     const std::string& path) {
  torch::serialize::OutputArchive archive;
  // LoadModelFile maps every tensor to the CPU, so a model trained on a GPU loads anywhere.
  try {
    module.save(archive);
  } catch (const std::exception& e) {
    return InternalError(std::string("cannot serialise the model: ") + e.what());
  }
  archive.write(kFormatKey, c10::IValue(std::string(kModelFormat)));
  archive.write(kMetaKey, c10::IValue(metadata_json));
  return SaveArchive(archive, path);
}

namespace {

// Module::load reads what the module has and ignores the rest of the archive, so a file of a newer
// architecture (an extra layer or embedding) would load into an older binary without complaint and
// run without those weights. Every entry of the archive must be a parameter, buffer or child of
// the module; `where` names the entry for the message.
Status CheckNoForeignEntries(torch::serialize::InputArchive& archive,
                             const torch::nn::Module& module, const std::string& where) {
  std::set<std::string> known;
  for (const auto& p : module.named_parameters(/*recurse=*/false)) known.insert(p.key());
  for (const auto& b : module.named_buffers(/*recurse=*/false)) known.insert(b.key());
  std::map<std::string, std::shared_ptr<torch::nn::Module>> children;
  for (const auto& c : module.named_children()) children[c.key()] = c.value();
  for (const std::string& key : archive.keys()) {
    if (where.empty() && (key == kMetaKey || key == kFormatKey)) continue;
    if (known.count(key) != 0) continue;
    auto child = children.find(key);
    if (child == children.end()) {
      return DataLossError("the file holds '" + where + key +
                           "', which this build's model does not have: it was written by another "
                           "version of the architecture (rebuild, or use a file of this version)");
    }
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, sub)) {
      DND_RETURN_IF_ERROR(CheckNoForeignEntries(sub, *child->second, where + key + "."));
    }
  }
  return OkStatus();
}

}  // namespace

StatusOr<std::string> LoadModelFile(torch::nn::Module& module, const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) return NotFoundError("no model file " + path);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, torch::kCPU);
    DND_ASSIGN_OR_RETURN(std::string format, ReadString(archive, kFormatKey, path));
    if (format != kModelFormat) {
      return DataLossError(path + " is a '" + format + "', not a model file (" + kModelFormat +
                           ")");
    }
    module.load(archive);
    if (Status foreign = CheckNoForeignEntries(archive, module, ""); !foreign.ok()) {
      return DataLossError("cannot load " + path + ": " + std::string(foreign.message()));
    }
    return ReadString(archive, kMetaKey, path);
  } catch (const c10::Error& e) {
    return DataLossError("cannot load " + path + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return DataLossError("cannot load " + path + ": " + e.what());
  }
}

StatusOr<std::string> ReadModelMetadata(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) return NotFoundError("no model file " + path);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, torch::kCPU);
    DND_ASSIGN_OR_RETURN(std::string format, ReadString(archive, kFormatKey, path));
    if (format != kModelFormat) return DataLossError(path + " is not a model file");
    return ReadString(archive, kMetaKey, path);
  } catch (const c10::Error& e) {
    return DataLossError("cannot load " + path + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return DataLossError("cannot load " + path + ": " + e.what());
  }
}

std::string WeightsHash(torch::nn::Module& module) {
  uint64_t h = 1469598103934665603ULL;
  std::vector<torch::Tensor> tensors = module.parameters();
  for (const torch::Tensor& b : module.buffers()) tensors.push_back(b);
  for (const torch::Tensor& p : tensors) {
    const torch::Tensor t = p.detach().to(torch::kCPU, torch::kFloat).contiguous();
    const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
    for (int64_t i = 0; i < t.numel() * 4; ++i) {
      h ^= bytes[i];
      h *= 1099511628211ULL;
    }
  }
  char out[9];
  std::snprintf(out, sizeof(out), "%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return out;
}

void UpdateEma(torch::nn::Module& ema, torch::nn::Module& model, double decay) {
  torch::NoGradGuard no_grad;
  auto ema_params = ema.parameters();
  auto params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    ema_params[i].mul_(decay).add_(params[i].detach(), 1.0 - decay);
  }
  auto ema_buffers = ema.buffers();
  auto buffers = model.buffers();
  for (size_t i = 0; i < buffers.size(); ++i) ema_buffers[i].copy_(buffers[i]);
}

TrainReport StoppedReport(const TrainOptions& options, const std::string& device,
                          const LoopResult& loop) {
  return TrainReport{.out = options.out,
                     .device = device,
                     .seconds = loop.seconds,
                     .steps_run = loop.steps_run,
                     .finished = false,
                     .metrics = {}};
}

std::string CheckpointPath(const TrainOptions& options) {
  return options.checkpoint.empty() ? options.out + ".ckpt" : options.checkpoint;
}

StatusOr<LoopResult> RunTrainingLoop(torch::nn::Module& model, torch::nn::Module* ema,
                                     double ema_decay, torch::optim::Optimizer& optimizer,
                                     const TrainOptions& options, const std::string& config_json,
                                     const std::function<double(int)>& step_fn,
                                     const ProgressFn& progress) {
  const std::string checkpoint = CheckpointPath(options);
  int start = 0;
  if (options.resume) {
    if (!std::filesystem::is_regular_file(checkpoint)) {
      return NotFoundError("--resume: no checkpoint " + checkpoint);
    }
    try {
      torch::serialize::InputArchive archive;
      archive.load_from(checkpoint);
      DND_ASSIGN_OR_RETURN(std::string format, ReadString(archive, kFormatKey, checkpoint));
      DND_ASSIGN_OR_RETURN(std::string saved_config, ReadString(archive, kMetaKey, checkpoint));
      if (format != kCheckpointFormat) return DataLossError(checkpoint + " is not a checkpoint");
      if (!SameConfigButSteps(saved_config, config_json)) {
        return FailedPreconditionError(
            "--resume: " + checkpoint +
            " was written by a run with another config; resume with the same config, or start "
            "afresh without --resume.\n  checkpoint: " +
            saved_config + "\n  this run:   " + config_json);
      }
      torch::serialize::InputArchive model_archive, ema_archive, optimizer_archive;
      archive.read("model", model_archive);
      model.load(model_archive);
      if (ema != nullptr) {
        archive.read("ema", ema_archive);
        ema->load(ema_archive);
      }
      archive.read("optimizer", optimizer_archive);
      optimizer.load(optimizer_archive);
      c10::IValue step;
      archive.read("step", step);
      start = static_cast<int>(step.toInt());
      if (start > options.steps) {
        return FailedPreconditionError("--resume: " + checkpoint + " is at step " +
                                       std::to_string(start) + ", beyond --steps " +
                                       std::to_string(options.steps));
      }
    } catch (const c10::Error& e) {
      return DataLossError("cannot resume from " + checkpoint + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      return DataLossError("cannot resume from " + checkpoint + ": " + e.what());
    }
  }
  auto save_checkpoint = [&](int step) -> Status {
    torch::serialize::OutputArchive archive, model_archive, ema_archive, optimizer_archive;
    model.save(model_archive);
    archive.write("model", model_archive);
    if (ema != nullptr) {
      ema->save(ema_archive);
      archive.write("ema", ema_archive);
    }
    optimizer.save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    archive.write("step", c10::IValue(static_cast<int64_t>(step)));
    archive.write(kFormatKey, c10::IValue(std::string(kCheckpointFormat)));
    archive.write(kMetaKey, c10::IValue(config_json));
    return SaveArchive(archive, checkpoint);
  };

  const auto begin = std::chrono::steady_clock::now();
  std::deque<double> recent;
  double recent_sum = 0.0;
  LoopResult result;
  for (int step = start; step < options.steps; ++step) {
    const double lr = LearningRate(options, step);
    for (auto& group : optimizer.param_groups()) {
      group.options().set_lr(lr);
    }
    const double loss = step_fn(step);
    if (!std::isfinite(loss)) {
      return InternalError("training diverged at step " + std::to_string(step) + " (loss " +
                           std::to_string(loss) + "); lower learning_rate");
    }
    if (ema != nullptr) UpdateEma(*ema, model, step < options.warmup_steps ? 0.0 : ema_decay);
    recent.push_back(loss);
    recent_sum += loss;
    if (recent.size() > 50) {
      recent_sum -= recent.front();
      recent.pop_front();
    }
    ++result.steps_run;
    const int done = step + 1;
    const bool stopping =
        options.stop_after > 0 && result.steps_run >= options.stop_after && done < options.steps;
    if (done % options.checkpoint_every == 0 || done == options.steps || stopping) {
      DND_RETURN_IF_ERROR(save_checkpoint(done));
    }
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    result.final_loss = recent_sum / recent.size();
    if (progress) {
      progress({.step = done,
                .total_steps = options.steps,
                .loss = result.final_loss,
                .elapsed_seconds = result.seconds,
                .first_step = start});
    }
    if (stopping) {
      result.finished = false;
      break;
    }
  }
  return result;
}

}  // namespace dnd::models
