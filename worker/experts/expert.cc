// The expert interface's value types, the shared input validation and the backend factory.
#include "worker/experts/expert.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "worker/experts/exact_expert.h"
#include "worker/experts/torchscript_expert.h"

namespace dnd::experts {

std::string_view PredictionTypeName(PredictionType type) {
  switch (type) {
    case PredictionType::kEpsilon:
      return "epsilon";
    case PredictionType::kSample:
      return "sample";
    case PredictionType::kV:
      return "v";
  }
  return "?";
}

StatusOr<PredictionType> ParsePredictionType(std::string_view name) {
  if (name == "epsilon") return PredictionType::kEpsilon;
  if (name == "sample") return PredictionType::kSample;
  if (name == "v") return PredictionType::kV;
  return InvalidArgumentError("prediction type '" + std::string(name) +
                              "' is not one of epsilon, sample, v");
}

std::string_view UtilityKindName(UtilityKind kind) {
  switch (kind) {
    case UtilityKind::kScore:
      return "score";
    case UtilityKind::kAttention:
      return "attention";
  }
  return "?";
}

StatusOr<UtilityKind> ParseUtilityKind(std::string_view name) {
  if (name == "score") return UtilityKind::kScore;
  if (name == "attention") return UtilityKind::kAttention;
  return InvalidArgumentError("utility kind '" + std::string(name) +
                              "' is not one of score, attention");
}

size_t LatentSpace::NumValues() const {
  return static_cast<size_t>(channels) * static_cast<size_t>(height) * static_cast<size_t>(width);
}

size_t LatentSpace::NumPositions() const {
  return static_cast<size_t>(height) * static_cast<size_t>(width);
}

std::string LatentSpace::ShapeString() const {
  return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
}

bool ExpertInfo::SupportsUtility(UtilityKind kind) const {
  return std::find(utilities.begin(), utilities.end(), kind) != utilities.end();
}

int ExpertInfo::ConceptIndex(std::string_view concept_name) const {
  for (size_t i = 0; i < concepts.size(); ++i) {
    if (concepts[i] == concept_name) return static_cast<int>(i);
  }
  return -1;
}

namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// OkStatus, or InvalidArgument naming the first non-finite entry of `values`.
Status CheckFinite(std::span<const float> values, std::string_view what) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      std::ostringstream message;
      message << what << " has a non-finite value (" << values[i] << ") at index " << i;
      return InvalidArgumentError(message.str());
    }
  }
  return OkStatus();
}

}  // namespace

Status ValidateStepInput(const ExpertInfo& info, const StepInput& input) {
  if (info.ConceptIndex(input.concept_name) < 0) {
    return NotFoundError("expert '" + info.name + "' does not know concept '" + input.concept_name +
                         "'; known concepts: " + Join(info.concepts));
  }
  if (input.latent.size() != info.latent.NumValues()) {
    return InvalidArgumentError("latent has " + std::to_string(input.latent.size()) +
                                " values, expert '" + info.name + "' expects " +
                                info.latent.ShapeString() + " (" +
                                std::to_string(info.latent.NumValues()) + ")");
  }
  DND_RETURN_IF_ERROR(CheckFinite(input.latent, "latent"));
  if (!std::isfinite(input.alpha_cumprod) || input.alpha_cumprod <= 0.0 ||
      input.alpha_cumprod >= 1.0) {
    std::ostringstream message;
    message << "alpha_cumprod " << input.alpha_cumprod << " is outside (0, 1)";
    return InvalidArgumentError(message.str());
  }
  if (!std::isfinite(input.cfg_scale)) {
    return InvalidArgumentError("cfg_scale is not finite");
  }
  if (input.timestep < 0) {
    return InvalidArgumentError("timestep " + std::to_string(input.timestep) + " is negative");
  }
  if (!info.SupportsUtility(input.utility)) {
    std::string supported;
    for (UtilityKind kind : info.utilities) {
      if (!supported.empty()) supported += ", ";
      supported += UtilityKindName(kind);
    }
    return InvalidArgumentError("expert '" + info.name + "' has no " +
                                std::string(UtilityKindName(input.utility)) +
                                " utility; supported: " + supported);
  }
  return OkStatus();
}

Status ValidateGradientInput(const ExpertInfo& info, const GradientInput& input) {
  DND_RETURN_IF_ERROR(ValidateStepInput(info, input.step));
  if (input.allocation.size() != info.latent.NumPositions()) {
    return InvalidArgumentError("allocation has " + std::to_string(input.allocation.size()) +
                                " values, expert '" + info.name + "' expects " +
                                std::to_string(info.latent.height) + "x" +
                                std::to_string(info.latent.width) + " (" +
                                std::to_string(info.latent.NumPositions()) + ")");
  }
  DND_RETURN_IF_ERROR(CheckFinite(input.allocation, "allocation"));
  for (size_t i = 0; i < input.allocation.size(); ++i) {
    if (input.allocation[i] < 0.0f) {
      return InvalidArgumentError("allocation has a negative value at index " + std::to_string(i));
    }
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<Expert>> CreateExpert(const ExpertConfig& config) {
  if (config.name.empty()) return InvalidArgumentError("expert config has an empty name");
  if (config.backend == "exact") return CreateExactExpert(config);
  if (config.backend == "torchscript") return CreateTorchScriptExpert(config);
  return InvalidArgumentError("expert backend '" + config.backend +
                              "' is not one of exact, torchscript");
}

}  // namespace dnd::experts
