// One job's step loop as an event-driven state machine (METHOD.md, "Per-step order"): it emits
// the requests to send and consumes the experts' replies; the server owns the sockets and feeds it.
// Per step: fan out x_t -> gather predictions and utilities -> Strategy::Begin (proposals, the
// allocation) -> optional guidance round -> Strategy::Finish (combine, sample x_{t-1}).
// Call only from the coordinator's serving thread.
#ifndef DND_COORDINATOR_SERVICE_JOB_H_
#define DND_COORDINATOR_SERVICE_JOB_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/method/allocation.h"
#include "coordinator/method/rng.h"
#include "coordinator/method/schedule.h"
#include "coordinator/method/strategy.h"
#include "coordinator/method/views.h"
#include "protocol/messages.h"
#include "protocol/status.h"

namespace dnd::coordinator {

using SteadyClock = std::chrono::steady_clock;

// One expert of a job, resolved against the registry when the job was accepted.
struct JobExpert {
  std::string expert_name;
  std::string organisation;
  std::string concept_name;
  std::string peer;  // routing id of its worker
  protocol::PredictionType prediction_type = protocol::PredictionType::kEpsilon;
  float weight = 1.0f;
  // The CFG scale this expert samples with in this job: the spec's scale when it sets one, else
  // the owner's (WorkerHello::guidance_scale), else the coordinator's default; times the weight.
  float guidance_scale = 0.0f;
};

// A request for one worker.
struct Outgoing {
  std::string peer;
  protocol::CoordinatorToWorker message;
};

// What the job record keeps of one step (docs/coordinator.md, "The job record").
struct StepRecord {
  uint32_t index = 0;
  int timestep = 0;
  int prev_timestep = 0;
  std::vector<double> share;             // mean_j Q_ij, per expert, then the fictitious player
  std::vector<double> utility_obtained;  // sum_j Q_ij u_ij, per expert
  std::vector<double> fair_share;        // rho / n under proportional fairness, else 0
  double max_violation = 0;
  int dual_iterations = 0;
  bool converged = true;
  std::vector<double> step_latency_ms;      // request sent -> reply received, per expert
  std::vector<double> guidance_latency_ms;  // empty without a guidance round
  double coordinator_ms = 0;                // allocation + combination + sampling
  // Per expert, the translation of its view for this step (method::RegionCentredShift of the
  // previous step's allocation; all zero unless region-centred views are on).
  std::vector<method::ViewShift> view_shift;
};

// The spec after defaults, as the job runs it.
struct ResolvedSpec {
  protocol::JobSpec spec;  // every default filled in
  method::StrategyOptions strategy;
  method::SamplerKind sampler = method::SamplerKind::kDdim;
};

class Job {
 public:
  // spec must already have its defaults filled in and be validated against the registry
  // (JobValidator does both). InvalidArgument from the method library for a bad combination.
  static StatusOr<std::unique_ptr<Job>> Create(std::string id, ResolvedSpec resolved,
                                               std::vector<JobExpert> experts,
                                               method::LatentShape shape,
                                               std::string latent_space_id);

  const std::string& id() const { return id_; }
  const protocol::JobSpec& spec() const { return resolved_.spec; }
  const method::StrategyOptions& strategy_options() const { return resolved_.strategy; }
  const std::vector<JobExpert>& experts() const { return experts_; }
  const method::LatentShape& shape() const { return shape_; }
  const std::string& latent_space_id() const { return latent_space_id_; }
  protocol::JobState state() const { return state_; }
  const std::string& reason() const { return reason_; }
  uint32_t steps_done() const { return steps_done_; }
  uint32_t total_steps() const { return static_cast<uint32_t>(timesteps_.size()); }
  const std::vector<int>& timesteps() const { return timesteps_; }
  bool finished() const;

  // queued -> running: draws x_T and returns step 0's requests.
  std::vector<Outgoing> Start(SteadyClock::time_point now, int step_deadline_ms);

  // A worker's reply. Stale replies (another step or attempt) are ignored. Returns the next
  // requests (the guidance round, or the next step's fan-out) when this reply completed a round.
  std::vector<Outgoing> OnStepReply(const std::string& peer, const protocol::StepReply& reply,
                                    SteadyClock::time_point now);
  std::vector<Outgoing> OnGuidanceReply(const std::string& peer,
                                        const protocol::GuidanceReply& reply,
                                        SteadyClock::time_point now);
  // The worker reported an error for this job's current round: the job fails with it.
  void OnWorkerError(const std::string& peer, const protocol::ErrorReply& error);
  // A worker the job uses went offline (or its registration was replaced): the job fails.
  void OnWorkerLost(const std::string& peer, const std::string& why);
  // Fails the job when its current round is past its deadline.
  void CheckDeadline(SteadyClock::time_point now);
  // -> cancelled (queued or running), effective before the next step's fan-out.
  void Cancel(const std::string& why);
  // -> failed with `why` (e.g. results could not be written).
  void Fail(const std::string& why);
  // -> succeeded; called by the server once the results are written.
  void MarkSucceeded();
  // Frees what only a running job needs (the latent, the strategy and its allocation, the
  // experts' replies and gradients, the allocation snapshots) once the job has finished and its
  // results are written. What a status reply needs stays: state, reason, steps, records, times.
  // The coordinator keeps finished jobs for `dnd status` (CoordinatorOptions::
  // keep_finished_jobs); without this, each kept its working buffers (megabytes on a 64x64
  // frame) while it stayed.
  // After it, latent(), allocation() and snapshots() must not be used (DND_CHECK). A job that has
  // not finished is a bug (DND_CHECK).
  void ReleaseWorkingMemory();
  bool released() const { return released_; }
  // Bytes of the larger buffers ReleaseWorkingMemory frees (the latent, Q, the replies, the
  // gradients, the snapshots; not the strategy's scratch): capacities, 0 after it.
  size_t WorkingBytes() const;

  // Timestamps (unix ms) for status replies.
  int64_t submitted_unix_ms = 0;
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  // Estimated remaining time from the mean step time so far; -1 before the first step.
  int64_t EtaMillis(SteadyClock::time_point now) const;

  // Results (valid once all steps are done).
  bool all_steps_done() const { return steps_done_ == total_steps() && !timesteps_.empty(); }
  const std::vector<float>& latent() const;
  const method::Allocation& allocation() const;
  const std::vector<StepRecord>& records() const { return records_; }
  // Allocation snapshots for the evolution strip: (step index, Q) about every total/8 steps + last.
  const std::vector<std::pair<uint32_t, std::vector<double>>>& snapshots() const;
  double total_coordinator_ms() const { return total_coordinator_ms_; }

 private:
  Job() = default;
  int ExpertIndex(const std::string& peer) const;
  std::vector<Outgoing> FanOutStep(SteadyClock::time_point now);
  std::vector<Outgoing> FinishStepRound(SteadyClock::time_point now);
  std::vector<Outgoing> CompleteStep(SteadyClock::time_point now);
  // Region-centred views (docs/method.md decision 13): each expert's shift for the next step,
  // from the allocation just used.
  void UpdateViews(const method::Allocation& q);

  std::string id_;
  ResolvedSpec resolved_;
  std::vector<JobExpert> experts_;
  method::LatentShape shape_;
  std::string latent_space_id_;
  method::NoiseSchedule schedule_ = method::NoiseSchedule::Create({}).value();
  std::unique_ptr<method::Strategy> strategy_;
  method::NormalGenerator generator_{0};
  std::vector<int> timesteps_;
  int step_deadline_ms_ = 60000;

  protocol::JobState state_ = protocol::JobState::kQueued;
  std::string reason_;
  uint32_t steps_done_ = 0;
  uint32_t attempt_ = 0;
  enum class Round { kNone, kStep, kGuidance } round_ = Round::kNone;
  SteadyClock::time_point round_started_;
  SteadyClock::time_point round_deadline_;
  SteadyClock::time_point first_step_started_;
  method::StepCoefficients coefficients_;

  std::vector<float> x_;  // x_t, C*H*W
  // Each expert's view of x_t for the coming step (zero = the frame as it is).
  std::vector<method::ViewShift> views_;
  std::vector<protocol::StepReply> step_replies_;
  std::vector<bool> have_step_reply_;
  std::vector<std::vector<float>> gradients_;
  std::vector<bool> have_gradient_;
  StepRecord current_;
  std::vector<StepRecord> records_;
  std::vector<std::pair<uint32_t, std::vector<double>>> snapshots_;
  double total_coordinator_ms_ = 0;
  bool released_ = false;
};

}  // namespace dnd::coordinator

#endif  // DND_COORDINATOR_SERVICE_JOB_H_
