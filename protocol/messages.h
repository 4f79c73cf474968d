// Plain C++ value types for every message that crosses a process boundary: the only public face of
// the wire protocol (protocol/*.capnp documents each field). Built and read by everyone; turned
// into bytes and back only by protocol/codec.h. All types are copyable and compared by value.
#ifndef DND_PROTOCOL_MESSAGES_H_
#define DND_PROTOCOL_MESSAGES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "protocol/status.h"

namespace dnd::protocol {

// Must equal `protocolVersion` in protocol/common.capnp (codec.cc checks it at compile time).
inline constexpr uint32_t kProtocolVersion = 1;

enum class DType : uint8_t { kFloat32 = 0, kUInt8 = 1 };

// A dense row-major tensor. Exactly one of f32 / u8 holds the elements, selected by dtype; the
// other is empty. NumElements() is the product of shape (1 for an empty shape).
struct Tensor {
  std::vector<uint32_t> shape;
  DType dtype = DType::kFloat32;
  std::vector<float> f32;
  std::vector<uint8_t> u8;

  size_t NumElements() const {
    size_t n = 1;
    for (uint32_t d : shape) n *= d;
    return n;
  }
  friend bool operator==(const Tensor&, const Tensor&) = default;
};

enum class UtilityKind : uint8_t { kScore = 0, kAttention = 1 };
enum class PredictionType : uint8_t { kEpsilon = 0, kSample = 1, kVPrediction = 2 };
enum class Strategy : uint8_t { kDnd = 0, kAveraging = 1, kComposable = 2, kMultiDiffusion = 3 };
enum class JobState : uint8_t {
  kQueued = 0,
  kRunning = 1,
  kSucceeded = 2,
  kFailed = 3,
  kCancelled = 4
};

// The reply to a failed request, on either link. code is never kOk.
struct ErrorReply {
  StatusCode code = StatusCode::kUnknown;
  std::string message;
  std::string job_id;
  uint32_t step_index = 0;
  uint32_t attempt = 0;

  // The error as a Status (code and message).
  Status ToStatus() const { return Status(code, message); }
  friend bool operator==(const ErrorReply&, const ErrorReply&) = default;
};

struct Heartbeat {
  int64_t sent_unix_millis = 0;
  uint32_t in_flight = 0;
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

struct Goodbye {
  std::string reason;
  friend bool operator==(const Goodbye&, const Goodbye&) = default;
};

// ---- coordinator <-> worker ----

struct WorkerHello {
  uint32_t protocol_version = kProtocolVersion;
  std::string expert_name;
  std::string organisation;
  std::string latent_space_id;
  std::vector<uint32_t> latent_shape;  // (C, H, W)
  std::vector<std::string> concepts;
  std::vector<UtilityKind> utilities;
  PredictionType prediction_type = PredictionType::kEpsilon;
  uint32_t max_batch = 1;
  // The owner's CFG scale, used by jobs that set none; 0 = none (the coordinator's default).
  float guidance_scale = 0.0f;
  friend bool operator==(const WorkerHello&, const WorkerHello&) = default;
};

struct HelloAck {
  bool accepted = false;
  std::string reason;
  uint32_t heartbeat_interval_millis = 1000;
  friend bool operator==(const HelloAck&, const HelloAck&) = default;
};

struct StepRequest {
  std::string job_id;
  uint32_t step_index = 0;
  uint32_t attempt = 0;
  int32_t timestep = 0;
  int32_t prev_timestep = -1;
  double alpha_cumprod = 1.0;
  Tensor latent;             // (C, H, W) float32, finite
  std::string concept_name;  // wire field `concept` (a C++20 keyword)
  float cfg_scale = 1.0f;
  UtilityKind utility = UtilityKind::kScore;
  bool want_guidance = false;
  friend bool operator==(const StepRequest&, const StepRequest&) = default;
};

struct StepReply {
  std::string job_id;
  uint32_t step_index = 0;
  uint32_t attempt = 0;
  Tensor prediction_cond;    // (C, H, W) float32, finite
  Tensor prediction_uncond;  // (C, H, W) float32, finite
  Tensor utility;            // (H, W) float32, >= 0, sums to 1
  uint64_t compute_micros = 0;
  friend bool operator==(const StepReply&, const StepReply&) = default;
};

struct GuidanceRequest {
  std::string job_id;
  uint32_t step_index = 0;
  uint32_t attempt = 0;
  Tensor weights;  // Q_i, (H, W) float32, finite
  friend bool operator==(const GuidanceRequest&, const GuidanceRequest&) = default;
};

struct GuidanceReply {
  std::string job_id;
  uint32_t step_index = 0;
  uint32_t attempt = 0;
  Tensor gradient;  // (C, H, W) float32, finite
  uint64_t compute_micros = 0;
  friend bool operator==(const GuidanceReply&, const GuidanceReply&) = default;
};

using WorkerToCoordinator =
    std::variant<WorkerHello, StepReply, GuidanceReply, Heartbeat, ErrorReply, Goodbye>;
using CoordinatorToWorker =
    std::variant<HelloAck, StepRequest, GuidanceRequest, Heartbeat, ErrorReply, Goodbye>;

// ---- client <-> coordinator ----

struct ExpertRef {
  std::string expert_name;
  std::string concept_name;  // wire field `concept`
  float weight = 1.0f;
  friend bool operator==(const ExpertRef&, const ExpertRef&) = default;
};

// Fairness notions; all flags false = none. rho and epsilon as in docs/method.md.
struct Fairness {
  bool proportional = false;
  bool envy_free = false;
  bool equitable = false;
  double rho = 0.0;
  double epsilon = 0.0;
  friend bool operator==(const Fairness&, const Fairness&) = default;
};

// What a client asks the coordinator to run. Unset numbers take the coordinator's defaults
// (coordinator/service/coordinator_server.h, JobDefaults): steps, cfg_scale, beta and
// fairness.rho when 0; eta, gamma and guidance_outside when negative (0 is meaningful for each:
// deterministic DDIM, no guidance, guidance confined to the expert's region). A default-constructed
// JobSpec therefore asks for every default.
struct JobSpec {
  std::vector<ExpertRef> experts;
  Strategy strategy = Strategy::kDnd;
  Fairness fairness;
  UtilityKind utility = UtilityKind::kScore;
  uint32_t steps = 0;
  uint64_t seed = 0;
  float cfg_scale = 0.0f;
  double eta = -1.0;
  double beta = 0.0;
  double gamma = -1.0;
  std::vector<Tensor> layout;    // optional MultiDiffusion masks, (H, W) float32 each
  std::string schedule_name;     // empty = server default
  std::string timestep_spacing;  // empty = server default
  // Weight in [0, 1] of each expert's guidance gradient outside its own region (0 = only its
  // region, 1 = everywhere; docs/method.md decision 11); negative = coordinator default.
  double guidance_outside = -1.0;
  friend bool operator==(const JobSpec&, const JobSpec&) = default;
};

struct SubmitJob {
  std::string client_token;
  JobSpec spec;
  friend bool operator==(const SubmitJob&, const SubmitJob&) = default;
};

struct SubmitReply {
  std::string job_id;
  friend bool operator==(const SubmitReply&, const SubmitReply&) = default;
};

struct GetStatus {
  std::string job_id;  // empty = all jobs
  friend bool operator==(const GetStatus&, const GetStatus&) = default;
};

struct JobStatus {
  std::string job_id;
  JobState state = JobState::kQueued;
  std::string reason;
  uint32_t step = 0;
  uint32_t total_steps = 0;
  int64_t submitted_unix_millis = 0;
  int64_t started_unix_millis = 0;
  int64_t finished_unix_millis = 0;
  int64_t eta_millis = -1;
  friend bool operator==(const JobStatus&, const JobStatus&) = default;
};

struct StatusReply {
  std::vector<JobStatus> jobs;
  friend bool operator==(const StatusReply&, const StatusReply&) = default;
};

struct Watch {
  std::string job_id;
  friend bool operator==(const Watch&, const Watch&) = default;
};

struct ProgressEvent {
  std::string job_id;
  JobState state = JobState::kQueued;
  uint32_t step = 0;
  uint32_t total_steps = 0;
  std::vector<double> shares;  // in JobSpec.experts order
  std::string message;
  friend bool operator==(const ProgressEvent&, const ProgressEvent&) = default;
};

struct Cancel {
  std::string job_id;
  friend bool operator==(const Cancel&, const Cancel&) = default;
};

struct CancelReply {
  std::string job_id;
  bool accepted = false;
  JobState state = JobState::kQueued;
  friend bool operator==(const CancelReply&, const CancelReply&) = default;
};

struct ListExperts {
  friend bool operator==(const ListExperts&, const ListExperts&) = default;
};

struct ExpertInfo {
  std::string expert_name;
  std::string organisation;
  std::string latent_space_id;
  std::vector<uint32_t> latent_shape;
  std::vector<std::string> concepts;
  std::vector<UtilityKind> utilities;
  PredictionType prediction_type = PredictionType::kEpsilon;
  bool alive = false;
  uint64_t last_seen_millis_ago = 0;
  float guidance_scale = 0.0f;  // WorkerHello::guidance_scale
  friend bool operator==(const ExpertInfo&, const ExpertInfo&) = default;
};

struct ExpertList {
  std::vector<ExpertInfo> experts;
  friend bool operator==(const ExpertList&, const ExpertList&) = default;
};

struct FetchResult {
  std::string job_id;
  friend bool operator==(const FetchResult&, const FetchResult&) = default;
};

struct ResultFile {
  std::string name;  // plain file name, no '/'
  std::vector<uint8_t> data;
  friend bool operator==(const ResultFile&, const ResultFile&) = default;
};

struct ResultFiles {
  std::string job_id;
  std::vector<ResultFile> files;
  friend bool operator==(const ResultFiles&, const ResultFiles&) = default;
};

using ClientToCoordinator =
    std::variant<SubmitJob, GetStatus, Watch, Cancel, ListExperts, FetchResult>;
using CoordinatorToClient = std::variant<SubmitReply, StatusReply, ProgressEvent, CancelReply,
                                         ExpertList, ResultFiles, ErrorReply>;

// Helpers for building float32 tensors and error replies.
Tensor MakeFloatTensor(std::vector<uint32_t> shape, std::vector<float> values);
ErrorReply MakeErrorReply(const Status& status, std::string job_id = {}, uint32_t step_index = 0,
                          uint32_t attempt = 0);

// Names for logs and messages: "score", "epsilon", "dnd", "running", ...
const char* UtilityKindName(UtilityKind kind);
const char* PredictionTypeName(PredictionType type);
const char* StrategyName(Strategy strategy);
const char* JobStateName(JobState state);

}  // namespace dnd::protocol

#endif  // DND_PROTOCOL_MESSAGES_H_
