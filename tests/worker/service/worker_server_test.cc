// The worker process served over a loopback socket by a test coordinator: registration, a step and
// its guidance round compared with the same expert in-process, batching of concurrent jobs, each
// bad-input case answered with an error reply while the worker keeps serving, and a clean stop.
#include "worker/service/worker_server.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <signal.h>

#include "protocol/codec.h"
#include "protocol/curve_keys.h"
#include "protocol/messages.h"
#include "protocol/transport.h"
#include "tests/support/subprocess.h"
#include "worker/experts/expert.h"
#include "worker/service/request_batcher.h"

namespace dnd::worker {
namespace {

using protocol::CoordinatorToWorker;
using protocol::WorkerToCoordinator;

constexpr int kItemsPerClass = 8;
constexpr int kReceiveMs = 60000;  // generous: the worker loads Fashion-MNIST at start

experts::ExpertConfig FootwearConfig() {
  experts::ExpertConfig config;
  config.backend = "exact";
  config.name = "footwear";
  config.model_path = std::string(experts::kDefaultFashionMnistDir);
  config.concepts = {"sandal", "sneaker", "ankle_boot"};
  config.items_per_class = kItemsPerClass;
  return config;
}

// A deterministic latent: a smooth pattern plus noise-like variation, values in about [-1.5, 1.5].
std::vector<float> TestLatent(int seed) {
  std::vector<float> x(64 * 64);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + seed) +
                              0.5 * std::cos(0.011 * static_cast<double>(i * (seed + 3))));
  }
  return x;
}

protocol::StepRequest MakeStep(const std::string& job, uint32_t step, int seed,
                               const std::string& concept_name, bool want_guidance) {
  protocol::StepRequest r;
  r.job_id = job;
  r.step_index = step;
  r.attempt = 0;
  r.timestep = 501;
  r.prev_timestep = 481;
  r.alpha_cumprod = 0.274999067;
  r.latent = protocol::MakeFloatTensor({1, 64, 64}, TestLatent(seed));
  r.concept_name = concept_name;
  r.cfg_scale = 3.0f;
  r.utility = protocol::UtilityKind::kAttention;
  r.want_guidance = want_guidance;
  return r;
}

experts::StepInput AsInput(const protocol::StepRequest& r) {
  return {.latent = r.latent.f32,
          .timestep = r.timestep,
          .alpha_cumprod = r.alpha_cumprod,
          .concept_name = r.concept_name,
          .utility = ToExpertUtility(r.utility),
          .cfg_scale = r.cfg_scale};
}

// Returns the largest absolute difference, for the record in docs/worker.md.
double ExpectNear(const std::vector<float>& got, const std::vector<float>& want, double tol,
                  const std::string& what) {
  EXPECT_EQ(got.size(), want.size()) << what;
  if (got.size() != want.size()) return 1e300;
  size_t wrong = 0;
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(static_cast<double>(got[i]) - want[i]);
    worst = std::max(worst, d);
    if (d > tol * (1.0 + std::abs(want[i]))) ++wrong;
  }
  EXPECT_EQ(wrong, 0u) << what << ": worst difference " << worst;
  return worst;
}

// The test side of the link: a ROUTER on loopback and a dnd-worker process connected to it.
class WorkerProcessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto expert = experts::CreateExpert(FootwearConfig());
    ASSERT_TRUE(expert.ok()) << expert.status().ToString();
    reference_ = std::move(expert).value().release();
  }
  static void TearDownTestSuite() { delete reference_; }

  void SetUp() override {
    auto context = protocol::TransportContext::Create();
    ASSERT_TRUE(context.ok());
    context_ = std::move(context).value();
    auto router = protocol::RouterSocket::Bind(*context_, "tcp://127.0.0.1:*",
                                               protocol::SecurityOptions::Plain());
    ASSERT_TRUE(router.ok()) << router.status().ToString();
    router_ = std::move(router).value();
    dir_ = testing::MakeTempDir("dnd-worker-test-");
    worker_ = std::make_unique<testing::Subprocess>(
        std::vector<std::string>{DND_WORKER_BINARY, "--coordinator", router_->endpoint(), "--plain",
                                 "--name", "footwear", "--organisation", "acme-shoes", "--concepts",
                                 "sandal,sneaker,ankle_boot", "--items-per-class",
                                 std::to_string(kItemsPerClass), "--max-batch", "4",
                                 "--batch-wait-ms", "300", "--threads", "1",
                                 "--guidance-scale", "7.5"},
        dir_ + "/worker.log");
    // Registration.
    WorkerToCoordinator first = Next();
    ASSERT_TRUE(std::holds_alternative<protocol::WorkerHello>(first));
    hello_ = std::get<protocol::WorkerHello>(first);
    Send(protocol::HelloAck{.accepted = true, .reason = "", .heartbeat_interval_millis = 500});
    registered_ = true;
  }

  void TearDown() override {
    if (worker_ != nullptr && HasFailure()) std::fprintf(stderr, "%s", worker_->Output().c_str());
  }

  void Send(const CoordinatorToWorker& message) {
    ASSERT_TRUE(router_->Send(peer_, protocol::Encode(message)).ok());
  }

  void SendRaw(const std::string& payload) { ASSERT_TRUE(router_->Send(peer_, payload).ok()); }

  // The next message from the worker that is not a heartbeat.
  WorkerToCoordinator Next() {
    for (;;) {
      auto routed = router_->Receive(kReceiveMs);
      if (!routed.ok()) {
        ADD_FAILURE() << "no message from the worker: " << routed.status().ToString() << "\n"
                      << worker_->Output();
        return protocol::Goodbye{.reason = "test: nothing received"};
      }
      peer_ = routed->peer;
      auto decoded = protocol::DecodeWorkerToCoordinator(protocol::AsBytes(routed->payload));
      if (!decoded.ok()) {
        ADD_FAILURE() << "undecodable message: " << decoded.status().ToString();
        continue;
      }
      if (std::holds_alternative<protocol::Heartbeat>(*decoded)) {
        // A coordinator answers heartbeats; a worker that hears nothing registers again. The
        // answer may find the worker gone (a heartbeat sent just before its goodbye): not an error.
        ++heartbeats_;
        (void)router_->Send(peer_, protocol::Encode(CoordinatorToWorker{
                                       protocol::Heartbeat{.sent_unix_millis = 0, .in_flight = 0}}));
        continue;
      }
      if (registered_ && std::holds_alternative<protocol::WorkerHello>(*decoded)) {
        ADD_FAILURE() << "the worker registered again although the coordinator answered";
        Send(protocol::HelloAck{.accepted = true, .reason = "", .heartbeat_interval_millis = 500});
        continue;
      }
      return *decoded;
    }
  }

  template <typename T>
  T NextAs() {
    WorkerToCoordinator m = Next();
    if (!std::holds_alternative<T>(m)) {
      if (auto* e = std::get_if<protocol::ErrorReply>(&m)) {
        ADD_FAILURE() << "expected another message, got error " << e->ToStatus().ToString();
      } else {
        ADD_FAILURE() << "unexpected message kind " << m.index();
      }
      return T{};
    }
    return std::get<T>(m);
  }

  static experts::Expert* reference_;
  std::unique_ptr<protocol::TransportContext> context_;
  std::unique_ptr<protocol::RouterSocket> router_;
  std::unique_ptr<testing::Subprocess> worker_;
  std::string dir_;
  std::string peer_;
  protocol::WorkerHello hello_;
  int heartbeats_ = 0;
  bool registered_ = false;
};

experts::Expert* WorkerProcessTest::reference_ = nullptr;

TEST_F(WorkerProcessTest, RegistersWhatItServes) {
  EXPECT_EQ(hello_.protocol_version, protocol::kProtocolVersion);
  EXPECT_EQ(hello_.expert_name, "footwear");
  EXPECT_EQ(hello_.organisation, "acme-shoes");
  EXPECT_EQ(hello_.latent_shape, (std::vector<uint32_t>{1, 64, 64}));
  EXPECT_EQ(hello_.concepts, (std::vector<std::string>{"sandal", "sneaker", "ankle_boot"}));
  EXPECT_EQ(hello_.max_batch, 4u);
  EXPECT_EQ(hello_.latent_space_id, reference_->Describe().latent.id);
  EXPECT_EQ(hello_.guidance_scale, 7.5f);  // its owner's --guidance-scale
}

TEST_F(WorkerProcessTest, StepAndGuidanceMatchTheExpertInProcess) {
  protocol::StepRequest request = MakeStep("job-a", 3, 1, "sneaker", /*want_guidance=*/true);
  Send(request);
  protocol::StepReply reply = NextAs<protocol::StepReply>();
  EXPECT_EQ(reply.job_id, "job-a");
  EXPECT_EQ(reply.step_index, 3u);
  ASSERT_EQ(reply.prediction_cond.shape, (std::vector<uint32_t>{1, 64, 64}));
  ASSERT_EQ(reply.utility.shape, (std::vector<uint32_t>{64, 64}));

  std::vector<experts::StepInput> inputs = {AsInput(request)};
  auto want = reference_->Step(inputs);
  ASSERT_TRUE(want[0].ok()) << want[0].status().ToString();
  ExpectNear(reply.prediction_cond.f32, want[0]->prediction_cond, 1e-4, "conditional");
  ExpectNear(reply.prediction_uncond.f32, want[0]->prediction_uncond, 1e-4, "unconditional");
  ExpectNear(reply.utility.f32, want[0]->utility, 1e-4, "utility");
  double total = 0.0;
  for (float u : reply.utility.f32) {
    EXPECT_GE(u, 0.0f);
    total += u;
  }
  EXPECT_NEAR(total, 1.0, 1e-4);

  // Guidance for that step: the allocation gives the left half of the canvas to this expert.
  std::vector<float> weights(64 * 64, 0.0f);
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 32; ++x) weights[y * 64 + x] = 1.0f;
  }
  Send(protocol::GuidanceRequest{.job_id = "job-a",
                                 .step_index = 3,
                                 .attempt = 0,
                                 .weights = protocol::MakeFloatTensor({64, 64}, weights)});
  protocol::GuidanceReply guidance = NextAs<protocol::GuidanceReply>();
  ASSERT_EQ(guidance.gradient.shape, (std::vector<uint32_t>{1, 64, 64}));
  std::vector<experts::GradientInput> grad_inputs = {
      {.step = AsInput(request), .allocation = weights}};
  auto want_grad = reference_->Gradient(grad_inputs);
  ASSERT_TRUE(want_grad[0].ok()) << want_grad[0].status().ToString();
  ExpectNear(guidance.gradient.f32, *want_grad[0], 1e-3, "gradient");
}

TEST_F(WorkerProcessTest, ConcurrentJobsAreBatchedWithUnbatchedResults) {
  const std::vector<std::string> concepts = {"sandal", "sneaker", "ankle_boot", "sneaker"};
  std::vector<protocol::StepRequest> requests;
  for (int i = 0; i < 4; ++i) {
    requests.push_back(MakeStep("job-" + std::to_string(i), 0, 10 + i, concepts[i], false));
    Send(requests.back());
  }
  std::vector<protocol::StepReply> replies(4);
  for (int i = 0; i < 4; ++i) {
    protocol::StepReply r = NextAs<protocol::StepReply>();
    ASSERT_EQ(r.job_id.rfind("job-", 0), 0u);
    replies[std::stoi(r.job_id.substr(4))] = r;
  }
  // One batch: the worker reports the batch's compute time to each of its items, so four items
  // served in one forward pass carry the same compute_micros (four separate passes would not).
  for (int i = 1; i < 4; ++i) EXPECT_EQ(replies[i].compute_micros, replies[0].compute_micros);
  // Each item equals the same request served alone, in process.
  for (int i = 0; i < 4; ++i) {
    std::vector<experts::StepInput> one = {AsInput(requests[i])};
    auto want = reference_->Step(one);
    ASSERT_TRUE(want[0].ok());
    const double d_cond =
        ExpectNear(replies[i].prediction_cond.f32, want[0]->prediction_cond, 1e-4, "batched cond");
    const double d_utility =
        ExpectNear(replies[i].utility.f32, want[0]->utility, 1e-4, "batched utility");
    std::printf("batched vs alone, item %d: max |diff| prediction %.3g, utility %.3g\n", i, d_cond,
                d_utility);
  }
}

TEST_F(WorkerProcessTest, BadRequestsGetErrorRepliesAndServingGoesOn) {
  // Unknown concept: NotFound, and the message lists what the expert knows.
  Send(MakeStep("job-x", 0, 1, "trouser", false));
  auto unknown = NextAs<protocol::ErrorReply>();
  EXPECT_EQ(unknown.code, StatusCode::kNotFound);
  EXPECT_EQ(unknown.job_id, "job-x");
  EXPECT_NE(unknown.message.find("sneaker"), std::string::npos) << unknown.message;

  // Wrong latent shape.
  protocol::StepRequest wrong_shape = MakeStep("job-y", 1, 1, "sandal", false);
  wrong_shape.latent = protocol::MakeFloatTensor({4, 16, 16}, std::vector<float>(4 * 16 * 16, 0.f));
  Send(wrong_shape);
  auto shape_error = NextAs<protocol::ErrorReply>();
  EXPECT_EQ(shape_error.code, StatusCode::kInvalidArgument);
  EXPECT_EQ(shape_error.job_id, "job-y");
  EXPECT_NE(shape_error.message.find("4x16x16"), std::string::npos) << shape_error.message;

  // Non-finite latent: rejected by the codec on receipt.
  protocol::StepRequest nan_latent = MakeStep("job-z", 2, 1, "sandal", false);
  nan_latent.latent.f32[100] = std::nanf("");
  Send(nan_latent);
  auto nan_error = NextAs<protocol::ErrorReply>();
  EXPECT_EQ(nan_error.code, StatusCode::kInvalidArgument);
  EXPECT_NE(nan_error.message.find("latent"), std::string::npos) << nan_error.message;

  // Guidance for a step the worker never saw.
  Send(protocol::GuidanceRequest{
      .job_id = "job-never",
      .step_index = 7,
      .attempt = 0,
      .weights = protocol::MakeFloatTensor({64, 64}, std::vector<float>(64 * 64, 0.5f))});
  auto never = NextAs<protocol::ErrorReply>();
  EXPECT_EQ(never.code, StatusCode::kFailedPrecondition);
  EXPECT_EQ(never.job_id, "job-never");

  // Random bytes.
  SendRaw(std::string(64, '\x5a'));
  auto garbage = NextAs<protocol::ErrorReply>();
  EXPECT_NE(garbage.code, StatusCode::kOk);

  // Still serving.
  Send(MakeStep("job-ok", 0, 2, "ankle_boot", false));
  auto ok = NextAs<protocol::StepReply>();
  EXPECT_EQ(ok.job_id, "job-ok");
}

TEST_F(WorkerProcessTest, HeartbeatsAndStopsCleanlyOnSigterm) {
  // With a 500 ms interval, a 2 s window holds several heartbeats.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
  while (std::chrono::steady_clock::now() < until) {
    auto routed = router_->Receive(100);
    if (!routed.ok()) continue;
    auto m = protocol::DecodeWorkerToCoordinator(protocol::AsBytes(routed->payload));
    if (m.ok() && std::holds_alternative<protocol::Heartbeat>(*m)) {
      ++heartbeats_;
      Send(protocol::Heartbeat{.sent_unix_millis = 0, .in_flight = 0});
    }
    EXPECT_FALSE(m.ok() && std::holds_alternative<protocol::WorkerHello>(*m))
        << "the worker registered again although the coordinator answered its heartbeats";
  }
  EXPECT_GE(heartbeats_, 2);
  worker_->Signal(SIGTERM);
  auto bye = NextAs<protocol::Goodbye>();
  EXPECT_FALSE(bye.reason.empty());
  EXPECT_EQ(worker_->Wait(std::chrono::milliseconds(10000)), std::optional<int>(0));
}

TEST(WorkerKeyTest, AWorkerWhoseKeyIsRefusedStopsWithExitCode4AndSaysWhy) {
  const std::string dir = testing::MakeTempDir("dnd-worker-key-test-");
  auto server_keys = protocol::GenerateCurveKeyPair();
  auto worker_keys = protocol::GenerateCurveKeyPair();
  auto someone_else = protocol::GenerateCurveKeyPair();
  ASSERT_TRUE(server_keys.ok() && worker_keys.ok() && someone_else.ok());
  ASSERT_TRUE(protocol::WriteKeyPair(dir, "coordinator", *server_keys).ok());
  ASSERT_TRUE(protocol::WriteKeyPair(dir, "footwear", *worker_keys).ok());
  auto context = protocol::TransportContext::Create();
  ASSERT_TRUE(context.ok());
  // The coordinator allow-lists someone else's key only.
  auto router = protocol::RouterSocket::Bind(
      **context, "tcp://127.0.0.1:*",
      protocol::SecurityOptions::CurveServer(*server_keys, {someone_else->public_key}));
  ASSERT_TRUE(router.ok()) << router.status().ToString();
  testing::Subprocess worker(
      {DND_WORKER_BINARY, "--coordinator", (*router)->endpoint(), "--key-dir", dir, "--key-name",
       "footwear", "--server-key", dir + "/coordinator.key", "--name", "footwear", "--concepts",
       "sneaker", "--items-per-class", "2", "--threads", "1"},
      dir + "/worker.log");
  EXPECT_EQ(worker.Wait(std::chrono::milliseconds(30000)), std::optional<int>(4))
      << worker.Output();
  EXPECT_NE(worker.Output().find("refused this worker's key"), std::string::npos)
      << worker.Output();
  EXPECT_FALSE((*router)->Receive(0).ok()) << "a refused worker's message reached the server";
}

TEST(RequestBatcherTest, ReadyWhenFullOrWhenTheOldestHasWaited) {
  RequestBatcher<int> batcher(3, 10);
  const Clock::time_point t0 = Clock::now();
  EXPECT_FALSE(batcher.Ready(t0));
  EXPECT_FALSE(batcher.Deadline().has_value());
  batcher.Add(1, t0);
  batcher.Add(2, t0 + std::chrono::milliseconds(4));
  EXPECT_FALSE(batcher.Ready(t0 + std::chrono::milliseconds(9)));
  EXPECT_EQ(*batcher.Deadline(), t0 + std::chrono::milliseconds(10));
  EXPECT_TRUE(batcher.Ready(t0 + std::chrono::milliseconds(10)));
  batcher.Add(3, t0 + std::chrono::milliseconds(5));
  batcher.Add(4, t0 + std::chrono::milliseconds(5));
  EXPECT_TRUE(batcher.Ready(t0 + std::chrono::milliseconds(5)));  // full
  EXPECT_EQ(batcher.Take(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(batcher.size(), 1u);
  EXPECT_FALSE(batcher.Ready(t0 + std::chrono::milliseconds(14)));
  EXPECT_TRUE(batcher.Ready(t0 + std::chrono::milliseconds(15)));
  EXPECT_EQ(batcher.Take(), (std::vector<int>{4}));
  EXPECT_TRUE(batcher.empty());
}

TEST(WorkerServerTest, CreateRejectsBadOptions) {
  auto context = protocol::TransportContext::Create();
  ASSERT_TRUE(context.ok());
  auto make = [&](WorkerOptions o) {
    auto expert = experts::CreateExpert(FootwearConfig());
    return WorkerServer::Create(std::move(o), std::move(expert).value(), **context).status();
  };
  WorkerOptions good;
  good.coordinator_endpoint = "tcp://127.0.0.1:1";
  good.security = protocol::SecurityOptions::Plain();
  EXPECT_TRUE(make(good).ok());
  WorkerOptions no_endpoint = good;
  no_endpoint.coordinator_endpoint.clear();
  EXPECT_EQ(make(no_endpoint).code(), StatusCode::kInvalidArgument);
  WorkerOptions no_batch = good;
  no_batch.max_batch = 0;
  EXPECT_EQ(make(no_batch).code(), StatusCode::kInvalidArgument);
  WorkerOptions unset_security = good;
  unset_security.security = protocol::SecurityOptions{};
  EXPECT_EQ(make(unset_security).code(), StatusCode::kInvalidArgument);
  for (double scale : {-1.0, 100.5, std::numeric_limits<double>::quiet_NaN()}) {
    WorkerOptions bad_scale = good;
    bad_scale.guidance_scale = scale;
    EXPECT_EQ(make(bad_scale).code(), StatusCode::kInvalidArgument) << scale;
  }
  WorkerOptions owners_scale = good;
  owners_scale.guidance_scale = 10.0;
  EXPECT_TRUE(make(owners_scale).ok());
}

}  // namespace
}  // namespace dnd::worker
