// The expert interface: everything the worker asks of one private diffusion model per denoising
// step (docs/experts.md). A backend (exact closed-form Fashion-MNIST mixture, a user's TorchScript
// model, later trained UNets) implements Expert; worker/service batches requests from concurrent
// jobs and calls Step/Gradient with the whole batch. No LibTorch in this header.
#ifndef DND_WORKER_EXPERTS_EXPERT_H_
#define DND_WORKER_EXPERTS_EXPERT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "protocol/status.h"

namespace dnd::experts {

// What an expert's prediction means (METHOD.md: the coordinator converts to epsilon).
enum class PredictionType { kEpsilon, kSample, kV };
// "epsilon", "sample", "v".
std::string_view PredictionTypeName(PredictionType type);
// Inverse of PredictionTypeName; InvalidArgument for anything else.
StatusOr<PredictionType> ParsePredictionType(std::string_view name);

// Which per-position utility map u_i (METHOD.md, "Per-step quantities").
enum class UtilityKind { kScore, kAttention };
// "score", "attention".
std::string_view UtilityKindName(UtilityKind kind);
// Inverse of UtilityKindName; InvalidArgument for anything else.
StatusOr<UtilityKind> ParseUtilityKind(std::string_view name);

// The shared latent space: experts of one job must agree on id and shape. Value type.
struct LatentSpace {
  std::string id;
  int channels = 0;
  int height = 0;
  int width = 0;

  // C*H*W: the number of floats of one latent.
  size_t NumValues() const;
  // H*W: the number of positions ("goods") of the allocation.
  size_t NumPositions() const;
  // "1x64x64".
  std::string ShapeString() const;
  friend bool operator==(const LatentSpace&, const LatentSpace&) = default;
};

// Describe()'s answer: what this expert serves. Value type.
struct ExpertInfo {
  std::string name;
  LatentSpace latent;
  std::vector<std::string> concepts;  // the condition names it accepts
  PredictionType prediction_type = PredictionType::kEpsilon;
  std::vector<UtilityKind> utilities;  // always kScore; kAttention where it has a localisation map

  bool SupportsUtility(UtilityKind kind) const;
  // Index of `concept_name` in `concepts`, or -1.
  int ConceptIndex(std::string_view concept_name) const;
};

// One item of a step request. The spans must stay valid for the duration of the call.
struct StepInput {
  std::span<const float> latent;  // x_t, C*H*W floats, channel-major (C, then H, then W)
  int64_t timestep = 0;           // integer step of the training schedule (neural backends use it)
  double alpha_cumprod = 0.0;  // alphas_cumprod[timestep], in (0, 1) (closed-form backends use it)
  std::string concept_name;    // one of ExpertInfo::concepts
  UtilityKind utility = UtilityKind::kScore;
  // CFG scale w. Carried for backends that fold guidance into the model; the predictions returned
  // are always the raw conditional and unconditional ones, and the utility maps do not depend on w
  // (the score map is normalised, so the w^2 factor cancels).
  double cfg_scale = 1.0;
};

// One item of a step reply.
struct StepOutput {
  std::vector<float> prediction_cond;    // C*H*W, in ExpertInfo::prediction_type
  std::vector<float> prediction_uncond;  // C*H*W, same forward pass as prediction_cond
  std::vector<float> utility;            // H*W, every entry >= 0, sums to 1 (float rounding aside)
};

// One item of a guidance request: the step's inputs again and the allocation weights Q_i.
struct GradientInput {
  StepInput step;
  std::span<const float> allocation;  // Q_i, H*W floats in [0, 1]
};

// Options of the score-based utility map, shared by every backend (docs/experts.md, "Utility
// maps"):
//   s_j = sum_c (eps_c - eps_u)^2 at position j; blur with a Gaussian of `blur_sigma_px` (replicate
//   padding, radius ceil(3 sigma); 0 = no blur); clip at `clip_multiple_of_mean` times the map's
//   mean (0 = no clip); divide by the total. A map that is zero everywhere becomes uniform
//   (1/(H*W)).
struct ScoreMapOptions {
  double blur_sigma_px = 1.0;
  double clip_multiple_of_mean = 3.0;
};

// A private diffusion model as the worker sees it.
// Thread rule: Describe() is thread-safe; Step() and Gradient() may be called from one thread at a
// time (the worker's compute thread), on any thread. Backends keep no state between Step and
// Gradient: Gradient recomputes the forward pass with autograd (stateless, so a guidance request
// needs no cache and can never refer to a forgotten step).
class Expert {
 public:
  virtual ~Expert() = default;

  // What the expert serves. Never changes after creation.
  virtual const ExpertInfo& Describe() const = 0;

  // Runs one batch of step items (items may come from different jobs and timesteps). Returns one
  // result per item, in order. Invalid items get their own error and do not fail the others:
  //   NotFound: unknown concept (the message lists the known ones);
  //   InvalidArgument: wrong latent size, non-finite latent/alpha/cfg, alpha_cumprod outside (0,
  //   1),
  //     a utility kind the expert does not support;
  //   Internal: the model failed (a library exception, a wrong output shape).
  // The valid items are computed in one batched forward (conditional and unconditional together).
  virtual std::vector<StatusOr<StepOutput>> Step(std::span<const StepInput> batch) = 0;

  // For each item: grad_x sum_j Q_ij u_ij(x_t), C*H*W floats, by autograd through the model, with
  // u of the item's utility kind (Q held fixed). Same errors as Step, plus InvalidArgument for an
  // allocation of the wrong size or with a non-finite or negative entry.
  virtual std::vector<StatusOr<std::vector<float>>> Gradient(
      std::span<const GradientInput> batch) = 0;

 protected:
  Expert() = default;
  Expert(const Expert&) = delete;
  Expert& operator=(const Expert&) = delete;
};

// Checks one step item against `info` (the errors listed on Expert::Step). Backends call it first.
Status ValidateStepInput(const ExpertInfo& info, const StepInput& input);
// ValidateStepInput plus the allocation checks of Expert::Gradient.
Status ValidateGradientInput(const ExpertInfo& info, const GradientInput& input);

// Validates each item of a batch (ValidateStepInput / ValidateGradientInput): an invalid item's
// error goes into results[i] (results has one entry per item); returns the valid items' indices,
// which a backend then computes together. Backends call it first in Step and Gradient.
template <typename Input, typename Output>
std::vector<size_t> PartitionValidItems(const ExpertInfo& info, std::span<const Input> batch,
                                        std::vector<StatusOr<Output>>& results) {
  std::vector<size_t> valid;
  for (size_t i = 0; i < batch.size(); ++i) {
    Status status;
    if constexpr (std::is_same_v<Input, GradientInput>) {
      status = ValidateGradientInput(info, batch[i]);
    } else {
      status = ValidateStepInput(info, batch[i]);
    }
    if (status.ok()) {
      valid.push_back(i);
    } else {
      results[i] = std::move(status);
    }
  }
  return valid;
}

// How to build an expert. Value type.
struct ExpertConfig {
  std::string backend;  // "exact" or "torchscript"
  std::string name;     // the expert's name, e.g. the organisation's ("footwear")
  // exact: the directory holding Fashion-MNIST's train-*-ubyte.gz (default Debian's);
  // torchscript: the .pt file written by torch.jit.save.
  std::string model_path;
  // exact: the class names it knows (fashion_mnist.h; e.g. {"sandal", "sneaker", "ankle_boot"}).
  // torchscript: empty = every concept the module declares, else a subset of them to serve.
  std::vector<std::string> concepts;
  ScoreMapOptions score_map;

  // exact backend only (docs/experts.md, "The exact expert"):
  int items_per_class = 32;            // K: the first K train items of each class, in file order
  double component_std = 0.05;         // s0, in pixel units of the [-1, 1] range
  double position_prior_std_px = 7.0;  // std of the discretised Gaussian prior over offsets
  bool exact_float64 = false;          // compute in float64 (tests); float32 otherwise
  std::string latent_space_id = "fashion-mnist-1x64x64";
};

inline constexpr std::string_view kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Builds the backend named by config.backend. Errors: InvalidArgument (unknown backend, bad option,
// unknown concept), NotFound (missing data or model file), DataLoss (corrupt data file),
// FailedPrecondition (a TorchScript module that does not follow the contract; the message says what
// is missing or wrong). Thread-safe.
StatusOr<std::unique_ptr<Expert>> CreateExpert(const ExpertConfig& config);

}  // namespace dnd::experts

#endif  // DND_WORKER_EXPERTS_EXPERT_H_
