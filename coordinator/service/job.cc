// See job.h. The order of work per step follows METHOD.md, "Per-step order".
#include "coordinator/service/job.h"

#include <algorithm>
#include <span>
#include <string>
#include <utility>

namespace dnd::coordinator {
namespace {

double MillisBetween(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

method::PredictionType ToMethodPrediction(protocol::PredictionType type) {
  switch (type) {
    case protocol::PredictionType::kEpsilon:
      return method::PredictionType::kEpsilon;
    case protocol::PredictionType::kSample:
      return method::PredictionType::kSample;
    case protocol::PredictionType::kVPrediction:
      return method::PredictionType::kVPrediction;
  }
  return method::PredictionType::kEpsilon;
}

std::string Describe(const JobExpert& e) {
  return "expert '" + e.expert_name + "'" +
         (e.organisation.empty() ? std::string() : " (" + e.organisation + ")");
}

}  // namespace

StatusOr<std::unique_ptr<Job>> Job::Create(std::string id, ResolvedSpec resolved,
                                           std::vector<JobExpert> experts,
                                           method::LatentShape shape, std::string latent_space_id) {
  std::unique_ptr<Job> job(new Job());
  job->id_ = std::move(id);
  job->experts_ = std::move(experts);
  job->views_.assign(job->experts_.size(), method::ViewShift{});
  job->shape_ = shape;
  job->latent_space_id_ = std::move(latent_space_id);
  DND_ASSIGN_OR_RETURN(job->schedule_, method::NoiseSchedule::Create(resolved.strategy.schedule));
  DND_ASSIGN_OR_RETURN(job->timesteps_,
                       job->schedule_.Timesteps(static_cast<int>(resolved.spec.steps)));
  DND_ASSIGN_OR_RETURN(
      job->strategy_,
      method::Strategy::Create(resolved.strategy, shape, static_cast<int>(job->experts_.size())));
  job->generator_ = method::NormalGenerator(resolved.spec.seed);
  job->resolved_ = std::move(resolved);
  return job;
}

bool Job::finished() const {
  return state_ == protocol::JobState::kSucceeded || state_ == protocol::JobState::kFailed ||
         state_ == protocol::JobState::kCancelled;
}

int Job::ExpertIndex(const std::string& peer) const {
  for (size_t i = 0; i < experts_.size(); ++i) {
    if (experts_[i].peer == peer) return static_cast<int>(i);
  }
  return -1;
}

std::vector<Outgoing> Job::Start(SteadyClock::time_point now, int step_deadline_ms) {
  DND_CHECK(state_ == protocol::JobState::kQueued) << "job " << id_ << " started twice";
  state_ = protocol::JobState::kRunning;
  step_deadline_ms_ = step_deadline_ms;
  first_step_started_ = now;
  // x_T ~ N(0, I) from the job's own generator (docs/method.md, "Random numbers").
  x_.assign(shape_.numel(), 0.0f);
  generator_.Fill(/*sample=*/0, method::NoisePurpose::kInitialLatent, /*step=*/0, x_);
  return FanOutStep(now);
}

void Job::UpdateViews(const method::Allocation& q) {
  const method::StrategyOptions& options = resolved_.strategy;
  if (options.kind != method::StrategyKind::kDivideAndDenoise || !(options.view_gain > 0)) return;
  std::vector<method::ViewOffset> offsets(experts_.size());
  for (size_t i = 0; i < experts_.size(); ++i) {
    const method::ViewOffset c =
        method::RegionCentreOffset(q.Row(static_cast<int>(i)), shape_.height, shape_.width);
    offsets[i] = {options.view_gain * c.dy, options.view_gain * c.dx};
  }
  const double scale = method::ViewScale(shape_.height, shape_.width, options.view_reference_size);
  views_ = method::SeparatedShifts(std::move(offsets), options.view_max_shift * scale,
                                   options.view_min_separation * scale);
}

std::vector<Outgoing> Job::FanOutStep(SteadyClock::time_point now) {
  const int num_steps = static_cast<int>(timesteps_.size());
  const int t = timesteps_[steps_done_];
  const int t_prev = schedule_.PrevTimestep(t, num_steps);
  StatusOr<method::StepCoefficients> coefficients =
      schedule_.Step(resolved_.sampler, t, t_prev, resolved_.spec.eta);
  if (!coefficients.ok()) {
    Fail("step " + std::to_string(steps_done_) + ": " + coefficients.status().ToString());
    return {};
  }
  coefficients_ = *coefficients;
  round_ = Round::kStep;
  round_started_ = now;
  round_deadline_ = now + std::chrono::milliseconds(step_deadline_ms_);
  step_replies_.assign(experts_.size(), {});
  have_step_reply_.assign(experts_.size(), false);
  current_ = StepRecord{};
  current_.index = steps_done_;
  current_.timestep = t;
  current_.prev_timestep = t_prev;
  current_.step_latency_ms.assign(experts_.size(), 0.0);
  current_.view_shift = views_;

  const protocol::Tensor latent = protocol::MakeFloatTensor(
      {static_cast<uint32_t>(shape_.channels), static_cast<uint32_t>(shape_.height),
       static_cast<uint32_t>(shape_.width)},
      x_);
  std::vector<Outgoing> out;
  out.reserve(experts_.size());
  for (size_t i = 0; i < experts_.size(); ++i) {
    const JobExpert& e = experts_[i];
    protocol::StepRequest r;
    r.job_id = id_;
    r.step_index = steps_done_;
    r.attempt = attempt_;
    r.timestep = t;
    r.prev_timestep = t_prev;
    r.alpha_cumprod = coefficients_.alpha_t;
    r.latent = latent;
    if (!views_[i].IsZero()) {
      // Expert i's view: the frame moved so that its region's centre is the view's centre.
      method::Roll(x_, shape_.height, shape_.width, views_[i].Inverse(), r.latent.f32);
    }
    r.concept_name = e.concept_name;
    r.cfg_scale = e.guidance_scale;
    r.utility = resolved_.spec.utility;
    r.want_guidance = strategy_->WantsGradients();
    out.push_back({e.peer, std::move(r)});
  }
  return out;
}

std::vector<Outgoing> Job::OnStepReply(const std::string& peer, const protocol::StepReply& reply,
                                       SteadyClock::time_point now) {
  const int i = ExpertIndex(peer);
  if (state_ != protocol::JobState::kRunning || round_ != Round::kStep || i < 0 ||
      reply.step_index != steps_done_ || reply.attempt != attempt_ || have_step_reply_[i]) {
    return {};  // late, duplicate or foreign: dropped (requests are idempotent per attempt)
  }
  const size_t numel = shape_.numel();
  const size_t positions = static_cast<size_t>(shape_.positions());
  if (reply.prediction_cond.f32.size() != numel || reply.prediction_uncond.f32.size() != numel ||
      reply.utility.f32.size() != positions) {
    Fail(Describe(experts_[i]) + " sent step " + std::to_string(reply.step_index) +
         " outputs of the wrong size (prediction " +
         std::to_string(reply.prediction_cond.f32.size()) + " and utility " +
         std::to_string(reply.utility.f32.size()) + " values; expected " + std::to_string(numel) +
         " and " + std::to_string(positions) + ")");
    return {};
  }
  step_replies_[i] = reply;
  if (!views_[i].IsZero()) {
    // Back from expert i's view into the frame.
    protocol::StepReply& back = step_replies_[i];
    method::Roll(reply.prediction_cond.f32, shape_.height, shape_.width, views_[i],
                 back.prediction_cond.f32);
    method::Roll(reply.prediction_uncond.f32, shape_.height, shape_.width, views_[i],
                 back.prediction_uncond.f32);
    method::Roll(reply.utility.f32, shape_.height, shape_.width, views_[i], back.utility.f32);
  }
  have_step_reply_[i] = true;
  current_.step_latency_ms[i] = MillisBetween(round_started_, now);
  if (std::all_of(have_step_reply_.begin(), have_step_reply_.end(), [](bool b) { return b; })) {
    return FinishStepRound(now);
  }
  return {};
}

std::vector<Outgoing> Job::FinishStepRound(SteadyClock::time_point now) {
  const auto compute_start = SteadyClock::now();
  std::vector<method::ExpertOutput> outputs;
  std::vector<std::span<const float>> utilities;
  outputs.reserve(experts_.size());
  for (size_t i = 0; i < experts_.size(); ++i) {
    outputs.push_back({.cond = step_replies_[i].prediction_cond.f32,
                       .uncond = step_replies_[i].prediction_uncond.f32,
                       .guidance_scale = experts_[i].guidance_scale,
                       .prediction_type = ToMethodPrediction(experts_[i].prediction_type)});
    utilities.push_back(step_replies_[i].utility.f32);
  }
  Status begun = strategy_->Begin(coefficients_, x_, outputs, utilities);
  current_.coordinator_ms += MillisBetween(compute_start, SteadyClock::now());
  if (!begun.ok()) {
    Fail("step " + std::to_string(steps_done_) + ": " + begun.ToString());
    return {};
  }
  if (!strategy_->WantsGradients()) return CompleteStep(now);

  // Guidance round: expert i gets its own allocation row Q_i, nothing else.
  round_ = Round::kGuidance;
  round_started_ = now;
  round_deadline_ = now + std::chrono::milliseconds(step_deadline_ms_);
  gradients_.assign(experts_.size(), {});
  have_gradient_.assign(experts_.size(), false);
  current_.guidance_latency_ms.assign(experts_.size(), 0.0);
  const method::Allocation& q = strategy_->allocation();
  std::vector<Outgoing> out;
  for (size_t i = 0; i < experts_.size(); ++i) {
    std::span<const double> row = q.Row(static_cast<int>(i));
    std::vector<float> weights(row.begin(), row.end());
    if (!views_[i].IsZero()) {
      const std::vector<float> frame = weights;
      method::Roll(frame, shape_.height, shape_.width, views_[i].Inverse(), weights);
    }
    protocol::GuidanceRequest r;
    r.job_id = id_;
    r.step_index = steps_done_;
    r.attempt = attempt_;
    r.weights = protocol::MakeFloatTensor(
        {static_cast<uint32_t>(shape_.height), static_cast<uint32_t>(shape_.width)},
        std::move(weights));
    out.push_back({experts_[i].peer, std::move(r)});
  }
  return out;
}

std::vector<Outgoing> Job::OnGuidanceReply(const std::string& peer,
                                           const protocol::GuidanceReply& reply,
                                           SteadyClock::time_point now) {
  const int i = ExpertIndex(peer);
  if (state_ != protocol::JobState::kRunning || round_ != Round::kGuidance || i < 0 ||
      reply.step_index != steps_done_ || reply.attempt != attempt_ || have_gradient_[i]) {
    return {};
  }
  if (reply.gradient.f32.size() != shape_.numel()) {
    Fail(Describe(experts_[i]) + " sent a guidance gradient of " +
         std::to_string(reply.gradient.f32.size()) + " values; expected " +
         std::to_string(shape_.numel()));
    return {};
  }
  gradients_[i] = reply.gradient.f32;
  if (!views_[i].IsZero()) {
    method::Roll(reply.gradient.f32, shape_.height, shape_.width, views_[i], gradients_[i]);
  }
  have_gradient_[i] = true;
  current_.guidance_latency_ms[i] = MillisBetween(round_started_, now);
  if (std::all_of(have_gradient_.begin(), have_gradient_.end(), [](bool b) { return b; })) {
    return CompleteStep(now);
  }
  return {};
}

std::vector<Outgoing> Job::CompleteStep(SteadyClock::time_point now) {
  const auto compute_start = SteadyClock::now();
  std::vector<std::span<const float>> gradients;
  if (strategy_->WantsGradients()) {
    for (const std::vector<float>& g : gradients_) gradients.push_back(g);
  }
  std::vector<float> x_prev(x_.size());
  Status finished = strategy_->Finish(gradients, generator_, /*sample=*/0, steps_done_, x_prev);
  if (!finished.ok()) {
    Fail("step " + std::to_string(steps_done_) + ": " + finished.ToString());
    return {};
  }
  x_ = std::move(x_prev);
  const method::Allocation& q = strategy_->allocation();
  UpdateViews(q);
  current_.coordinator_ms += MillisBetween(compute_start, SteadyClock::now());

  current_.share = q.position_share;
  current_.utility_obtained = q.utility_obtained;
  current_.fair_share = q.fair_share;
  current_.max_violation = q.max_violation;
  current_.dual_iterations = q.dual_iterations;
  current_.converged = q.converged;
  if (current_.share.empty()) {
    // Strategies without a solve (averaging, composable, multidiffusion): shares of their Q.
    current_.share.assign(q.num_players, 0.0);
    for (int i = 0; i < q.num_players; ++i) {
      double total = 0;
      for (double v : q.Row(i)) total += v;
      current_.share[i] = q.num_positions > 0 ? total / q.num_positions : 0.0;
    }
  }
  total_coordinator_ms_ += current_.coordinator_ms;
  records_.push_back(current_);

  const uint32_t total = total_steps();
  const uint32_t every = std::max<uint32_t>(1, total / 8);
  if (steps_done_ % every == 0 || steps_done_ + 1 == total) {
    snapshots_.emplace_back(steps_done_, q.q);
  }
  ++steps_done_;
  round_ = Round::kNone;
  if (steps_done_ == total) return {};  // the server writes the results, then MarkSucceeded()
  return FanOutStep(now);
}

void Job::OnWorkerError(const std::string& peer, const protocol::ErrorReply& error) {
  const int i = ExpertIndex(peer);
  if (state_ != protocol::JobState::kRunning || i < 0) return;
  if (error.step_index != steps_done_ || error.attempt != attempt_) return;  // stale
  Fail(Describe(experts_[i]) + " failed step " + std::to_string(error.step_index) + ": " +
       error.ToStatus().ToString());
}

void Job::OnWorkerLost(const std::string& peer, const std::string& why) {
  const int i = ExpertIndex(peer);
  if (i < 0 || finished()) return;
  Fail(Describe(experts_[i]) + " " + why);
}

void Job::CheckDeadline(SteadyClock::time_point now) {
  if (state_ != protocol::JobState::kRunning || round_ == Round::kNone || now < round_deadline_) {
    return;
  }
  const std::vector<bool>& have = round_ == Round::kStep ? have_step_reply_ : have_gradient_;
  std::string missing;
  for (size_t i = 0; i < experts_.size(); ++i) {
    if (have[i]) continue;
    if (!missing.empty()) missing += ", ";
    missing += Describe(experts_[i]);
  }
  Fail(missing + " did not answer " + (round_ == Round::kStep ? "step " : "the guidance of step ") +
       std::to_string(steps_done_) + " within " + std::to_string(step_deadline_ms_) + " ms");
}

void Job::Cancel(const std::string& why) {
  if (finished()) return;
  state_ = protocol::JobState::kCancelled;
  reason_ = why;
  round_ = Round::kNone;
}

void Job::Fail(const std::string& why) {
  if (finished()) return;
  state_ = protocol::JobState::kFailed;
  reason_ = why;
  round_ = Round::kNone;
}

void Job::MarkSucceeded() {
  DND_CHECK(all_steps_done()) << "job " << id_ << " marked succeeded before its last step";
  if (finished()) return;
  state_ = protocol::JobState::kSucceeded;
}

const std::vector<float>& Job::latent() const {
  DND_CHECK(!released_) << "job " << id_ << ": latent() after ReleaseWorkingMemory()";
  return x_;
}

const method::Allocation& Job::allocation() const {
  DND_CHECK(!released_) << "job " << id_ << ": allocation() after ReleaseWorkingMemory()";
  return strategy_->allocation();
}

const std::vector<std::pair<uint32_t, std::vector<double>>>& Job::snapshots() const {
  DND_CHECK(!released_) << "job " << id_ << ": snapshots() after ReleaseWorkingMemory()";
  return snapshots_;
}

void Job::ReleaseWorkingMemory() {
  DND_CHECK(finished()) << "job " << id_ << " released while "
                        << protocol::JobStateName(state_);
  released_ = true;
  // swap with empty containers: clear() keeps the capacity.
  std::vector<float>().swap(x_);
  strategy_.reset();
  std::vector<protocol::StepReply>().swap(step_replies_);
  std::vector<std::vector<float>>().swap(gradients_);
  std::vector<std::pair<uint32_t, std::vector<double>>>().swap(snapshots_);
  current_ = StepRecord{};
}

size_t Job::WorkingBytes() const {
  size_t bytes = x_.capacity() * sizeof(float);
  if (strategy_ != nullptr) {
    const method::Allocation& q = strategy_->allocation();
    bytes += q.q.capacity() * sizeof(double);
  }
  for (const protocol::StepReply& r : step_replies_) {
    bytes += (r.prediction_cond.f32.capacity() + r.prediction_uncond.f32.capacity() +
              r.utility.f32.capacity()) *
             sizeof(float);
  }
  for (const std::vector<float>& g : gradients_) bytes += g.capacity() * sizeof(float);
  for (const auto& [step, q] : snapshots_) bytes += q.capacity() * sizeof(double);
  return bytes;
}

int64_t Job::EtaMillis(SteadyClock::time_point now) const {
  if (state_ != protocol::JobState::kRunning || steps_done_ == 0) return -1;
  const double per_step = MillisBetween(first_step_started_, now) / steps_done_;
  return static_cast<int64_t>(per_step * (total_steps() - steps_done_));
}

}  // namespace dnd::coordinator
