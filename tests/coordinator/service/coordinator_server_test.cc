// The coordinator service in-process with two exact-expert workers on loopback (the same sockets
// and code paths as a deployment): a full job through the client protocol, its result files and
// record, idempotent submission, bad specs refused with what is available, cancellation, and a
// job that fails when a worker stops answering while another job continues.
#include "coordinator/service/coordinator_server.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "protocol/codec.h"
#include "protocol/messages.h"
#include "protocol/transport.h"
#include "tests/support/subprocess.h"
#include "worker/experts/expert.h"
#include "worker/service/worker_server.h"

namespace dnd::coordinator {
namespace {

using protocol::ClientToCoordinator;
using protocol::CoordinatorToClient;

std::unique_ptr<experts::Expert> ExactExpert(const std::string& name,
                                             std::vector<std::string> concepts) {
  experts::ExpertConfig config;
  config.backend = "exact";
  config.name = name;
  config.model_path = std::string(experts::kDefaultFashionMnistDir);
  config.concepts = std::move(concepts);
  config.items_per_class = 8;
  auto expert = experts::CreateExpert(config);
  DND_CHECK(expert.ok()) << expert.status().ToString();
  return std::move(expert).value();
}

class Federation : public ::testing::Test {
 protected:
  void SetUp() override {
    context_ = std::move(protocol::TransportContext::Create()).value();
    data_dir_ = testing::MakeTempDir("dnd-coordinator-test-");
    CoordinatorOptions options;
    options.worker_endpoint = "tcp://127.0.0.1:*";
    options.client_endpoint = "tcp://127.0.0.1:*";
    options.worker_security = protocol::SecurityOptions::Plain();
    options.client_security = protocol::SecurityOptions::Plain();
    options.data_dir = data_dir_;
    options.max_concurrent_jobs = 2;
    options.step_deadline_ms = 3000;
    options.heartbeat_interval_ms = 200;
    options.worker_liveness_ms = 1500;
    Adjust(options);
    coordinator_ = std::move(CoordinatorServer::Create(options, *context_)).value();
    coordinator_thread_ = std::thread([this] { EXPECT_TRUE(coordinator_->Run().ok()); });
    endpoints_ = coordinator_->WaitUntilBound(std::chrono::seconds(10)).value();
    AddWorker("footwear", {"sandal", "sneaker", "ankle_boot"});
    AddWorker("rest", {"trouser", "dress", "bag"});
    client_ = std::move(protocol::DealerSocket::Connect(*context_, endpoints_.client,
                                                        protocol::SecurityOptions::Plain()))
                  .value();
    WaitForExperts(2);
  }

  // Lets a derived fixture change the coordinator's options and the workers'.
  virtual void Adjust(CoordinatorOptions&) {}
  virtual void AdjustWorker(const std::string& /*name*/, worker::WorkerOptions&) {}

  void TearDown() override {
    client_.reset();
    for (auto& w : workers_) w->RequestStop();
    for (auto& t : worker_threads_) t.join();
    coordinator_->RequestStop();
    coordinator_thread_.join();
  }

  void AddWorker(const std::string& name, std::vector<std::string> concepts) {
    worker::WorkerOptions options;
    options.coordinator_endpoint = endpoints_.worker;
    options.security = protocol::SecurityOptions::Plain();
    options.organisation = name + "-org";
    options.heartbeat_interval_ms = 200;
    AdjustWorker(name, options);
    workers_.push_back(std::move(worker::WorkerServer::Create(
                                     options, ExactExpert(name, std::move(concepts)), *context_))
                           .value());
    worker::WorkerServer* w = workers_.back().get();
    worker_threads_.emplace_back([w] { EXPECT_TRUE(w->Run().ok()); });
  }

  CoordinatorToClient Ask(const ClientToCoordinator& request) {
    EXPECT_TRUE(client_->Send(protocol::Encode(request)).ok());
    return Reply();
  }

  CoordinatorToClient Reply(int timeout_ms = 20000) {
    auto payload = client_->Receive(timeout_ms);
    if (!payload.ok()) {
      ADD_FAILURE() << "no reply: " << payload.status().ToString();
      return protocol::ErrorReply{};
    }
    auto decoded = protocol::DecodeCoordinatorToClient(protocol::AsBytes(*payload));
    EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
    return decoded.ok() ? *decoded : protocol::ErrorReply{};
  }

  void WaitForExperts(size_t n) {
    for (int i = 0; i < 200; ++i) {
      auto reply = Ask(protocol::ListExperts{});
      auto* list = std::get_if<protocol::ExpertList>(&reply);
      if (list != nullptr && list->experts.size() == n) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "experts did not register";
  }

  static protocol::JobSpec TwoExpertSpec(uint32_t steps) {
    protocol::JobSpec spec;
    spec.experts = {{"footwear", "sneaker", 1.0f}, {"rest", "bag", 1.0f}};
    spec.strategy = protocol::Strategy::kDnd;
    spec.fairness.proportional = true;
    spec.utility = protocol::UtilityKind::kAttention;
    spec.steps = steps;
    spec.seed = 7;
    return spec;
  }

  std::string Submit(const protocol::JobSpec& spec, const std::string& token = "") {
    auto reply = Ask(protocol::SubmitJob{.client_token = token, .spec = spec});
    auto* submitted = std::get_if<protocol::SubmitReply>(&reply);
    if (submitted == nullptr) {
      auto* e = std::get_if<protocol::ErrorReply>(&reply);
      ADD_FAILURE() << "submit refused: " << (e ? e->message : "?");
      return "";
    }
    return submitted->job_id;
  }

  // Watches the job to its end; returns the final event and counts the events seen.
  protocol::ProgressEvent WatchToEnd(const std::string& job, int* events) {
    EXPECT_TRUE(client_->Send(protocol::Encode(protocol::Watch{.job_id = job})).ok());
    for (;;) {
      auto m = Reply(60000);
      auto* e = std::get_if<protocol::ProgressEvent>(&m);
      if (e == nullptr) {
        ADD_FAILURE() << "watch ended without a final event";
        return {};
      }
      ++*events;
      if (e->state != protocol::JobState::kQueued && e->state != protocol::JobState::kRunning) {
        return *e;
      }
    }
  }

  // Runs `spec` to its end and returns its record.json and latent.npy (empty when it failed).
  std::pair<nlohmann::json, std::vector<uint8_t>> RunToResults(const protocol::JobSpec& spec) {
    const std::string job = Submit(spec);
    if (job.empty()) return {};
    int events = 0;
    const protocol::ProgressEvent last = WatchToEnd(job, &events);
    EXPECT_EQ(last.state, protocol::JobState::kSucceeded) << last.message;
    auto fetched = Ask(protocol::FetchResult{.job_id = job});
    auto* files = std::get_if<protocol::ResultFiles>(&fetched);
    if (files == nullptr) {
      ADD_FAILURE() << "no results for " << job;
      return {};
    }
    std::pair<nlohmann::json, std::vector<uint8_t>> out;
    for (const auto& f : files->files) {
      if (f.name == "record.json") {
        out.first = nlohmann::json::parse(std::string(f.data.begin(), f.data.end()));
      } else if (f.name == "latent.npy") {
        out.second = f.data;
      }
    }
    return out;
  }

  std::unique_ptr<protocol::TransportContext> context_;
  std::string data_dir_;
  std::unique_ptr<CoordinatorServer> coordinator_;
  std::thread coordinator_thread_;
  BoundEndpoints endpoints_;
  std::vector<std::unique_ptr<worker::WorkerServer>> workers_;
  std::vector<std::thread> worker_threads_;
  std::unique_ptr<protocol::DealerSocket> client_;
};

TEST_F(Federation, ListsTheRegisteredExperts) {
  auto reply = Ask(protocol::ListExperts{});
  const auto& experts = std::get<protocol::ExpertList>(reply).experts;
  ASSERT_EQ(experts.size(), 2u);
  EXPECT_EQ(experts[0].expert_name, "footwear");
  EXPECT_EQ(experts[0].organisation, "footwear-org");
  EXPECT_EQ(experts[0].concepts, (std::vector<std::string>{"sandal", "sneaker", "ankle_boot"}));
  EXPECT_TRUE(experts[0].alive);
  EXPECT_EQ(experts[1].expert_name, "rest");
}

TEST_F(Federation, RunsATwoExpertJobAndWritesItsResults) {
  const std::string job = Submit(TwoExpertSpec(8), "token-1");
  ASSERT_FALSE(job.empty());
  // The same client token returns the same job (idempotent submission).
  EXPECT_EQ(Submit(TwoExpertSpec(8), "token-1"), job);
  int events = 0;
  protocol::ProgressEvent last = WatchToEnd(job, &events);
  ASSERT_EQ(last.state, protocol::JobState::kSucceeded) << last.message;
  EXPECT_EQ(last.step, 8u);
  EXPECT_GE(events, 2);

  auto fetched = Ask(protocol::FetchResult{.job_id = job});
  auto* files = std::get_if<protocol::ResultFiles>(&fetched);
  ASSERT_NE(files, nullptr);
  std::vector<std::string> names;
  for (const auto& f : files->files) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"image.png", "allocation.png", "allocation_steps.png",
                                             "latent.npy", "record.json"}));
  for (const auto& f : files->files) {
    if (f.name.ends_with(".png")) {
      ASSERT_GE(f.data.size(), 8u);
      EXPECT_EQ(f.data[1], 'P');  // \x89PNG
      EXPECT_EQ(f.data[2], 'N');
    }
  }
  ASSERT_EQ(files->files.size(), 5u);
  const auto record =
      nlohmann::json::parse(std::string(files->files[4].data.begin(), files->files[4].data.end()));
  EXPECT_EQ(record["state"], "succeeded");
  EXPECT_EQ(record["image"]["source"], "pixels");  // the exact experts work in pixel space
  EXPECT_EQ(files->files[3].data.size(), 128u + 64 * 64 * 4) << "latent.npy: header + 1x64x64";
  EXPECT_EQ(record["seed"], 7);
  EXPECT_EQ(record["spec"]["strategy"], "dnd");
  // Unset in the spec: the coordinator's default weight of guidance outside each expert's region.
  EXPECT_EQ(record["spec"]["guidance_outside"], JobDefaults{}.guidance_outside);
  EXPECT_EQ(record["utility_smoothing"], 2.0);  // the coordinator's default blur of utility maps
  EXPECT_EQ(record["views"]["gain"], JobDefaults{}.view_gain);  // region-centred views
  EXPECT_EQ(record["views"]["max_shift"], JobDefaults{}.view_max_shift);
  EXPECT_EQ(record["views"]["min_separation"], JobDefaults{}.view_min_separation);
  EXPECT_EQ(record["views"]["reference_size"], JobDefaults{}.view_reference_size);
  ASSERT_EQ(record["steps"].size(), 8u);
  for (const auto& step : record["steps"]) {
    // Shares of the two experts and the fictitious player sum to 1.
    double total = 0;
    for (double s : step["share"]) total += s;
    EXPECT_NEAR(total, 1.0, 1e-6);
    EXPECT_EQ(step["step_latency_ms"].size(), 2u);
    EXPECT_EQ(step["guidance_latency_ms"].size(), 2u);  // guidance is on by default
    ASSERT_EQ(step["view_shift"].size(), 2u);           // (dy, dx) of each expert's view
    // The largest shift is given for a 16-position frame: on this 64x64 latent it is 4 times as
    // many positions (decision 15).
    const int largest = JobDefaults{}.view_max_shift * 64 / JobDefaults{}.view_reference_size;
    for (const auto& shift : step["view_shift"]) {
      ASSERT_EQ(shift.size(), 2u);
      EXPECT_LE(std::abs(shift[0].get<int>()), largest);
      EXPECT_LE(std::abs(shift[1].get<int>()), largest);
    }
  }
  // Proportional fairness (rho = 1, n = 2): each expert gets at least half of its own utility at
  // the last step, within the solver's tolerance.
  const auto& final_step = record["steps"][7];
  for (int i = 0; i < 2; ++i) {
    EXPECT_GE(final_step["utility"][i].get<double>(),
              final_step["fair_share"][i].get<double>() - 1e-4);
  }
  EXPECT_TRUE(
      std::filesystem::exists(std::filesystem::path(data_dir_) / "jobs" / job / "image.png"));
}

// A coordinator that keeps only the 2 newest finished jobs in memory.
class FederationKeepingTwo : public Federation {
 protected:
  void Adjust(CoordinatorOptions& options) override { options.keep_finished_jobs = 2; }
};

TEST_F(FederationKeepingTwo, DropsTheOldestFinishedJobsFromMemoryAndStillServesTheirResults) {
  std::vector<std::string> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(Submit(TwoExpertSpec(2), "token-" + std::to_string(i)));
    ASSERT_FALSE(jobs.back().empty());
    int events = 0;
    ASSERT_EQ(WatchToEnd(jobs.back(), &events).state, protocol::JobState::kSucceeded);
  }
  // Status lists the two newest.
  auto listed = Ask(protocol::GetStatus{});
  auto* statuses = std::get_if<protocol::StatusReply>(&listed);
  ASSERT_NE(statuses, nullptr);
  std::vector<std::string> ids;
  for (const auto& s : statuses->jobs) ids.push_back(s.job_id);
  EXPECT_EQ(ids, (std::vector<std::string>{jobs[1], jobs[2]}));
  // The first: no status, a message that says why and where its results are ...
  auto asked = Ask(protocol::GetStatus{.job_id = jobs[0]});
  auto* error = std::get_if<protocol::ErrorReply>(&asked);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, StatusCode::kNotFound);
  EXPECT_NE(error->message.find("no longer held in memory"), std::string::npos) << error->message;
  EXPECT_NE(error->message.find("keeps the last 2"), std::string::npos) << error->message;
  // ... and its results, from disk.
  auto fetched = Ask(protocol::FetchResult{.job_id = jobs[0]});
  auto* files = std::get_if<protocol::ResultFiles>(&fetched);
  ASSERT_NE(files, nullptr);
  EXPECT_EQ(files->files.size(), 5u);
  // A job that never existed is still plainly unknown.
  auto unknown = Ask(protocol::GetStatus{.job_id = "j-999999"});
  auto* unknown_error = std::get_if<protocol::ErrorReply>(&unknown);
  ASSERT_NE(unknown_error, nullptr);
  EXPECT_EQ(unknown_error->message.find("no longer held"), std::string::npos);
  // Its client token went with it (a new job); the kept jobs' tokens still hold.
  EXPECT_EQ(Submit(TwoExpertSpec(2), "token-2"), jobs[2]);
  const std::string again = Submit(TwoExpertSpec(2), "token-0");
  EXPECT_FALSE(again.empty());
  EXPECT_NE(again, jobs[0]);
}

// The owner of `rest` serves it with guidance scale 10 (dnd-worker --guidance-scale 10).
class FederationWithAnOwnersScale : public Federation {
 protected:
  void AdjustWorker(const std::string& name, worker::WorkerOptions& options) override {
    if (name == "rest") options.guidance_scale = 10.0;
  }
};

TEST_F(FederationWithAnOwnersScale, JobsThatSetNoScaleUseTheOwnersAndOthersTheirOwn) {
  auto listed = Ask(protocol::ListExperts{});
  const auto& experts = std::get<protocol::ExpertList>(listed).experts;
  ASSERT_EQ(experts.size(), 2u);
  EXPECT_EQ(experts[0].guidance_scale, 0.0f);  // footwear declares none
  EXPECT_EQ(experts[1].guidance_scale, 10.0f);
  const float fallback = JobDefaults{}.cfg_scale;
  ASSERT_EQ(fallback, 5.0f) << "the weights below assume the default scale 5";

  // No scale in the spec: rest samples with its owner's 10, footwear with the default.
  protocol::JobSpec owners = TwoExpertSpec(4);
  const auto [owners_record, owners_latent] = RunToResults(owners);
  ASSERT_FALSE(owners_latent.empty());
  EXPECT_EQ(owners_record["experts"][0]["guidance_scale"], fallback);
  EXPECT_EQ(owners_record["experts"][1]["guidance_scale"], 10.0);

  // The same scales reached through the job's own numbers (5 for all, rest's weight 2) give the
  // same image, to the bit: the owner's scale is what the sampler used.
  protocol::JobSpec weighted = TwoExpertSpec(4);
  weighted.cfg_scale = 5.0f;
  weighted.experts[1].weight = 2.0f;
  const auto [weighted_record, weighted_latent] = RunToResults(weighted);
  EXPECT_EQ(weighted_record["experts"][1]["guidance_scale"], 10.0);
  EXPECT_EQ(weighted_latent, owners_latent);

  // A scale in the spec applies to every expert, the owner's one included (times its weight).
  protocol::JobSpec explicit_scale = TwoExpertSpec(4);
  explicit_scale.cfg_scale = 5.0f;
  const auto [explicit_record, explicit_latent] = RunToResults(explicit_scale);
  EXPECT_EQ(explicit_record["experts"][0]["guidance_scale"], 5.0);
  EXPECT_EQ(explicit_record["experts"][1]["guidance_scale"], 5.0);
  ASSERT_FALSE(explicit_latent.empty());
  EXPECT_NE(explicit_latent, owners_latent);
}

TEST_F(Federation, RefusesBadSpecsSayingWhatIsAvailable) {
  protocol::JobSpec unknown_expert = TwoExpertSpec(4);
  unknown_expert.experts[1].expert_name = "cats";
  auto r1 = Ask(protocol::SubmitJob{.client_token = "", .spec = unknown_expert});
  auto* e1 = std::get_if<protocol::ErrorReply>(&r1);
  ASSERT_NE(e1, nullptr);
  EXPECT_EQ(e1->code, StatusCode::kNotFound);
  EXPECT_NE(e1->message.find("footwear (sandal, sneaker, ankle_boot)"), std::string::npos)
      << e1->message;

  protocol::JobSpec unknown_concept = TwoExpertSpec(4);
  unknown_concept.experts[0].concept_name = "bag";
  auto r2 = Ask(protocol::SubmitJob{.client_token = "", .spec = unknown_concept});
  auto* e2 = std::get_if<protocol::ErrorReply>(&r2);
  ASSERT_NE(e2, nullptr);
  EXPECT_EQ(e2->code, StatusCode::kInvalidArgument);
  EXPECT_NE(e2->message.find("it knows: sandal, sneaker, ankle_boot"), std::string::npos)
      << e2->message;

  protocol::JobSpec bad_numbers = TwoExpertSpec(4);
  bad_numbers.gamma = 50;
  auto r3 = Ask(protocol::SubmitJob{.client_token = "", .spec = bad_numbers});
  auto* e3 = std::get_if<protocol::ErrorReply>(&r3);
  ASSERT_NE(e3, nullptr);
  EXPECT_EQ(e3->code, StatusCode::kInvalidArgument);
  EXPECT_NE(e3->message.find("gamma"), std::string::npos) << e3->message;

  protocol::JobSpec bad_outside = TwoExpertSpec(4);
  bad_outside.guidance_outside = 1.5;  // a weight in [0, 1]; negative is "default"
  auto r5 = Ask(protocol::SubmitJob{.client_token = "", .spec = bad_outside});
  auto* e5 = std::get_if<protocol::ErrorReply>(&r5);
  ASSERT_NE(e5, nullptr);
  EXPECT_EQ(e5->code, StatusCode::kInvalidArgument);
  EXPECT_NE(e5->message.find("guidance outside = 1.5"), std::string::npos) << e5->message;

  auto r4 = Ask(protocol::GetStatus{.job_id = "j-999999"});
  auto* e4 = std::get_if<protocol::ErrorReply>(&r4);
  ASSERT_NE(e4, nullptr);
  EXPECT_EQ(e4->code, StatusCode::kNotFound);
}

TEST_F(Federation, CancelStopsARunningJobWithinAStep) {
  const std::string job = Submit(TwoExpertSpec(200));
  ASSERT_FALSE(job.empty());
  // Wait until it runs.
  for (int i = 0; i < 200; ++i) {
    auto s = Ask(protocol::GetStatus{.job_id = job});
    if (std::get<protocol::StatusReply>(s).jobs[0].step >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto cancelled = Ask(protocol::Cancel{.job_id = job});
  ASSERT_TRUE(std::holds_alternative<protocol::CancelReply>(cancelled));
  EXPECT_TRUE(std::get<protocol::CancelReply>(cancelled).accepted);
  auto s1 = std::get<protocol::StatusReply>(Ask(protocol::GetStatus{.job_id = job})).jobs[0];
  EXPECT_EQ(s1.state, protocol::JobState::kCancelled);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto s2 = std::get<protocol::StatusReply>(Ask(protocol::GetStatus{.job_id = job})).jobs[0];
  EXPECT_EQ(s2.step, s1.step) << "steps went on after the cancel";
  EXPECT_LT(s2.step, 200u);
}

TEST_F(Federation, AJobFailsWhenItsWorkerStopsAnsweringAndOthersContinue) {
  // A third expert whose worker will stop: its job must fail with the reason; a job of the other
  // two experts, submitted at the same time, must still succeed.
  AddWorker("tops", {"t_shirt", "pullover", "coat", "shirt"});
  WaitForExperts(3);
  protocol::JobSpec doomed = TwoExpertSpec(300);
  doomed.experts[1] = {"tops", "coat", 1.0f};
  const std::string doomed_id = Submit(doomed);
  const std::string healthy_id = Submit(TwoExpertSpec(6));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  workers_.back()->RequestStop();
  int events = 0;
  protocol::ProgressEvent doomed_end = WatchToEnd(doomed_id, &events);
  EXPECT_EQ(doomed_end.state, protocol::JobState::kFailed);
  EXPECT_NE(doomed_end.message.find("tops"), std::string::npos) << doomed_end.message;
  protocol::ProgressEvent healthy_end = WatchToEnd(healthy_id, &events);
  EXPECT_EQ(healthy_end.state, protocol::JobState::kSucceeded) << healthy_end.message;
}

// A hand-made worker on a raw socket: registers what the test says and then does what the test
// says (here: heart-beats but never answers a step, like a wedged model).
class FakeWorker {
 public:
  FakeWorker(protocol::TransportContext& context, const std::string& endpoint,
             protocol::WorkerHello hello)
      : socket_(std::move(protocol::DealerSocket::Connect(context, endpoint,
                                                          protocol::SecurityOptions::Plain()))
                    .value()) {
    EXPECT_TRUE(socket_->Send(protocol::Encode(protocol::WorkerToCoordinator(hello))).ok());
  }
  // Answers nothing but heartbeats for `duration`; returns how many step requests it ignored.
  int HeartbeatOnly(std::chrono::milliseconds duration) {
    int ignored = 0;
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      EXPECT_TRUE(socket_
                      ->Send(protocol::Encode(protocol::WorkerToCoordinator(
                          protocol::Heartbeat{.sent_unix_millis = 0, .in_flight = 0})))
                      .ok());
      auto m = socket_->Receive(100);
      if (!m.ok()) continue;
      auto decoded = protocol::DecodeCoordinatorToWorker(protocol::AsBytes(*m));
      if (decoded.ok() && std::holds_alternative<protocol::StepRequest>(*decoded)) ++ignored;
    }
    return ignored;
  }

 private:
  std::unique_ptr<protocol::DealerSocket> socket_;
};

protocol::WorkerHello FakeHello(const std::string& name, std::vector<uint32_t> shape,
                                const std::string& space) {
  protocol::WorkerHello hello;
  hello.expert_name = name;
  hello.organisation = name + "-org";
  hello.latent_space_id = space;
  hello.latent_shape = std::move(shape);
  hello.concepts = {"cat"};
  hello.utilities = {protocol::UtilityKind::kScore, protocol::UtilityKind::kAttention};
  return hello;
}

TEST_F(Federation, RefusesExpertsOfDifferentLatentSpaces) {
  FakeWorker cats(*context_, endpoints_.worker, FakeHello("cats", {4, 16, 16}, "sd-vae-16"));
  WaitForExperts(3);
  protocol::JobSpec spec = TwoExpertSpec(4);
  spec.experts[1] = {"cats", "cat", 1.0f};
  auto reply = Ask(protocol::SubmitJob{.client_token = "", .spec = spec});
  auto* error = std::get_if<protocol::ErrorReply>(&reply);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, StatusCode::kInvalidArgument);
  EXPECT_NE(error->message.find("different latent spaces"), std::string::npos) << error->message;
  EXPECT_NE(error->message.find("4x16x16"), std::string::npos) << error->message;
}

TEST_F(Federation, AJobFailsAfterItsDeadlineWhenAWorkerStopsAnswering) {
  FakeWorker wedged(*context_, endpoints_.worker,
                    FakeHello("wedged", {1, 64, 64}, "fashion-mnist-1x64x64"));
  WaitForExperts(3);
  protocol::JobSpec spec = TwoExpertSpec(4);
  spec.experts[1] = {"wedged", "cat", 1.0f};
  const std::string job = Submit(spec);
  ASSERT_FALSE(job.empty());
  // The fake worker stays alive (heartbeats) but never answers: the 3 s step deadline fails it.
  EXPECT_GE(wedged.HeartbeatOnly(std::chrono::milliseconds(4000)), 1);
  auto status = std::get<protocol::StatusReply>(Ask(protocol::GetStatus{.job_id = job})).jobs[0];
  EXPECT_EQ(status.state, protocol::JobState::kFailed);
  EXPECT_NE(status.reason.find("expert 'wedged' (wedged-org) did not answer step 0 within 3000 ms"),
            std::string::npos)
      << status.reason;
}

}  // namespace
}  // namespace dnd::coordinator
