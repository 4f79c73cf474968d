// The TorchScript backend (see torchscript_expert.h and docs/experts.md, "TorchScript contract").
// c10::Error from LibTorch stops here: it becomes an Internal (running) or FailedPrecondition
// (loading) Status.
#include "worker/experts/torchscript_expert.h"

#include <cstring>
#include <filesystem>
#include <sstream>
#include <utility>
#include <vector>

#include <torch/csrc/autograd/autograd.h>
#include <torch/script.h>

#include "worker/experts/utility_maps.h"

namespace dnd::experts {
namespace {

std::string ShapeOf(const at::Tensor& tensor) {
  std::ostringstream out;
  for (int64_t d = 0; d < tensor.dim(); ++d) out << (d ? "x" : "") << tensor.size(d);
  return out.str();
}

class TorchScriptExpert final : public Expert {
 public:
  TorchScriptExpert(ExpertInfo info, ScoreMapOptions score_options, torch::jit::Module module,
                    std::vector<int64_t> concept_ids)
      : info_(std::move(info)),
        score_options_(score_options),
        module_(std::move(module)),
        concept_ids_(std::move(concept_ids)) {}

  const ExpertInfo& Describe() const override { return info_; }

  std::vector<StatusOr<StepOutput>> Step(std::span<const StepInput> batch) override {
    std::vector<StatusOr<StepOutput>> results(batch.size(), InternalError("not computed"));
    const std::vector<size_t> valid = PartitionValidItems(info_, batch, results);
    if (valid.empty()) return results;
    try {
      torch::NoGradGuard no_grad;
      const Packed packed = Pack(batch, valid);
      StatusOr<Outputs> outputs = Run(packed);
      if (!outputs.ok()) {
        for (size_t i : valid) results[i] = outputs.status();
        return results;
      }
      const at::Tensor utility = outputs->utility.to(at::kFloat).contiguous();
      const at::Tensor cond = outputs->cond.to(at::kFloat).contiguous();
      const at::Tensor uncond = outputs->uncond.to(at::kFloat).contiguous();
      const size_t values = info_.latent.NumValues();
      const size_t positions = info_.latent.NumPositions();
      for (size_t b = 0; b < valid.size(); ++b) {
        StepOutput out;
        const float* c = cond.data_ptr<float>() + b * values;
        const float* u = uncond.data_ptr<float>() + b * values;
        const float* m = utility.data_ptr<float>() + b * positions;
        out.prediction_cond.assign(c, c + values);
        out.prediction_uncond.assign(u, u + values);
        out.utility.assign(m, m + positions);
        results[valid[b]] = std::move(out);
      }
    } catch (const c10::Error& error) {
      const Status status = ModelError(error);
      for (size_t i : valid) results[i] = status;
    }
    return results;
  }

  std::vector<StatusOr<std::vector<float>>> Gradient(
      std::span<const GradientInput> batch) override {
    std::vector<StatusOr<std::vector<float>>> results(batch.size(), InternalError("not computed"));
    const std::vector<size_t> valid = PartitionValidItems(info_, batch, results);
    std::vector<StepInput> steps;
    for (const GradientInput& item : batch) steps.push_back(item.step);
    if (valid.empty()) return results;
    try {
      torch::AutoGradMode grad_mode(true);
      Packed packed = Pack(steps, valid);
      packed.x.requires_grad_(true);
      StatusOr<Outputs> outputs = Run(packed);
      if (!outputs.ok()) {
        for (size_t i : valid) results[i] = outputs.status();
        return results;
      }
      const size_t positions = info_.latent.NumPositions();
      at::Tensor allocation =
          at::empty({static_cast<int64_t>(valid.size()), info_.latent.height, info_.latent.width},
                    at::kFloat);
      for (size_t b = 0; b < valid.size(); ++b) {
        std::memcpy(allocation.data_ptr<float>() + b * positions, batch[valid[b]].allocation.data(),
                    positions * sizeof(float));
      }
      const at::Tensor allocated = (outputs->utility * allocation).sum();
      // autograd::grad, not backward(): the module's parameters must not accumulate .grad.
      const at::Tensor grad =
          torch::autograd::grad({allocated}, {packed.x})[0].to(at::kFloat).contiguous();
      const size_t values = info_.latent.NumValues();
      for (size_t b = 0; b < valid.size(); ++b) {
        const float* g = grad.data_ptr<float>() + b * values;
        results[valid[b]] = std::vector<float>(g, g + values);
      }
    } catch (const c10::Error& error) {
      const Status status = ModelError(error);
      for (size_t i : valid) results[i] = status;
    }
    return results;
  }

 private:
  struct Packed {
    at::Tensor x;                // [B, C, H, W] float32
    at::Tensor t;                // [B] int64
    at::Tensor cond;             // [B] int64: the module's concept ids
    at::Tensor wants_attention;  // [B, 1, 1] bool
    bool any_attention = false;
  };
  struct Outputs {
    at::Tensor cond;     // [B, C, H, W]
    at::Tensor uncond;   // [B, C, H, W]
    at::Tensor utility;  // [B, H, W]
  };

  Packed Pack(std::span<const StepInput> batch, const std::vector<size_t>& valid) const {
    const int64_t count = static_cast<int64_t>(valid.size());
    const LatentSpace& latent = info_.latent;
    const size_t values = latent.NumValues();
    Packed packed;
    packed.x = at::empty({count, latent.channels, latent.height, latent.width}, at::kFloat);
    packed.t = at::empty({count}, at::kLong);
    packed.cond = at::empty({count}, at::kLong);
    packed.wants_attention = at::empty({count, 1, 1}, at::kBool);
    for (int64_t b = 0; b < count; ++b) {
      const StepInput& input = batch[valid[b]];
      std::memcpy(packed.x.data_ptr<float>() + b * values, input.latent.data(),
                  values * sizeof(float));
      packed.t.data_ptr<int64_t>()[b] = input.timestep;
      packed.cond.data_ptr<int64_t>()[b] = concept_ids_[info_.ConceptIndex(input.concept_name)];
      const bool attention = input.utility == UtilityKind::kAttention;
      packed.wants_attention.data_ptr<bool>()[b] = attention;
      packed.any_attention = packed.any_attention || attention;
    }
    return packed;
  }

  // One predict() over [x; x] with [cond; -1], then the utilities. Internal on a contract breach.
  StatusOr<Outputs> Run(const Packed& packed) {
    const int64_t count = packed.x.size(0);
    const LatentSpace& latent = info_.latent;
    const at::Tensor x2 = at::cat({packed.x, packed.x}, 0);
    const at::Tensor t2 = at::cat({packed.t, packed.t}, 0);
    const at::Tensor c2 = at::cat({packed.cond, at::full({count}, -1, at::kLong)}, 0);
    const at::Tensor prediction = module_.get_method("predict")({x2, t2, c2}).toTensor();
    if (prediction.dim() != 4 || prediction.size(0) != 2 * count ||
        prediction.size(1) != latent.channels || prediction.size(2) != latent.height ||
        prediction.size(3) != latent.width) {
      return InternalError("model '" + info_.name + "': predict returned shape " +
                           ShapeOf(prediction) + ", expected " + std::to_string(2 * count) + "x" +
                           latent.ShapeString());
    }
    if (!at::isfinite(prediction).all().item<bool>()) {
      return InternalError("model '" + info_.name + "': predict returned non-finite values");
    }
    Outputs outputs;
    outputs.cond = prediction.narrow(0, 0, count).to(at::kFloat);
    outputs.uncond = prediction.narrow(0, count, count).to(at::kFloat);
    outputs.utility = ScoreUtility(outputs.cond, outputs.uncond, score_options_);
    if (packed.any_attention) {
      const at::Tensor map =
          module_.get_method("attention")({packed.x, packed.t, packed.cond}).toTensor();
      if (map.dim() != 3 || map.size(0) != count || map.size(1) != latent.height ||
          map.size(2) != latent.width) {
        return InternalError("model '" + info_.name + "': attention returned shape " +
                             ShapeOf(map) + ", expected " + std::to_string(count) + "x" +
                             std::to_string(latent.height) + "x" + std::to_string(latent.width));
      }
      if (!at::isfinite(map).all().item<bool>()) {
        return InternalError("model '" + info_.name + "': attention returned non-finite values");
      }
      outputs.utility =
          at::where(packed.wants_attention, AttentionUtility(map.to(at::kFloat)), outputs.utility);
    }
    return outputs;
  }

  Status ModelError(const c10::Error& error) const {
    return InternalError("model '" + info_.name + "' failed: " + error.what_without_backtrace());
  }

  const ExpertInfo info_;
  const ScoreMapOptions score_options_;
  torch::jit::Module module_;
  const std::vector<int64_t> concept_ids_;  // the module's id of info_.concepts[i]
};

Status ContractError(const std::string& path, const std::string& what) {
  return FailedPreconditionError("TorchScript module '" + path +
                                 "' does not follow the dnd contract (docs/experts.md): " + what);
}

// Checks that `name` is a method taking (x, t, cond) besides self.
Status CheckMethod(const torch::jit::Module& module, const std::string& path,
                   const std::string& name) {
  const c10::optional<torch::jit::Method> method = module.find_method(name);
  if (!method) return ContractError(path, "method '" + name + "(x, t, cond)' is missing");
  const size_t arguments = method->function().getSchema().arguments().size();
  if (arguments != 4) {
    return ContractError(path, "method '" + name + "' takes " + std::to_string(arguments - 1) +
                                   " arguments, expected 3 (x, t, cond)");
  }
  return OkStatus();
}

StatusOr<std::string> StringAttribute(const torch::jit::Module& module, const std::string& path,
                                      const std::string& name) {
  if (!module.hasattr(name)) return ContractError(path, "attribute '" + name + ": str' is missing");
  const c10::IValue value = module.attr(name);
  if (!value.isString()) return ContractError(path, "attribute '" + name + "' is not a str");
  return value.toStringRef();
}

StatusOr<std::unique_ptr<Expert>> Build(const ExpertConfig& config, torch::jit::Module module) {
  const std::string& path = config.model_path;
  ExpertInfo info;
  info.name = config.name;
  DND_ASSIGN_OR_RETURN(info.latent.id, StringAttribute(module, path, "latent_space"));
  DND_ASSIGN_OR_RETURN(const std::string prediction_name,
                       StringAttribute(module, path, "prediction_type"));
  StatusOr<PredictionType> prediction = ParsePredictionType(prediction_name);
  if (!prediction.ok()) return ContractError(path, prediction.status().message());
  info.prediction_type = *prediction;

  if (!module.hasattr("latent_shape")) {
    return ContractError(path, "attribute 'latent_shape: List[int]' ([C, H, W]) is missing");
  }
  const c10::IValue shape = module.attr("latent_shape");
  if (!shape.isIntList() || shape.toIntList().size() != 3) {
    return ContractError(path, "attribute 'latent_shape' is not a List[int] of 3 values [C, H, W]");
  }
  const c10::List<int64_t> dims = shape.toIntList();
  for (int64_t d : dims.vec()) {
    if (d < 1 || d > 4096)
      return ContractError(path, "latent_shape has a dimension outside 1..4096");
  }
  info.latent.channels = static_cast<int>(dims.get(0));
  info.latent.height = static_cast<int>(dims.get(1));
  info.latent.width = static_cast<int>(dims.get(2));

  if (!module.hasattr("concepts")) {
    return ContractError(path, "attribute 'concepts: List[str]' is missing");
  }
  const c10::IValue concepts_value = module.attr("concepts");
  if (!concepts_value.isList())
    return ContractError(path, "attribute 'concepts' is not a List[str]");
  std::vector<std::string> module_concepts;
  for (const c10::IValue& item : concepts_value.toListRef()) {
    if (!item.isString()) return ContractError(path, "attribute 'concepts' is not a List[str]");
    module_concepts.push_back(item.toStringRef());
  }
  if (module_concepts.empty()) return ContractError(path, "attribute 'concepts' is empty");

  std::vector<int64_t> concept_ids;
  const std::vector<std::string>& served =
      config.concepts.empty() ? module_concepts : config.concepts;
  for (const std::string& name : served) {
    int64_t id = -1;
    for (size_t i = 0; i < module_concepts.size(); ++i) {
      if (module_concepts[i] == name) id = static_cast<int64_t>(i);
    }
    if (id < 0) {
      return InvalidArgumentError("TorchScript module '" + path + "' does not declare concept '" +
                                  name + "'");
    }
    concept_ids.push_back(id);
  }
  info.concepts = served;

  DND_RETURN_IF_ERROR(CheckMethod(module, path, "predict"));
  info.utilities = {UtilityKind::kScore};
  if (module.find_method("attention")) {
    DND_RETURN_IF_ERROR(CheckMethod(module, path, "attention"));
    info.utilities.push_back(UtilityKind::kAttention);
  }

  auto expert = std::make_unique<TorchScriptExpert>(std::move(info), config.score_map,
                                                    std::move(module), std::move(concept_ids));
  // Smoke test: one step on a zero latent checks the output shapes now rather than at the first
  // job.
  const ExpertInfo& described = expert->Describe();
  const std::vector<float> zeros(described.latent.NumValues(), 0.0f);
  for (UtilityKind kind : described.utilities) {
    StepInput input{.latent = zeros,
                    .timestep = 0,
                    .alpha_cumprod = 0.5,
                    .concept_name = described.concepts.front(),
                    .utility = kind};
    std::vector<StatusOr<StepOutput>> out = expert->Step({&input, 1});
    if (!out[0].ok()) return ContractError(path, out[0].status().message());
  }
  return std::unique_ptr<Expert>(std::move(expert));
}

}  // namespace

StatusOr<std::unique_ptr<Expert>> CreateTorchScriptExpert(const ExpertConfig& config) {
  if (!std::filesystem::is_regular_file(config.model_path)) {
    return NotFoundError("TorchScript model file '" + config.model_path + "' does not exist");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(config.model_path);
    module.eval();
  } catch (const c10::Error& error) {
    return InvalidArgumentError("cannot load '" + config.model_path +
                                "' as a TorchScript module: " + error.what_without_backtrace());
  }
  try {
    return Build(config, std::move(module));
  } catch (const c10::Error& error) {
    return ContractError(config.model_path, error.what_without_backtrace());
  }
}

}  // namespace dnd::experts
