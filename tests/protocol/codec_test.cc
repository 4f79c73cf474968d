// Tests of protocol/codec: a round trip of every message of every direction, and every class of
// malformed input (truncated, random, wrong version, shape/byte mismatch, non-finite values,
// negative utility, out-of-range enums, oversized, trailing bytes) rejected with its exact code.
#include "protocol/codec.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "protocol/client_link.capnp.h"
#include "protocol/messages.h"

namespace dnd::protocol {
namespace {

Tensor RandomTensor(std::mt19937& rng, std::vector<uint32_t> shape) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tensor t;
  t.shape = std::move(shape);
  t.f32.resize(t.NumElements());
  for (float& v : t.f32) v = normal(rng);
  return t;
}

// A non-negative (H, W) map normalised to sum 1, computed in float64.
Tensor RandomUtility(std::mt19937& rng, uint32_t h, uint32_t w) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<double> raw(size_t{h} * w);
  double sum = 0.0;
  for (double& v : raw) sum += (v = uniform(rng));
  Tensor t;
  t.shape = {h, w};
  for (double v : raw) t.f32.push_back(static_cast<float>(v / sum));
  return t;
}

StepRequest SampleStepRequest(std::mt19937& rng) {
  StepRequest r;
  r.job_id = "job-1";
  r.step_index = 3;
  r.attempt = 1;
  r.timestep = 801;
  r.prev_timestep = 781;
  r.alpha_cumprod = 0.0731;
  r.latent = RandomTensor(rng, {4, 16, 16});
  r.concept_name = "sneaker";
  r.cfg_scale = 7.5f;
  r.utility = UtilityKind::kAttention;
  r.want_guidance = true;
  return r;
}

StepReply SampleStepReply(std::mt19937& rng) {
  StepReply r;
  r.job_id = "job-1";
  r.step_index = 3;
  r.attempt = 1;
  r.prediction_cond = RandomTensor(rng, {4, 16, 16});
  r.prediction_uncond = RandomTensor(rng, {4, 16, 16});
  r.utility = RandomUtility(rng, 16, 16);
  r.compute_micros = 12345;
  return r;
}

WorkerHello SampleHello() {
  WorkerHello h;
  h.expert_name = "footwear";
  h.organisation = "org-a";
  h.latent_space_id = "fmnist-ae-v1";
  h.latent_shape = {4, 16, 16};
  h.concepts = {"sneaker", "boot", "sandal"};
  h.utilities = {UtilityKind::kScore, UtilityKind::kAttention};
  h.prediction_type = PredictionType::kVPrediction;
  h.max_batch = 8;
  h.guidance_scale = 7.5f;
  return h;
}

std::vector<WorkerToCoordinator> AllWorkerToCoordinator() {
  std::mt19937 rng(1);
  GuidanceReply g{"job-1", 3, 1, RandomTensor(rng, {4, 16, 16}), 77};
  return {SampleHello(),
          SampleStepReply(rng),
          g,
          Heartbeat{1700000000123, 2},
          ErrorReply{StatusCode::kDeadlineExceeded, "step took too long", "job-1", 3, 1},
          Goodbye{"shutting down"}};
}

std::vector<CoordinatorToWorker> AllCoordinatorToWorker() {
  std::mt19937 rng(2);
  GuidanceRequest g{"job-1", 3, 1, RandomTensor(rng, {16, 16})};
  return {HelloAck{true, "", 1500},
          SampleStepRequest(rng),
          g,
          Heartbeat{-5, 0},
          ErrorReply{StatusCode::kFailedPrecondition, "unknown worker", "", 0, 0},
          Goodbye{""}};
}

SubmitJob SampleSubmitJob() {
  std::mt19937 rng(3);
  SubmitJob s;
  s.client_token = "token-42";
  s.spec.experts = {{"footwear", "sneaker", 1.0f}, {"tops", "shirt", 0.5f}};
  s.spec.strategy = Strategy::kMultiDiffusion;
  s.spec.fairness = Fairness{true, false, true, 0.9, 0.01};
  s.spec.utility = UtilityKind::kAttention;
  s.spec.steps = 25;
  s.spec.seed = 0xDEADBEEFCAFEull;
  s.spec.cfg_scale = 5.0f;
  s.spec.eta = 0.5;
  s.spec.beta = 0.1;
  s.spec.gamma = 2.0;
  Tensor mask = RandomUtility(rng, 16, 16);
  s.spec.layout = {mask, mask};
  s.spec.schedule_name = "scaled_linear";
  s.spec.timestep_spacing = "leading";
  s.spec.guidance_outside = 0.7;
  return s;
}

std::vector<ClientToCoordinator> AllClientToCoordinator() {
  return {SampleSubmitJob(), GetStatus{""}, Watch{"job-1"},
          Cancel{"job-1"},   ListExperts{}, FetchResult{"job-1"}};
}

std::vector<CoordinatorToClient> AllCoordinatorToClient() {
  JobStatus a{"job-1", JobState::kRunning, "", 3, 25, 1000, 2000, 0, 4500};
  JobStatus b{"job-2", JobState::kFailed, "expert 'tops' left", 7, 25, 1000, 2000, 9000, -1};
  ExpertInfo info{"footwear",
                  "org-a",
                  "fmnist-ae-v1",
                  {4, 16, 16},
                  {"sneaker"},
                  {UtilityKind::kScore},
                  PredictionType::kSample,
                  true,
                  250,
                  10.0f};
  ResultFile png{"image.png", {0x89, 'P', 'N', 'G', 0, 255}};
  ResultFile json{"metrics.json", {'{', '}'}};
  return {SubmitReply{"job-1"},
          StatusReply{{a, b}},
          ProgressEvent{"job-1", JobState::kRunning, 3, 25, {0.25, 0.75}, "step 3"},
          CancelReply{"job-1", true, JobState::kCancelled},
          ExpertList{{info, info}},
          ResultFiles{"job-1", {png, json}},
          ErrorReply{StatusCode::kNotFound, "no job 'job-9'", "job-9", 0, 0}};
}

// Encodes, decodes, compares; also checks that every alternative of the variant was covered.
template <typename Variant, typename DecodeFn>
void ExpectRoundTrips(const std::vector<Variant>& messages, DecodeFn decode) {
  std::vector<bool> seen(std::variant_size_v<Variant>, false);
  for (const Variant& m : messages) {
    seen[m.index()] = true;
    const std::string bytes = Encode(m);
    EXPECT_EQ(bytes.size() % 8, 0u);
    auto decoded = decode(AsBytes(bytes));
    ASSERT_TRUE(decoded.ok()) << "alternative " << m.index() << ": " << decoded.status().ToString();
    EXPECT_TRUE(*decoded == m) << "alternative " << m.index() << " changed in the round trip";
  }
  for (size_t i = 0; i < seen.size(); ++i)
    EXPECT_TRUE(seen[i]) << "alternative " << i << " untested";
}

TEST(CodecTest, EveryWorkerToCoordinatorMessageRoundTrips) {
  ExpectRoundTrips(AllWorkerToCoordinator(), DecodeWorkerToCoordinator);
}

TEST(CodecTest, EveryCoordinatorToWorkerMessageRoundTrips) {
  ExpectRoundTrips(AllCoordinatorToWorker(), DecodeCoordinatorToWorker);
}

TEST(CodecTest, EveryClientToCoordinatorMessageRoundTrips) {
  ExpectRoundTrips(AllClientToCoordinator(), DecodeClientToCoordinator);
}

TEST(CodecTest, EveryCoordinatorToClientMessageRoundTrips) {
  ExpectRoundTrips(AllCoordinatorToClient(), DecodeCoordinatorToClient);
}

TEST(CodecTest, Uint8LatentIsRejectedForItsDtype) {
  StepRequest r;
  r.job_id = "j";
  r.latent.shape = {1, 2, 2};
  r.latent.dtype = DType::kUInt8;
  r.latent.u8 = {1, 2, 3, 4};
  auto decoded = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(r))));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("expected dtype float32"), std::string::npos)
      << decoded.status().message();
}

TEST(CodecTest, MisalignedBufferDecodesToTheSameMessage) {
  std::mt19937 rng(4);
  const CoordinatorToWorker m = SampleStepRequest(rng);
  const std::string bytes = Encode(m);
  // uint64_t storage is 8-byte aligned, so start + offset is misaligned for offsets 1..7.
  std::vector<uint64_t> storage(bytes.size() / 8 + 2);
  for (size_t offset : {1, 3, 4, 7}) {
    uint8_t* start = reinterpret_cast<uint8_t*>(storage.data()) + offset;
    ASSERT_NE(reinterpret_cast<uintptr_t>(start) % 8, 0u);
    std::memcpy(start, bytes.data(), bytes.size());
    auto decoded = DecodeCoordinatorToWorker({start, bytes.size()});
    ASSERT_TRUE(decoded.ok()) << "offset " << offset << ": " << decoded.status().ToString();
    EXPECT_TRUE(*decoded == m);
  }
}

TEST(CodecTest, TruncatedMessagesAreDataLoss) {
  std::mt19937 rng(5);
  const std::string bytes = Encode(CoordinatorToWorker(SampleStepRequest(rng)));
  // Every prefix: lengths that are not whole words, and whole-word prefixes that end early.
  for (size_t len = 0; len < bytes.size(); len += (len < 64 ? 1 : 61)) {
    auto decoded = DecodeCoordinatorToWorker(AsBytes(bytes).subspan(0, len));
    ASSERT_FALSE(decoded.ok()) << "prefix of " << len << " bytes decoded";
    EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss)
        << len << ": " << decoded.status().ToString();
  }
}

TEST(CodecTest, TrailingBytesAreDataLoss) {
  std::string bytes = Encode(ClientToCoordinator(Cancel{"job-1"}));
  bytes.append(8, '\0');
  auto decoded = DecodeClientToCoordinator(AsBytes(bytes));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss);
}

TEST(CodecTest, RandomBytesNeverCrashAndAreRejected) {
  std::mt19937 rng(6);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 512);
  int accepted = 0;
  const auto allowed = [](StatusCode c) {
    return c == StatusCode::kDataLoss || c == StatusCode::kInvalidArgument ||
           c == StatusCode::kResourceExhausted || c == StatusCode::kFailedPrecondition;
  };
  for (int i = 0; i < 4000; ++i) {
    std::vector<uint8_t> bytes(static_cast<size_t>(length(rng)));
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(byte(rng));
    const auto check = [&](const Status& s) {
      if (s.ok()) {
        ++accepted;
      } else {
        EXPECT_TRUE(allowed(s.code())) << s.ToString();
      }
    };
    check(DecodeWorkerToCoordinator(bytes).status());
    check(DecodeCoordinatorToWorker(bytes).status());
    check(DecodeClientToCoordinator(bytes).status());
    check(DecodeCoordinatorToClient(bytes).status());
  }
  // Random bytes almost never carry version 1 in the right place; a handful may.
  EXPECT_LT(accepted, 40);
}

TEST(CodecTest, CorruptedValidMessagesNeverCrash) {
  std::mt19937 rng(7);
  const std::string original = Encode(CoordinatorToWorker(SampleStepRequest(rng)));
  std::uniform_int_distribution<size_t> position(0, original.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes = original;
    for (int k = 0; k < 4; ++k) bytes[position(rng)] = static_cast<char>(byte(rng));
    auto decoded = DecodeCoordinatorToWorker(AsBytes(bytes));
    if (!decoded.ok()) {
      const StatusCode c = decoded.status().code();
      EXPECT_TRUE(c == StatusCode::kDataLoss || c == StatusCode::kInvalidArgument ||
                  c == StatusCode::kResourceExhausted || c == StatusCode::kFailedPrecondition)
          << decoded.status().ToString();
    }
  }
}

TEST(CodecTest, WrongEnvelopeVersionIsFailedPrecondition) {
  std::string bytes = Encode(WorkerToCoordinator(Heartbeat{1, 0}));
  // Flat layout of a one-segment message: 8-byte segment table, root pointer, then the root
  // struct's data section whose first field is protocolVersion (UInt32, little-endian).
  ASSERT_EQ(static_cast<uint8_t>(bytes[16]), kProtocolVersion);
  bytes[16] = 2;
  auto decoded = DecodeWorkerToCoordinator(AsBytes(bytes));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(decoded.status().message().find("version 2"), std::string::npos);
  EXPECT_NE(decoded.status().message().find("version 1"), std::string::npos);
}

TEST(CodecTest, WorkerHelloWithAnotherVersionIsFailedPrecondition) {
  WorkerHello h = SampleHello();
  h.protocol_version = 7;
  auto decoded = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(h))));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(decoded.status().message().find("version 7"), std::string::npos);
}

TEST(CodecTest, ShapeByteMismatchNamesTheTensorAndBothSizes) {
  std::mt19937 rng(8);
  StepRequest r = SampleStepRequest(rng);
  r.latent.f32.resize(1000);  // shape 4x16x16 needs 1024 floats
  auto decoded = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(r))));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(decoded.status().message(),
            "tensor 'latent': shape 4x16x16 needs 4096 bytes, got 4000");
}

TEST(CodecTest, WrongRankIsInvalidArgument) {
  std::mt19937 rng(9);
  StepRequest r = SampleStepRequest(rng);
  r.latent = RandomTensor(rng, {16, 16});
  auto decoded = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(r))));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  r.latent = RandomTensor(rng, {1, 1, 1, 1, 1});  // over the rank limit
  decoded = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(r))));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, NonFiniteValuesAreRejectedWhereForbidden) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937 rng(10);
  {
    StepRequest r = SampleStepRequest(rng);
    r.latent.f32[17] = nan;
    auto d = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(r))));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(d.status().message(), "tensor 'latent': element 17 is not finite");
  }
  {
    StepReply r = SampleStepReply(rng);
    r.prediction_uncond.f32[0] = -inf;
    auto d = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(r))));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  }
  {
    GuidanceRequest g{"job-1", 0, 0, RandomTensor(rng, {16, 16})};
    g.weights.f32[5] = nan;
    auto d = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(g))));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  }
  {
    GuidanceReply g{"job-1", 0, 0, RandomTensor(rng, {4, 16, 16}), 1};
    g.gradient.f32.back() = inf;
    auto d = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(g))));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  }
  {
    StepRequest r = SampleStepRequest(rng);
    r.alpha_cumprod = std::numeric_limits<double>::quiet_NaN();
    auto d = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(r))));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(CodecTest, DeclaredGuidanceScalesOutsideTheJobRangeAreInvalidArgument) {
  for (float bad : {-1.0f, 100.5f, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    WorkerHello h = SampleHello();
    h.guidance_scale = bad;
    auto d = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(h))));
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(d.status().message().find("hello.guidanceScale"), std::string::npos)
        << d.status().ToString();
  }
  for (float good : {0.0f, 100.0f}) {  // 0: none (the coordinator's default)
    WorkerHello h = SampleHello();
    h.guidance_scale = good;
    auto d = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(h))));
    ASSERT_TRUE(d.ok()) << good << ": " << d.status().ToString();
    EXPECT_EQ(std::get<WorkerHello>(*d).guidance_scale, good);
  }
  ExpertInfo info;
  info.expert_name = "tops";
  info.guidance_scale = -2.0f;
  auto d = DecodeCoordinatorToClient(AsBytes(Encode(CoordinatorToClient(ExpertList{{info}}))));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("expertList.experts[0].guidanceScale"), std::string::npos)
      << d.status().ToString();
}

TEST(CodecTest, NegativeUtilityIsInvalidArgument) {
  std::mt19937 rng(11);
  StepReply r = SampleStepReply(rng);
  // Keep the sum at 1 so that only the sign is wrong.
  r.utility.f32[0] += 0.5f;
  r.utility.f32[1] -= 0.5f;
  ASSERT_LT(r.utility.f32[1], 0.0f);
  auto d = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(r))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("element 1 is negative"), std::string::npos)
      << d.status().message();
}

TEST(CodecTest, UtilityThatDoesNotSumToOneIsInvalidArgument) {
  std::mt19937 rng(12);
  StepReply r = SampleStepReply(rng);
  for (float& v : r.utility.f32) v *= 2.0f;
  auto d = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(r))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, UtilityShapeMustMatchThePrediction) {
  std::mt19937 rng(13);
  StepReply r = SampleStepReply(rng);
  r.utility = RandomUtility(rng, 8, 8);
  auto d = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(r))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, OutOfRangeEnumsAreInvalidArgument) {
  std::mt19937 rng(14);
  StepRequest r = SampleStepRequest(rng);
  r.utility = static_cast<UtilityKind>(9);
  auto d = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(r))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);

  WorkerHello h = SampleHello();
  h.prediction_type = static_cast<PredictionType>(3);
  auto dh = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(h))));
  ASSERT_FALSE(dh.ok());
  EXPECT_EQ(dh.status().code(), StatusCode::kInvalidArgument);

  SubmitJob s = SampleSubmitJob();
  s.spec.strategy = static_cast<Strategy>(4);
  auto ds = DecodeClientToCoordinator(AsBytes(Encode(ClientToCoordinator(s))));
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);

  JobStatus bad_state;
  bad_state.job_id = "j";
  bad_state.state = static_cast<JobState>(5);
  StatusReply sr{{bad_state}};
  auto dsr = DecodeCoordinatorToClient(AsBytes(Encode(CoordinatorToClient(sr))));
  ASSERT_FALSE(dsr.ok());
  EXPECT_EQ(dsr.status().code(), StatusCode::kInvalidArgument);

  ErrorReply e;
  e.code = StatusCode::kOk;
  e.message = "not an error";
  auto de = DecodeCoordinatorToClient(AsBytes(Encode(CoordinatorToClient(e))));
  ASSERT_FALSE(de.ok());
  EXPECT_EQ(de.status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, MessageOverTheTraversalLimitIsResourceExhausted) {
  std::mt19937 rng(15);
  StepRequest r = SampleStepRequest(rng);
  // 4 x 1024 x 600 float32 = 9.4 MiB of data > kMaxWorkerLinkMessageBytes (8 MiB).
  r.latent.shape = {4, 1024, 600};
  r.latent.f32.assign(size_t{4} * 1024 * 600, 0.5f);
  ASSERT_GT(r.latent.f32.size() * sizeof(float), kMaxWorkerLinkMessageBytes);
  auto d = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(r))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kResourceExhausted) << d.status().ToString();
}

TEST(CodecTest, ResultFilesMayBeLargerThanStepMessages) {
  ResultFiles files{"job-1", {ResultFile{"big.bin", std::vector<uint8_t>(size_t{12} << 20, 7)}}};
  auto d = DecodeCoordinatorToClient(AsBytes(Encode(CoordinatorToClient(files))));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(*d == CoordinatorToClient(files));
}

TEST(CodecTest, ResultFileNamesMustBePlain) {
  for (const char* name : {"../etc/passwd", "a/b", "..", ""}) {
    ResultFiles files{"job-1", {ResultFile{name, {1}}}};
    auto d = DecodeCoordinatorToClient(AsBytes(Encode(CoordinatorToClient(files))));
    ASSERT_FALSE(d.ok()) << name;
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << name;
  }
}

TEST(CodecTest, JobSpecIsValidated) {
  SubmitJob s = SampleSubmitJob();
  s.spec.layout.pop_back();  // one mask for two experts
  auto d = DecodeClientToCoordinator(AsBytes(Encode(ClientToCoordinator(s))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);

  s = SampleSubmitJob();
  s.spec.experts.clear();
  s.spec.layout.clear();
  d = DecodeClientToCoordinator(AsBytes(Encode(ClientToCoordinator(s))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);

  s = SampleSubmitJob();
  s.spec.experts[1].weight = -1.0f;
  d = DecodeClientToCoordinator(AsBytes(Encode(ClientToCoordinator(s))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);

  // steps 0 means "the coordinator's default" (messages.h): it decodes; the coordinator applies it.
  s = SampleSubmitJob();
  s.spec.steps = 0;
  d = DecodeClientToCoordinator(AsBytes(Encode(ClientToCoordinator(s))));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(std::get<SubmitJob>(*d).spec.steps, 0u);
}

// A client of the schema before guidanceOutside sent the GuidanceRegion enum: own and everywhere
// still mean 0 and 1, default leaves the coordinator's default, an unknown value is refused.
TEST(CodecTest, OlderGuidanceRegionEnumMapsToGuidanceOutside) {
  const auto submit = [](wire::GuidanceRegion region, double outside) {
    capnp::MallocMessageBuilder builder;
    auto root = builder.initRoot<wire::ClientToCoordinator>();
    root.setProtocolVersion(wire::PROTOCOL_VERSION);
    auto spec = root.initBody().initSubmitJob().initSpec();
    auto expert = spec.initExperts(1)[0];
    expert.setExpertName("footwear");
    expert.setConcept("sneaker");
    expert.setWeight(1.0f);
    spec.setGuidanceRegion(region);
    if (outside >= 0) spec.setGuidanceOutside(outside);
    const kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
    const auto bytes = words.asBytes();
    return DecodeClientToCoordinator(std::span<const uint8_t>(bytes.begin(), bytes.size()));
  };
  const auto outside_of = [](const StatusOr<ClientToCoordinator>& d) {
    return std::get<SubmitJob>(*d).spec.guidance_outside;
  };
  auto d = submit(wire::GuidanceRegion::OWN, -1);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(outside_of(d), 0.0);
  d = submit(wire::GuidanceRegion::EVERYWHERE, -1);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(outside_of(d), 1.0);
  d = submit(wire::GuidanceRegion::DEFAULT, -1);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_LT(outside_of(d), 0.0);
  // The new field wins when both are set.
  d = submit(wire::GuidanceRegion::EVERYWHERE, 0.4);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(outside_of(d), 0.4);
  d = submit(static_cast<wire::GuidanceRegion>(7), -1);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, OverlongNamesAreInvalidArgument) {
  WorkerHello h = SampleHello();
  h.expert_name.assign(kMaxNameBytes + 1, 'x');
  auto d = DecodeWorkerToCoordinator(AsBytes(Encode(WorkerToCoordinator(h))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, ErrorReplyCarriesTheStatus) {
  const Status s = NotFoundError("no expert 'tops'");
  const ErrorReply e = MakeErrorReply(s, "job-3", 4, 2);
  auto d = DecodeCoordinatorToWorker(AsBytes(Encode(CoordinatorToWorker(e))));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(std::get<ErrorReply>(*d).ToStatus(), s);
  EXPECT_EQ(std::get<ErrorReply>(*d).job_id, "job-3");
}

}  // namespace
}  // namespace dnd::protocol

namespace dnd::protocol {
namespace {

TEST(CodecTest, LongJobListsAreInvalidArgument) {
  StatusReply reply;
  reply.jobs.resize(kMaxListEntries + 1);
  auto d = DecodeCoordinatorToClient(AsBytes(Encode(CoordinatorToClient(reply))));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
}

// Inputs found by tests/fuzz/codec_fuzz.cc, kept as regressions (the working directory is the
// repository root).
TEST(CodecTest, FuzzRegressionAmplifiedJobListIsRejected) {
  // 280 bytes whose StatusReply claims ~10^6 zero-sized JobStatus entries; decoding it used to
  // take 1 s (21 s under ASan).
  std::ifstream in("tests/fuzz/regressions/status_reply_million_empty_jobs.bin", std::ios::binary);
  ASSERT_TRUE(in) << "regression input missing";
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.size(), 280u);
  auto d = DecodeCoordinatorToClient(AsBytes(bytes));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
}

}  // namespace
}  // namespace dnd::protocol
