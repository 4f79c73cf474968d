// Region-centred views in the job's step loop (docs/method.md decision 13), driven without
// sockets: the test plays two workers whose outputs are pointwise functions of the latent they
// are sent, so they commute with any circular translation. For such experts a view only relabels
// positions, and a job with views must end on exactly the latent of a job without them; any
// mistake in moving the latent, the predictions, the utilities, the guidance weights or the
// gradients between a view and the frame breaks the equality. The test also checks that the views
// were really used: shifts are recorded and the latents sent differ from the frame.
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "coordinator/method/views.h"
#include "coordinator/service/coordinator_server.h"
#include "coordinator/service/job.h"
#include "coordinator/service/job_spec.h"
#include "protocol/messages.h"

namespace dnd::coordinator {
namespace {

constexpr int kChannels = 2, kHeight = 12, kWidth = 12;

// Expert `which` (0 or 1): predictions, utility and guidance gradient, position by position.
protocol::StepReply Answer(int which, const protocol::StepRequest& request) {
  const std::vector<float>& x = request.latent.f32;
  const size_t m = static_cast<size_t>(kHeight) * kWidth;
  std::vector<float> cond(x.size()), uncond(x.size()), utility(m);
  for (size_t k = 0; k < x.size(); ++k) {
    cond[k] = which == 0 ? std::tanh(x[k]) : 0.8f * std::tanh(0.5f * x[k]);
    uncond[k] = which == 0 ? 0.5f * std::tanh(x[k]) : 0.1f * std::tanh(x[k]);
  }
  // Expert 0 wants where channel 0 is high, expert 1 where it is low: random, uneven regions.
  for (size_t j = 0; j < m; ++j) {
    utility[j] = 1.0f / (1.0f + std::exp((which == 0 ? -2.0f : 2.0f) * x[j]));
  }
  protocol::StepReply reply;
  reply.job_id = request.job_id;
  reply.step_index = request.step_index;
  reply.attempt = request.attempt;
  reply.prediction_cond = protocol::MakeFloatTensor({kChannels, kHeight, kWidth}, cond);
  reply.prediction_uncond = protocol::MakeFloatTensor({kChannels, kHeight, kWidth}, uncond);
  reply.utility = protocol::MakeFloatTensor({kHeight, kWidth}, utility);
  return reply;
}

protocol::GuidanceReply Gradient(int which, const std::vector<float>& latent,
                                 const protocol::GuidanceRequest& request) {
  const size_t m = static_cast<size_t>(kHeight) * kWidth;
  std::vector<float> g(latent.size());
  for (size_t k = 0; k < latent.size(); ++k) {
    g[k] = request.weights.f32[k % m] * (which == 0 ? std::tanh(latent[k]) : std::sin(latent[k]));
  }
  protocol::GuidanceReply reply;
  reply.job_id = request.job_id;
  reply.step_index = request.step_index;
  reply.attempt = request.attempt;
  reply.gradient = protocol::MakeFloatTensor({kChannels, kHeight, kWidth}, std::move(g));
  return reply;
}

struct JobRun {
  std::vector<float> latent;
  std::vector<StepRecord> records;
  int latents_unlike_the_frame = 0;  // step requests whose latent was not the frame's
  std::unique_ptr<Job> job;          // all steps done, not yet marked succeeded
};

JobRun RunJob(double view_gain) {
  JobDefaults defaults;
  defaults.view_gain = view_gain;
  defaults.view_max_shift = 5;
  protocol::JobSpec spec;
  spec.experts = {{"a", "x", 1.0f}, {"b", "y", 1.0f}};
  spec.strategy = protocol::Strategy::kDnd;
  spec.fairness.proportional = true;
  spec.utility = protocol::UtilityKind::kAttention;
  spec.steps = 8;
  spec.seed = 11;
  spec = ApplyDefaults(spec, defaults);
  ResolvedSpec resolved;
  resolved.spec = spec;
  resolved.strategy.kind = method::StrategyKind::kDivideAndDenoise;
  resolved.strategy.allocation.beta = spec.beta;
  resolved.strategy.allocation.rho = spec.fairness.rho;
  resolved.strategy.allocation.fairness = method::kFairnessProportional;
  resolved.strategy.gamma = 0.05;  // strong enough that the gradients matter
  resolved.strategy.guidance_outside = spec.guidance_outside;
  resolved.strategy.view_gain = defaults.view_gain;
  resolved.strategy.view_max_shift = defaults.view_max_shift;
  std::vector<JobExpert> experts(2);
  experts[0].expert_name = "a";
  experts[0].concept_name = "x";
  experts[0].peer = "pa";
  experts[1].expert_name = "b";
  experts[1].concept_name = "y";
  experts[1].peer = "pb";
  auto job = Job::Create("job", resolved, experts, {kChannels, kHeight, kWidth}, "test-space");
  EXPECT_TRUE(job.ok()) << job.status().ToString();
  if (!job.ok()) return {};

  JobRun run;
  const auto now = SteadyClock::now();
  std::map<std::string, std::vector<float>> sent;  // each worker's latent of the current step
  std::vector<Outgoing> pending = (*job)->Start(now, 60000);
  while (!pending.empty()) {
    std::vector<Outgoing> next;
    for (const Outgoing& o : pending) {
      const int which = o.peer == "pa" ? 0 : 1;
      std::vector<Outgoing> more;
      if (const auto* step = std::get_if<protocol::StepRequest>(&o.message)) {
        sent[o.peer] = step->latent.f32;
        run.latents_unlike_the_frame += step->latent.f32 != (*job)->latent();
        more = (*job)->OnStepReply(o.peer, Answer(which, *step), now);
      } else if (const auto* guidance = std::get_if<protocol::GuidanceRequest>(&o.message)) {
        more = (*job)->OnGuidanceReply(o.peer, Gradient(which, sent[o.peer], *guidance), now);
      } else {
        ADD_FAILURE() << "unexpected message to " << o.peer;
      }
      next.insert(next.end(), more.begin(), more.end());
    }
    pending = std::move(next);
  }
  EXPECT_TRUE((*job)->all_steps_done()) << (*job)->reason();
  run.latent = (*job)->latent();
  run.records = (*job)->records();
  run.job = std::move(job).value();
  return run;
}

TEST(JobViews, ExpertsThatCommuteWithTranslationsGiveTheSameLatentWithAndWithoutViews) {
  const JobRun plain = RunJob(0.0);
  const JobRun viewed = RunJob(8.0);
  ASSERT_EQ(plain.latent.size(), static_cast<size_t>(kChannels * kHeight * kWidth));
  ASSERT_EQ(viewed.records.size(), 8u);

  // Without views every expert sees the frame; with them some saw it moved.
  EXPECT_EQ(plain.latents_unlike_the_frame, 0);
  EXPECT_GT(viewed.latents_unlike_the_frame, 0);
  int shifted = 0;
  for (const StepRecord& r : viewed.records) {
    ASSERT_EQ(r.view_shift.size(), 2u);
    for (const method::ViewShift& v : r.view_shift) {
      shifted += !v.IsZero();
      EXPECT_LE(std::abs(v.dy), 5);
      EXPECT_LE(std::abs(v.dx), 5);
    }
  }
  EXPECT_TRUE(viewed.records.front().view_shift[0].IsZero()) << "Q_T is uniform: no first shift";
  EXPECT_GT(shifted, 0);

  // ... and the same latent, bit for bit.
  int wrong = 0;
  for (size_t k = 0; k < plain.latent.size(); ++k) wrong += plain.latent[k] != viewed.latent[k];
  EXPECT_EQ(wrong, 0) << "of " << plain.latent.size() << " latent values";
}

// The coordinator keeps every finished job for `dnd status`; once its results are written it
// frees the job's working buffers (coordinator_server.cc, Finalise) and keeps only what status
// needs.
TEST(JobRelease, AFinishedJobFreesItsWorkingBuffersAndKeepsItsStatus) {
  JobRun run = RunJob(8.0);
  ASSERT_NE(run.job, nullptr);
  Job& job = *run.job;
  // Latent 2x12x12 floats, Q 3x144 doubles, two experts' replies and gradients, snapshots.
  const size_t latent_bytes = static_cast<size_t>(kChannels) * kHeight * kWidth * sizeof(float);
  EXPECT_GE(job.WorkingBytes(), 4 * latent_bytes);
  job.MarkSucceeded();
  job.ReleaseWorkingMemory();
  EXPECT_TRUE(job.released());
  EXPECT_EQ(job.WorkingBytes(), 0u);
  EXPECT_EQ(job.state(), protocol::JobState::kSucceeded);
  EXPECT_EQ(job.steps_done(), 8u);
  EXPECT_EQ(job.records().size(), 8u);
  EXPECT_EQ(job.records().back().share, run.records.back().share);
  // Late messages for a released job are dropped, not used.
  EXPECT_TRUE(job.OnStepReply("pa", protocol::StepReply{}, SteadyClock::now()).empty());
  job.Cancel("too late");
  EXPECT_EQ(job.state(), protocol::JobState::kSucceeded);
}

TEST(JobReleaseDeathTest, ReleasingARunningJobOrReadingAReleasedLatentIsABug) {
  JobRun run = RunJob(0.0);
  ASSERT_NE(run.job, nullptr);
  EXPECT_DEATH(run.job->ReleaseWorkingMemory(), "released while running");
  run.job->MarkSucceeded();
  run.job->ReleaseWorkingMemory();
  EXPECT_DEATH((void)run.job->latent(), "after ReleaseWorkingMemory");
}

}  // namespace
}  // namespace dnd::coordinator
