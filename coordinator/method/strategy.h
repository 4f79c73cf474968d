// The composition strategies behind one interface, so every comparison runs through one code path
// with the same experts, sampler and seeds: Averaging, Composable Diffusion (AND), MultiDiffusion
// (hard layout) and Divide-and-Denoise. The coordinator's step loop owns one Strategy per job and
// calls Begin (after the experts' predictions) then Finish (after their gradients, if wanted).
#ifndef DND_COORDINATOR_METHOD_STRATEGY_H_
#define DND_COORDINATOR_METHOD_STRATEGY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "coordinator/method/allocation.h"
#include "coordinator/method/rng.h"
#include "coordinator/method/schedule.h"
#include "protocol/status.h"

namespace dnd::method {

enum class StrategyKind { kAveraging, kComposable, kMultiDiffusion, kDivideAndDenoise };
// "averaging", "composable", "multidiffusion", "dnd"; InvalidArgument otherwise.
StatusOr<StrategyKind> ParseStrategyKind(std::string_view name);
std::string_view Name(StrategyKind kind);

struct LatentShape {
  int channels = 4;
  int height = 64;
  int width = 64;
  int positions() const { return height * width; }
  size_t numel() const { return static_cast<size_t>(channels) * height * width; }
};

struct StrategyOptions {
  StrategyKind kind = StrategyKind::kDivideAndDenoise;
  ScheduleConfig schedule;
  AllocationOptions allocation;  // dnd only
  double gamma = 0.015;          // dnd guidance strength (METHOD.md); 0 = no guidance round trip
  // dnd: weight of each expert's guidance gradient outside its own region, in [0, 1]
  // (CompositeInputs::guidance_outside): 0 = only its own region, 1 = everywhere. The
  // coordinator's default (JobDefaults).
  double guidance_outside = 0.5;
  // dnd: standard deviation, in latent positions, of the Gaussian blur applied to every expert's
  // utility map before the allocation (SmoothMap; docs/method.md decision 12); 0 = none.
  double utility_smoothing = 2.0;
  // dnd: region-centred views (views.h; docs/method.md decision 13), applied by the job: each
  // expert sees the latent translated by view_gain times the offset of its region's centre of
  // mass from the frame's centre, at most view_max_shift positions each way. 0 = every expert sees
  // the frame as it is (METHOD.md). The view centres of two experts are kept at least
  // view_min_separation positions apart (SeparatedShifts; decision 14), 0 = not separated.
  // Both are given for a frame view_reference_size positions on its shorter side and scaled to
  // the latent's (ViewScale; decision 15); 0 = in the latent's own positions.
  double view_gain = 1.0;
  int view_max_shift = 3;
  double view_min_separation = 6.0;
  int view_reference_size = 16;
  // Composable: eps = mean_i eps_u,i + sum_i w_i (eps_c,i - eps_u,i) with w_i each expert's own
  // CFG scale (Liu et al.'s AND, the diffusers community pipeline); true divides every w_i by n.
  bool composable_normalise_weights = false;
  // MultiDiffusion layout: n masks of H*W values (empty: n equal vertical strips).
  std::vector<std::vector<float>> masks;
};

// One expert's reply for a step. cond is its conditional output (of the expert's prediction
// type); uncond its unconditional output (may be empty when guidance_scale == 1 or the expert did
// classifier-free guidance itself). Both C x H x W.
struct ExpertOutput {
  std::span<const float> cond;
  std::span<const float> uncond;
  double guidance_scale = 1.0;
  PredictionType prediction_type = PredictionType::kEpsilon;
};

// Gaussian blur of a height x width map in place, separable, standard deviation `sigma` positions,
// kernel radius ceil(3 sigma); near the border each output is the weighted mean of the positions
// inside the grid (so a constant map stays constant). sigma <= 0 leaves the map as it is.
void SmoothMap(std::span<float> map, int height, int width, double sigma);

// Call only from the job's step loop (not thread-safe).
class Strategy {
 public:
  // InvalidArgument on num_experts < 1, a bad latent shape, masks of the wrong count or size,
  // negative gamma, or bad allocation options (see AllocationSolver::Create).
  static StatusOr<std::unique_ptr<Strategy>> Create(const StrategyOptions& options,
                                                    LatentShape shape, int num_experts);

  // Stage 1, after the experts' replies for step t -> t_prev (coefficients from
  // NoiseSchedule::Step). utilities: one row of H*W values per expert (dnd only; may be empty for
  // other strategies); the fictitious row 1/m is appended here. Computes the proposals and, for
  // dnd, Q_t (starting from Q_T uniform at the first call). InvalidArgument on size mismatches
  // and every error of AllocationSolver::Solve.
  Status Begin(const StepCoefficients& step, std::span<const float> x_t,
               std::span<const ExpertOutput> outputs,
               std::span<const std::span<const float>> utilities);
  // Whether Finish wants g_i from the experts (dnd with gamma > 0).
  bool WantsGradients() const;
  // Q_t of the last Begin (dnd), the fixed layout (MultiDiffusion) or Q uniform (others).
  const Allocation& allocation() const { return allocation_; }

  // Stage 2: x_{t-1} = combination (+ guidance) + noise_std z with z from (sample, step_index).
  // gradients: n spans of C*H*W, or empty. FailedPrecondition if Begin has not succeeded.
  Status Finish(std::span<const std::span<const float>> gradients, const NormalGenerator& generator,
                uint32_t sample, uint32_t step_index, std::span<float> x_prev);

 private:
  Strategy() = default;
  StrategyOptions options_;
  LatentShape shape_;
  int n_ = 0;
  std::unique_ptr<AllocationSolver> solver_;
  Allocation allocation_;
  std::vector<std::vector<float>> proposals_;  // mu_i, or [0] = the composable mean
  std::vector<float> utilities_;               // (n+1) x m
  StepCoefficients step_;
  bool ready_ = false;
};

}  // namespace dnd::method

#endif  // DND_COORDINATOR_METHOD_STRATEGY_H_
