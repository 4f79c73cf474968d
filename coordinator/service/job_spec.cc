// See job_spec.h.
#include "coordinator/service/job_spec.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

namespace dnd::coordinator {
namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

std::string Num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

Status CheckRange(double value, double lo, double hi, const char* name, bool lo_open = false) {
  const bool ok = std::isfinite(value) && (lo_open ? value > lo : value >= lo) && value <= hi;
  if (ok) return OkStatus();
  return InvalidArgumentError(std::string(name) + " = " + Num(value) + " is outside " +
                              (lo_open ? "(" : "[") + Num(lo) + ", " + Num(hi) + "]");
}

std::string ShapeString(const std::vector<uint32_t>& shape) {
  std::string out;
  for (uint32_t d : shape) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

method::StrategyKind ToKind(protocol::Strategy s) {
  switch (s) {
    case protocol::Strategy::kDnd:
      return method::StrategyKind::kDivideAndDenoise;
    case protocol::Strategy::kAveraging:
      return method::StrategyKind::kAveraging;
    case protocol::Strategy::kComposable:
      return method::StrategyKind::kComposable;
    case protocol::Strategy::kMultiDiffusion:
      return method::StrategyKind::kMultiDiffusion;
  }
  return method::StrategyKind::kDivideAndDenoise;
}

}  // namespace

protocol::JobSpec ApplyDefaults(protocol::JobSpec spec, const JobDefaults& defaults) {
  if (spec.steps == 0) spec.steps = defaults.steps;
  if (spec.cfg_scale == 0.0f) spec.cfg_scale = defaults.cfg_scale;
  if (spec.eta < 0) spec.eta = defaults.eta;
  if (spec.gamma < 0) spec.gamma = defaults.gamma;
  if (spec.guidance_outside < 0) spec.guidance_outside = defaults.guidance_outside;
  if (spec.beta == 0) {
    spec.beta = spec.utility == protocol::UtilityKind::kAttention ? defaults.beta_attention
                                                                  : defaults.beta_score;
  }
  if (spec.fairness.rho == 0) spec.fairness.rho = defaults.rho;
  if (spec.schedule_name.empty()) spec.schedule_name = defaults.beta_schedule;
  if (spec.timestep_spacing.empty()) spec.timestep_spacing = defaults.timestep_spacing;
  for (protocol::ExpertRef& e : spec.experts) {
    if (e.weight == 0.0f) e.weight = 1.0f;
  }
  return spec;
}

StatusOr<ResolvedJob> ResolveJob(const protocol::JobSpec& raw, const JobDefaults& defaults,
                                 const WorkerRegistry& registry) {
  ResolvedJob job;
  protocol::JobSpec spec = ApplyDefaults(raw, defaults);
  if (spec.experts.empty()) return InvalidArgumentError("the job names no experts");
  DND_RETURN_IF_ERROR(CheckRange(spec.steps, 1, 1000, "steps"));
  DND_RETURN_IF_ERROR(CheckRange(spec.cfg_scale, 0, 100, "cfg scale", /*lo_open=*/true));
  DND_RETURN_IF_ERROR(CheckRange(spec.eta, 0, 1, "eta"));
  DND_RETURN_IF_ERROR(CheckRange(spec.beta, 0, 1e6, "beta", /*lo_open=*/true));
  DND_RETURN_IF_ERROR(CheckRange(spec.gamma, 0, 10, "gamma"));
  DND_RETURN_IF_ERROR(CheckRange(spec.guidance_outside, 0, 1, "guidance outside"));
  DND_RETURN_IF_ERROR(CheckRange(spec.fairness.rho, 0, 1, "rho", /*lo_open=*/true));
  DND_RETURN_IF_ERROR(CheckRange(spec.fairness.epsilon, 0, 1, "epsilon"));

  std::set<std::string> seen;
  for (const protocol::ExpertRef& ref : spec.experts) {
    DND_RETURN_IF_ERROR(CheckRange(ref.weight, 0, 100, "expert weight", /*lo_open=*/true));
    if (!seen.insert(ref.expert_name).second) {
      return InvalidArgumentError("expert '" + ref.expert_name +
                                  "' appears twice; each expert draws one concept per job");
    }
    const WorkerRecord* w = registry.FindByName(ref.expert_name);
    if (w == nullptr) {
      return NotFoundError("unknown expert '" + ref.expert_name +
                           "'; connected experts: " + registry.DescribeAlive());
    }
    if (!w->alive) {
      return UnavailableError("expert '" + ref.expert_name + "' (" + w->hello.organisation +
                              ") is offline; connected experts: " + registry.DescribeAlive());
    }
    const auto& concepts = w->hello.concepts;
    if (std::find(concepts.begin(), concepts.end(), ref.concept_name) == concepts.end()) {
      return InvalidArgumentError("expert '" + ref.expert_name + "' does not know concept '" +
                                  ref.concept_name + "'; it knows: " + Join(concepts));
    }
    const auto& utilities = w->hello.utilities;
    if (spec.strategy == protocol::Strategy::kDnd &&
        std::find(utilities.begin(), utilities.end(), spec.utility) == utilities.end()) {
      return InvalidArgumentError("expert '" + ref.expert_name + "' has no " +
                                  protocol::UtilityKindName(spec.utility) + " utility");
    }
    if (job.experts.empty()) {
      job.latent_space_id = w->hello.latent_space_id;
      if (w->hello.latent_shape.size() != 3) {
        return InvalidArgumentError("expert '" + ref.expert_name + "' declared latent shape " +
                                    ShapeString(w->hello.latent_shape) + ", expected C x H x W");
      }
      job.shape = {static_cast<int>(w->hello.latent_shape[0]),
                   static_cast<int>(w->hello.latent_shape[1]),
                   static_cast<int>(w->hello.latent_shape[2])};
    } else if (w->hello.latent_space_id != job.latent_space_id ||
               w->hello.latent_shape !=
                   registry.FindByName(job.experts[0].expert_name)->hello.latent_shape) {
      return InvalidArgumentError(
          "experts of different latent spaces cannot be composed: '" + job.experts[0].expert_name +
          "' uses '" + job.latent_space_id + "' (" +
          ShapeString(registry.FindByName(job.experts[0].expert_name)->hello.latent_shape) +
          "), '" + ref.expert_name + "' uses '" + w->hello.latent_space_id + "' (" +
          ShapeString(w->hello.latent_shape) + ")");
    }
    // The job's scale when it sets one; otherwise the owner's, where the worker declares one
    // (docs/method.md decision 16), else the coordinator's default (already in spec.cfg_scale).
    const float scale = raw.cfg_scale == 0.0f && w->hello.guidance_scale > 0.0f
                            ? w->hello.guidance_scale
                            : spec.cfg_scale;
    job.experts.push_back(JobExpert{.expert_name = ref.expert_name,
                                    .organisation = w->hello.organisation,
                                    .concept_name = ref.concept_name,
                                    .peer = w->peer,
                                    .prediction_type = w->hello.prediction_type,
                                    .weight = ref.weight,
                                    .guidance_scale = scale * ref.weight});
  }

  method::StrategyOptions& s = job.resolved.strategy;
  s.kind = ToKind(spec.strategy);
  DND_ASSIGN_OR_RETURN(s.schedule.beta_schedule, method::ParseBetaSchedule(spec.schedule_name));
  DND_ASSIGN_OR_RETURN(s.schedule.timestep_spacing,
                       method::ParseTimestepSpacing(spec.timestep_spacing));
  uint32_t fairness = method::kFairnessNone;
  if (spec.fairness.proportional) fairness |= method::kFairnessProportional;
  if (spec.fairness.envy_free) fairness |= method::kFairnessEnvyFree;
  if (spec.fairness.equitable) fairness |= method::kFairnessEquitable;
  s.allocation.fairness = fairness;
  s.allocation.rho = spec.fairness.rho;
  s.allocation.epsilon = spec.fairness.epsilon;
  s.allocation.beta = spec.beta;
  s.gamma = spec.gamma;
  s.guidance_outside = spec.guidance_outside;
  s.utility_smoothing = defaults.utility_smoothing;
  s.view_gain = defaults.view_gain;
  s.view_max_shift = defaults.view_max_shift;
  s.view_min_separation = defaults.view_min_separation;
  s.view_reference_size = defaults.view_reference_size;
  if (!spec.layout.empty()) {
    if (spec.strategy != protocol::Strategy::kMultiDiffusion) {
      return InvalidArgumentError("a layout is only used by the multidiffusion strategy");
    }
    if (spec.layout.size() != spec.experts.size()) {
      return InvalidArgumentError("the layout has " + std::to_string(spec.layout.size()) +
                                  " masks for " + std::to_string(spec.experts.size()) + " experts");
    }
    for (const protocol::Tensor& mask : spec.layout) {
      if (mask.f32.size() != static_cast<size_t>(job.shape.positions())) {
        return InvalidArgumentError("a layout mask has " + std::to_string(mask.f32.size()) +
                                    " values; the latent grid has " +
                                    std::to_string(job.shape.height) + "x" +
                                    std::to_string(job.shape.width));
      }
      s.masks.push_back(mask.f32);
    }
  }
  job.resolved.sampler = method::SamplerKind::kDdim;
  job.resolved.spec = std::move(spec);
  return job;
}

}  // namespace dnd::coordinator
