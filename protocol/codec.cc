// Cap'n Proto <-> plain C++ conversion and the one place where received messages are validated.
// Structure: Write* fill builders from value types; Read* convert readers into value types and
// check each field; Decode* wrap a reader in the limits of its direction and turn every
// kj::Exception into a Status. See codec.h for the error contract and docs/protocol.md for the
// limits.
#include "protocol/codec.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <exception>
#include <string_view>
#include <type_traits>
#include <utility>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include "protocol/client_link.capnp.h"
#include "protocol/common.capnp.h"
#include "protocol/worker_link.capnp.h"

namespace dnd::protocol {
namespace {

static_assert(wire::PROTOCOL_VERSION == kProtocolVersion,
              "kProtocolVersion (messages.h) must equal protocolVersion (common.capnp)");
static_assert(std::endian::native == std::endian::little,
              "tensor data is copied as raw little-endian bytes; add byte swapping for big-endian");

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// ---------------------------------------------------------------------------------------------
// Encoding.

capnp::Text::Reader AsText(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

void WriteTensor(const Tensor& t, wire::Tensor::Builder b) {
  auto shape = b.initShape(static_cast<unsigned>(t.shape.size()));
  for (size_t i = 0; i < t.shape.size(); ++i) shape.set(static_cast<unsigned>(i), t.shape[i]);
  if (t.dtype == DType::kUInt8) {
    b.setDtype(wire::DType::UINT8);
    auto data = b.initData(static_cast<unsigned>(t.u8.size()));
    if (!t.u8.empty()) std::memcpy(data.begin(), t.u8.data(), t.u8.size());
  } else {
    b.setDtype(wire::DType::FLOAT32);
    auto data = b.initData(static_cast<unsigned>(t.f32.size() * sizeof(float)));
    if (!t.f32.empty()) std::memcpy(data.begin(), t.f32.data(), t.f32.size() * sizeof(float));
  }
}

void WriteShape(const std::vector<uint32_t>& v, capnp::List<uint32_t>::Builder b) {
  for (size_t i = 0; i < v.size(); ++i) b.set(static_cast<unsigned>(i), v[i]);
}

void WriteTexts(const std::vector<std::string>& v, capnp::List<capnp::Text>::Builder b) {
  for (size_t i = 0; i < v.size(); ++i) b.set(static_cast<unsigned>(i), AsText(v[i]));
}

void WriteUtilities(const std::vector<UtilityKind>& v, capnp::List<wire::UtilityKind>::Builder b) {
  for (size_t i = 0; i < v.size(); ++i) {
    b.set(static_cast<unsigned>(i), static_cast<wire::UtilityKind>(v[i]));
  }
}

void WriteError(const ErrorReply& e, wire::Error::Builder b) {
  b.setCode(static_cast<uint32_t>(e.code));
  b.setMessage(AsText(e.message));
  b.setJobId(AsText(e.job_id));
  b.setStepIndex(e.step_index);
  b.setAttempt(e.attempt);
}

void WriteHeartbeat(const Heartbeat& h, wire::Heartbeat::Builder b) {
  b.setSentUnixMillis(h.sent_unix_millis);
  b.setInFlight(h.in_flight);
}

void WriteJobStatus(const JobStatus& s, wire::JobStatus::Builder b) {
  b.setJobId(AsText(s.job_id));
  b.setState(static_cast<wire::JobState>(s.state));
  b.setReason(AsText(s.reason));
  b.setStep(s.step);
  b.setTotalSteps(s.total_steps);
  b.setSubmittedUnixMillis(s.submitted_unix_millis);
  b.setStartedUnixMillis(s.started_unix_millis);
  b.setFinishedUnixMillis(s.finished_unix_millis);
  b.setEtaMillis(s.eta_millis);
}

void WriteJobSpec(const JobSpec& s, wire::JobSpec::Builder b) {
  auto experts = b.initExperts(static_cast<unsigned>(s.experts.size()));
  for (size_t i = 0; i < s.experts.size(); ++i) {
    auto e = experts[static_cast<unsigned>(i)];
    e.setExpertName(AsText(s.experts[i].expert_name));
    e.setConcept(AsText(s.experts[i].concept_name));
    e.setWeight(s.experts[i].weight);
  }
  b.setStrategy(static_cast<wire::Strategy>(s.strategy));
  auto f = b.initFairness();
  f.setProportional(s.fairness.proportional);
  f.setEnvyFree(s.fairness.envy_free);
  f.setEquitable(s.fairness.equitable);
  f.setRho(s.fairness.rho);
  f.setEpsilon(s.fairness.epsilon);
  b.setUtility(static_cast<wire::UtilityKind>(s.utility));
  b.setSteps(s.steps);
  b.setSeed(s.seed);
  b.setCfgScale(s.cfg_scale);
  b.setEta(s.eta);
  b.setBeta(s.beta);
  b.setGamma(s.gamma);
  auto layout = b.initLayout(static_cast<unsigned>(s.layout.size()));
  for (size_t i = 0; i < s.layout.size(); ++i)
    WriteTensor(s.layout[i], layout[static_cast<unsigned>(i)]);
  b.setScheduleName(AsText(s.schedule_name));
  b.setTimestepSpacing(AsText(s.timestep_spacing));
  b.setGuidanceOutside(s.guidance_outside);
}

// Bytes of tensor data in a message, used to size the builder's first segment so that a large
// tensor does not make the builder allocate (and the writer gather) several segments.
size_t TensorBytes(const Tensor& t) { return t.f32.size() * sizeof(float) + t.u8.size(); }

std::string Finish(capnp::MessageBuilder& builder) {
  auto segments = builder.getSegmentsForOutput();
  const size_t words = capnp::computeSerializedSizeInWords(segments);
  std::string out(words * sizeof(capnp::word), '\0');
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(out.data()), out.size()));
  capnp::writeMessage(stream, segments);
  return out;
}

unsigned FirstSegmentWords(size_t payload_bytes) {
  return static_cast<unsigned>(std::min<size_t>(payload_bytes / 8 + 1024, size_t{1} << 26));
}

// ---------------------------------------------------------------------------------------------
// Decoding helpers. Every Read* returns InvalidArgument naming the field on a bad value.

std::string ShapeString(const std::vector<uint32_t>& shape) {
  if (shape.empty()) return "()";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(shape[i]);
  }
  return s;
}

StatusOr<std::string> ReadText(capnp::Text::Reader r, std::string_view field,
                               size_t max_bytes = kMaxNameBytes) {
  if (r.size() > max_bytes) {
    return InvalidArgumentError("field '" + std::string(field) + "': " + std::to_string(r.size()) +
                                " bytes, at most " + std::to_string(max_bytes) + " allowed");
  }
  return std::string(r.cStr(), r.size());
}

Status CheckListSize(size_t n, std::string_view field, size_t max = kMaxListEntries) {
  if (n > max) {
    return InvalidArgumentError("field '" + std::string(field) + "': " + std::to_string(n) +
                                " entries, at most " + std::to_string(max) + " allowed");
  }
  return OkStatus();
}

template <typename WireEnum, typename OurEnum>
StatusOr<OurEnum> ReadEnum(WireEnum v, unsigned count, std::string_view field) {
  const auto raw = static_cast<uint16_t>(v);
  if (raw >= count) {
    return InvalidArgumentError("field '" + std::string(field) + "': enum value " +
                                std::to_string(raw) + " out of range [0, " + std::to_string(count) +
                                ")");
  }
  return static_cast<OurEnum>(raw);
}

StatusOr<UtilityKind> ReadUtilityKind(wire::UtilityKind v, std::string_view field) {
  return ReadEnum<wire::UtilityKind, UtilityKind>(v, 2, field);
}
StatusOr<PredictionType> ReadPredictionType(wire::PredictionType v, std::string_view field) {
  return ReadEnum<wire::PredictionType, PredictionType>(v, 3, field);
}
StatusOr<JobState> ReadJobState(wire::JobState v, std::string_view field) {
  return ReadEnum<wire::JobState, JobState>(v, 5, field);
}

StatusOr<std::vector<uint32_t>> ReadUInts(capnp::List<uint32_t>::Reader r, std::string_view field) {
  DND_RETURN_IF_ERROR(CheckListSize(r.size(), field));
  std::vector<uint32_t> v;
  v.reserve(r.size());
  for (uint32_t x : r) v.push_back(x);
  return v;
}

StatusOr<std::vector<std::string>> ReadTexts(capnp::List<capnp::Text>::Reader r,
                                             std::string_view field) {
  DND_RETURN_IF_ERROR(CheckListSize(r.size(), field));
  std::vector<std::string> v;
  v.reserve(r.size());
  for (unsigned i = 0; i < r.size(); ++i) {
    DND_ASSIGN_OR_RETURN(auto s,
                         ReadText(r[i], std::string(field) + "[" + std::to_string(i) + "]"));
    v.push_back(std::move(s));
  }
  return v;
}

StatusOr<std::vector<UtilityKind>> ReadUtilities(capnp::List<wire::UtilityKind>::Reader r,
                                                 std::string_view field) {
  DND_RETURN_IF_ERROR(CheckListSize(r.size(), field, 16));
  std::vector<UtilityKind> v;
  for (unsigned i = 0; i < r.size(); ++i) {
    DND_ASSIGN_OR_RETURN(auto k,
                         ReadUtilityKind(r[i], std::string(field) + "[" + std::to_string(i) + "]"));
    v.push_back(k);
  }
  return v;
}

Status CheckLatentShape(const std::vector<uint32_t>& shape, std::string_view field) {
  if (shape.size() != 3) {
    return InvalidArgumentError("field '" + std::string(field) +
                                "': expected (C, H, W), got shape " + ShapeString(shape));
  }
  for (uint32_t d : shape) {
    if (d == 0) {
      return InvalidArgumentError("field '" + std::string(field) + "': zero dimension in shape " +
                                  ShapeString(shape));
    }
  }
  return OkStatus();
}

// Structural check of any tensor: rank, dimensions, dtype, byte count. Element checks come from
// the field-specific requirements below.
StatusOr<Tensor> ReadTensor(wire::Tensor::Reader r, std::string_view field) {
  const std::string name = "tensor '" + std::string(field) + "'";
  Tensor t;
  auto shape = r.getShape();
  if (shape.size() > kMaxTensorRank) {
    return InvalidArgumentError(name + ": rank " + std::to_string(shape.size()) + " exceeds " +
                                std::to_string(kMaxTensorRank));
  }
  for (uint32_t d : shape) t.shape.push_back(d);
  constexpr uint64_t kMaxElements = uint64_t{1} << 32;
  uint64_t elements = 1;
  for (uint32_t d : t.shape) {
    if (d == 0)
      return InvalidArgumentError(name + ": zero dimension in shape " + ShapeString(t.shape));
    if (elements > kMaxElements / d) {
      return InvalidArgumentError(name + ": shape " + ShapeString(t.shape) + " is too large");
    }
    elements *= d;
  }
  const auto raw_dtype = static_cast<uint16_t>(r.getDtype());
  if (raw_dtype > 1) {
    return InvalidArgumentError(name + ": dtype " + std::to_string(raw_dtype) +
                                " out of range [0, 2)");
  }
  t.dtype = static_cast<DType>(raw_dtype);
  const uint64_t element_bytes = t.dtype == DType::kFloat32 ? sizeof(float) : 1;
  auto data = r.getData();
  if (elements * element_bytes != data.size()) {
    return InvalidArgumentError(name + ": shape " + ShapeString(t.shape) + " needs " +
                                std::to_string(elements * element_bytes) + " bytes, got " +
                                std::to_string(data.size()));
  }
  if (t.dtype == DType::kFloat32) {
    t.f32.resize(elements);
    if (elements) std::memcpy(t.f32.data(), data.begin(), data.size());
  } else {
    t.u8.assign(data.begin(), data.end());
  }
  return t;
}

// Requirements on a float32 tensor field: its rank and finite elements.
Status RequireFiniteFloat(const Tensor& t, size_t rank, std::string_view field) {
  const std::string name = "tensor '" + std::string(field) + "'";
  if (t.dtype != DType::kFloat32) return InvalidArgumentError(name + ": expected dtype float32");
  if (t.shape.size() != rank) {
    return InvalidArgumentError(name + ": expected rank " + std::to_string(rank) + ", got shape " +
                                ShapeString(t.shape));
  }
  for (size_t i = 0; i < t.f32.size(); ++i) {
    if (!std::isfinite(t.f32[i])) {
      return InvalidArgumentError(name + ": element " + std::to_string(i) + " is not finite");
    }
  }
  return OkStatus();
}

StatusOr<Tensor> ReadFiniteFloat(wire::Tensor::Reader r, size_t rank, std::string_view field) {
  DND_ASSIGN_OR_RETURN(Tensor t, ReadTensor(r, field));
  DND_RETURN_IF_ERROR(RequireFiniteFloat(t, rank, field));
  return t;
}

Status RequireFinite(double v, std::string_view field) {
  if (!std::isfinite(v)) {
    return InvalidArgumentError("field '" + std::string(field) + "': value is not finite");
  }
  return OkStatus();
}

// A declared guidance scale: finite and in [0, 100] (0 = none; the job spec's cfg range).
Status CheckGuidanceScale(double v, std::string_view field) {
  DND_RETURN_IF_ERROR(RequireFinite(v, field));
  if (v < 0 || v > 100) {
    return InvalidArgumentError("field '" + std::string(field) +
                                "' must be in [0, 100] (0 = none), got " + std::to_string(v));
  }
  return OkStatus();
}

Status RequireNonEmpty(const std::string& v, std::string_view field) {
  if (v.empty())
    return InvalidArgumentError("field '" + std::string(field) + "' must not be empty");
  return OkStatus();
}

Status CheckVersion(uint32_t version, std::string_view what) {
  if (version != kProtocolVersion) {
    return FailedPreconditionError(std::string(what) + ": peer speaks protocol version " +
                                   std::to_string(version) + ", this build speaks version " +
                                   std::to_string(kProtocolVersion));
  }
  return OkStatus();
}

StatusOr<ErrorReply> ReadError(wire::Error::Reader r) {
  ErrorReply e;
  const uint32_t code = r.getCode();
  if (code == 0 || code > static_cast<uint32_t>(StatusCode::kUnauthenticated)) {
    return InvalidArgumentError("field 'error.code': " + std::to_string(code) +
                                " is not an error status code (1..16)");
  }
  e.code = static_cast<StatusCode>(code);
  DND_ASSIGN_OR_RETURN(e.message, ReadText(r.getMessage(), "error.message", kMaxMessageTextBytes));
  DND_ASSIGN_OR_RETURN(e.job_id, ReadText(r.getJobId(), "error.jobId"));
  e.step_index = r.getStepIndex();
  e.attempt = r.getAttempt();
  return e;
}

Heartbeat ReadHeartbeat(wire::Heartbeat::Reader r) {
  return Heartbeat{r.getSentUnixMillis(), r.getInFlight()};
}

StatusOr<Goodbye> ReadGoodbye(wire::Goodbye::Reader r) {
  DND_ASSIGN_OR_RETURN(auto reason,
                       ReadText(r.getReason(), "goodbye.reason", kMaxMessageTextBytes));
  return Goodbye{std::move(reason)};
}

// ---- worker link ----

StatusOr<WorkerHello> ReadWorkerHello(wire::WorkerHello::Reader r) {
  WorkerHello h;
  h.protocol_version = r.getProtocolVersion();
  DND_RETURN_IF_ERROR(CheckVersion(h.protocol_version, "WorkerHello"));
  DND_ASSIGN_OR_RETURN(h.expert_name, ReadText(r.getExpertName(), "hello.expertName"));
  DND_RETURN_IF_ERROR(RequireNonEmpty(h.expert_name, "hello.expertName"));
  DND_ASSIGN_OR_RETURN(h.organisation, ReadText(r.getOrganisation(), "hello.organisation"));
  DND_ASSIGN_OR_RETURN(h.latent_space_id, ReadText(r.getLatentSpaceId(), "hello.latentSpaceId"));
  DND_ASSIGN_OR_RETURN(h.latent_shape, ReadUInts(r.getLatentShape(), "hello.latentShape"));
  DND_RETURN_IF_ERROR(CheckLatentShape(h.latent_shape, "hello.latentShape"));
  DND_ASSIGN_OR_RETURN(h.concepts, ReadTexts(r.getConcepts(), "hello.concepts"));
  DND_ASSIGN_OR_RETURN(h.utilities, ReadUtilities(r.getUtilities(), "hello.utilities"));
  DND_ASSIGN_OR_RETURN(h.prediction_type,
                       ReadPredictionType(r.getPredictionType(), "hello.predictionType"));
  h.max_batch = r.getMaxBatch();
  if (h.max_batch == 0) return InvalidArgumentError("field 'hello.maxBatch' must be >= 1, got 0");
  h.guidance_scale = r.getGuidanceScale();
  DND_RETURN_IF_ERROR(CheckGuidanceScale(h.guidance_scale, "hello.guidanceScale"));
  return h;
}

StatusOr<HelloAck> ReadHelloAck(wire::HelloAck::Reader r) {
  HelloAck a;
  a.accepted = r.getAccepted();
  DND_ASSIGN_OR_RETURN(a.reason, ReadText(r.getReason(), "helloAck.reason", kMaxMessageTextBytes));
  a.heartbeat_interval_millis = r.getHeartbeatIntervalMillis();
  return a;
}

StatusOr<StepRequest> ReadStepRequest(wire::StepRequest::Reader r) {
  StepRequest s;
  DND_ASSIGN_OR_RETURN(s.job_id, ReadText(r.getJobId(), "stepRequest.jobId"));
  DND_RETURN_IF_ERROR(RequireNonEmpty(s.job_id, "stepRequest.jobId"));
  s.step_index = r.getStepIndex();
  s.attempt = r.getAttempt();
  s.timestep = r.getTimestep();
  s.prev_timestep = r.getPrevTimestep();
  s.alpha_cumprod = r.getAlphaCumprod();
  if (!(s.alpha_cumprod > 0.0 && s.alpha_cumprod <= 1.0)) {  // also rejects NaN
    return InvalidArgumentError(
        "field 'stepRequest.alphaCumprod': expected a value in (0, 1], got " +
        std::to_string(s.alpha_cumprod));
  }
  DND_ASSIGN_OR_RETURN(s.latent, ReadFiniteFloat(r.getLatent(), 3, "latent"));
  DND_ASSIGN_OR_RETURN(s.concept_name, ReadText(r.getConcept(), "stepRequest.concept"));
  s.cfg_scale = r.getCfgScale();
  DND_RETURN_IF_ERROR(RequireFinite(s.cfg_scale, "stepRequest.cfgScale"));
  DND_ASSIGN_OR_RETURN(s.utility, ReadUtilityKind(r.getUtility(), "stepRequest.utility"));
  s.want_guidance = r.getWantGuidance();
  return s;
}

StatusOr<StepReply> ReadStepReply(wire::StepReply::Reader r) {
  StepReply s;
  DND_ASSIGN_OR_RETURN(s.job_id, ReadText(r.getJobId(), "stepReply.jobId"));
  s.step_index = r.getStepIndex();
  s.attempt = r.getAttempt();
  DND_ASSIGN_OR_RETURN(s.prediction_cond,
                       ReadFiniteFloat(r.getPredictionCond(), 3, "predictionCond"));
  DND_ASSIGN_OR_RETURN(s.prediction_uncond,
                       ReadFiniteFloat(r.getPredictionUncond(), 3, "predictionUncond"));
  if (s.prediction_uncond.shape != s.prediction_cond.shape) {
    return InvalidArgumentError(
        "tensor 'predictionUncond': shape " + ShapeString(s.prediction_uncond.shape) +
        " differs from predictionCond " + ShapeString(s.prediction_cond.shape));
  }
  DND_ASSIGN_OR_RETURN(s.utility, ReadFiniteFloat(r.getUtility(), 2, "utility"));
  const std::vector<uint32_t> hw(s.prediction_cond.shape.begin() + 1,
                                 s.prediction_cond.shape.end());
  if (s.utility.shape != hw) {
    return InvalidArgumentError("tensor 'utility': shape " + ShapeString(s.utility.shape) +
                                ", expected (H, W) = " + ShapeString(hw) + " of the prediction");
  }
  double sum = 0.0;
  for (size_t i = 0; i < s.utility.f32.size(); ++i) {
    if (s.utility.f32[i] < 0.0f) {
      return InvalidArgumentError("tensor 'utility': element " + std::to_string(i) +
                                  " is negative (" + std::to_string(s.utility.f32[i]) + ")");
    }
    sum += s.utility.f32[i];
  }
  if (std::abs(sum - 1.0) > 1e-3) {
    return InvalidArgumentError("tensor 'utility': elements sum to " + std::to_string(sum) +
                                ", expected 1 (tolerance 1e-3)");
  }
  s.compute_micros = r.getComputeMicros();
  return s;
}

StatusOr<GuidanceRequest> ReadGuidanceRequest(wire::GuidanceRequest::Reader r) {
  GuidanceRequest g;
  DND_ASSIGN_OR_RETURN(g.job_id, ReadText(r.getJobId(), "guidanceRequest.jobId"));
  DND_RETURN_IF_ERROR(RequireNonEmpty(g.job_id, "guidanceRequest.jobId"));
  g.step_index = r.getStepIndex();
  g.attempt = r.getAttempt();
  DND_ASSIGN_OR_RETURN(g.weights, ReadFiniteFloat(r.getWeights(), 2, "weights"));
  return g;
}

StatusOr<GuidanceReply> ReadGuidanceReply(wire::GuidanceReply::Reader r) {
  GuidanceReply g;
  DND_ASSIGN_OR_RETURN(g.job_id, ReadText(r.getJobId(), "guidanceReply.jobId"));
  g.step_index = r.getStepIndex();
  g.attempt = r.getAttempt();
  DND_ASSIGN_OR_RETURN(g.gradient, ReadFiniteFloat(r.getGradient(), 3, "gradient"));
  g.compute_micros = r.getComputeMicros();
  return g;
}

// ---- client link ----

StatusOr<JobSpec> ReadJobSpec(wire::JobSpec::Reader r) {
  JobSpec s;
  auto experts = r.getExperts();
  DND_RETURN_IF_ERROR(CheckListSize(experts.size(), "spec.experts", 256));
  if (experts.size() == 0) return InvalidArgumentError("field 'spec.experts' must not be empty");
  for (unsigned i = 0; i < experts.size(); ++i) {
    const std::string field = "spec.experts[" + std::to_string(i) + "]";
    ExpertRef e;
    DND_ASSIGN_OR_RETURN(e.expert_name,
                         ReadText(experts[i].getExpertName(), field + ".expertName"));
    DND_RETURN_IF_ERROR(RequireNonEmpty(e.expert_name, field + ".expertName"));
    DND_ASSIGN_OR_RETURN(e.concept_name, ReadText(experts[i].getConcept(), field + ".concept"));
    e.weight = experts[i].getWeight();
    if (!(std::isfinite(e.weight) && e.weight > 0.0f)) {
      return InvalidArgumentError("field '" + field +
                                  ".weight': expected a finite value > 0, got " +
                                  std::to_string(e.weight));
    }
    s.experts.push_back(std::move(e));
  }
  DND_ASSIGN_OR_RETURN(s.strategy,
                       (ReadEnum<wire::Strategy, Strategy>(r.getStrategy(), 4, "spec.strategy")));
  auto f = r.getFairness();
  s.fairness.proportional = f.getProportional();
  s.fairness.envy_free = f.getEnvyFree();
  s.fairness.equitable = f.getEquitable();
  s.fairness.rho = f.getRho();
  s.fairness.epsilon = f.getEpsilon();
  DND_RETURN_IF_ERROR(RequireFinite(s.fairness.rho, "spec.fairness.rho"));
  if (!(s.fairness.epsilon >= 0.0 && std::isfinite(s.fairness.epsilon))) {
    return InvalidArgumentError("field 'spec.fairness.epsilon': expected a finite value >= 0");
  }
  DND_ASSIGN_OR_RETURN(s.utility, ReadUtilityKind(r.getUtility(), "spec.utility"));
  s.steps = r.getSteps();  // 0 = the coordinator's default (range checked there)
  s.seed = r.getSeed();
  s.cfg_scale = r.getCfgScale();
  DND_RETURN_IF_ERROR(RequireFinite(s.cfg_scale, "spec.cfgScale"));
  s.eta = r.getEta();
  DND_RETURN_IF_ERROR(RequireFinite(s.eta, "spec.eta"));
  s.beta = r.getBeta();
  DND_RETURN_IF_ERROR(RequireFinite(s.beta, "spec.beta"));
  s.gamma = r.getGamma();
  DND_RETURN_IF_ERROR(RequireFinite(s.gamma, "spec.gamma"));
  s.guidance_outside = r.getGuidanceOutside();
  DND_RETURN_IF_ERROR(RequireFinite(s.guidance_outside, "spec.guidanceOutside"));
  if (s.guidance_outside < 0) {  // unset: a client of the older schema may have sent the enum
    switch (r.getGuidanceRegion()) {
      case wire::GuidanceRegion::DEFAULT:
        break;
      case wire::GuidanceRegion::OWN:
        s.guidance_outside = 0.0;
        break;
      case wire::GuidanceRegion::EVERYWHERE:
        s.guidance_outside = 1.0;
        break;
      default:
        return InvalidArgumentError("field 'spec.guidanceRegion': enum value " +
                                    std::to_string(static_cast<uint16_t>(r.getGuidanceRegion())) +
                                    " out of range [0, 3)");
    }
  }
  auto layout = r.getLayout();
  if (layout.size() != 0 && layout.size() != experts.size()) {
    return InvalidArgumentError("field 'spec.layout': " + std::to_string(layout.size()) +
                                " masks for " + std::to_string(experts.size()) +
                                " experts (expected none or one per expert)");
  }
  for (unsigned i = 0; i < layout.size(); ++i) {
    const std::string field = "spec.layout[" + std::to_string(i) + "]";
    DND_ASSIGN_OR_RETURN(Tensor mask, ReadFiniteFloat(layout[i], 2, field));
    if (i > 0 && mask.shape != s.layout[0].shape) {
      return InvalidArgumentError("tensor '" + field + "': shape " + ShapeString(mask.shape) +
                                  " differs from spec.layout[0] " + ShapeString(s.layout[0].shape));
    }
    for (float v : mask.f32) {
      if (v < 0.0f) return InvalidArgumentError("tensor '" + field + "': negative mask value");
    }
    s.layout.push_back(std::move(mask));
  }
  DND_ASSIGN_OR_RETURN(s.schedule_name, ReadText(r.getScheduleName(), "spec.scheduleName"));
  DND_ASSIGN_OR_RETURN(s.timestep_spacing,
                       ReadText(r.getTimestepSpacing(), "spec.timestepSpacing"));
  return s;
}

StatusOr<SubmitJob> ReadSubmitJob(wire::SubmitJob::Reader r) {
  SubmitJob s;
  DND_ASSIGN_OR_RETURN(s.client_token, ReadText(r.getClientToken(), "submitJob.clientToken"));
  DND_ASSIGN_OR_RETURN(s.spec, ReadJobSpec(r.getSpec()));
  return s;
}

StatusOr<JobStatus> ReadJobStatus(wire::JobStatus::Reader r, const std::string& field) {
  JobStatus s;
  DND_ASSIGN_OR_RETURN(s.job_id, ReadText(r.getJobId(), field + ".jobId"));
  DND_ASSIGN_OR_RETURN(s.state, ReadJobState(r.getState(), field + ".state"));
  DND_ASSIGN_OR_RETURN(s.reason, ReadText(r.getReason(), field + ".reason", kMaxMessageTextBytes));
  s.step = r.getStep();
  s.total_steps = r.getTotalSteps();
  s.submitted_unix_millis = r.getSubmittedUnixMillis();
  s.started_unix_millis = r.getStartedUnixMillis();
  s.finished_unix_millis = r.getFinishedUnixMillis();
  s.eta_millis = r.getEtaMillis();
  return s;
}

StatusOr<StatusReply> ReadStatusReply(wire::StatusReply::Reader r) {
  StatusReply s;
  auto jobs = r.getJobs();
  // Capped like every list: a list of zero-sized structs costs the sender nothing (capnp charges
  // one word per element against the traversal limit), so without the cap a 280-byte message
  // could make the decoder build a million JobStatus values (found by fuzzing).
  DND_RETURN_IF_ERROR(CheckListSize(jobs.size(), "statusReply.jobs"));
  for (unsigned i = 0; i < jobs.size(); ++i) {
    DND_ASSIGN_OR_RETURN(auto j,
                         ReadJobStatus(jobs[i], "statusReply.jobs[" + std::to_string(i) + "]"));
    s.jobs.push_back(std::move(j));
  }
  return s;
}

StatusOr<ProgressEvent> ReadProgressEvent(wire::ProgressEvent::Reader r) {
  ProgressEvent p;
  DND_ASSIGN_OR_RETURN(p.job_id, ReadText(r.getJobId(), "progress.jobId"));
  DND_ASSIGN_OR_RETURN(p.state, ReadJobState(r.getState(), "progress.state"));
  p.step = r.getStep();
  p.total_steps = r.getTotalSteps();
  auto shares = r.getShares();
  DND_RETURN_IF_ERROR(CheckListSize(shares.size(), "progress.shares"));
  for (unsigned i = 0; i < shares.size(); ++i) {
    DND_RETURN_IF_ERROR(RequireFinite(shares[i], "progress.shares[" + std::to_string(i) + "]"));
    p.shares.push_back(shares[i]);
  }
  DND_ASSIGN_OR_RETURN(p.message,
                       ReadText(r.getMessage(), "progress.message", kMaxMessageTextBytes));
  return p;
}

StatusOr<CancelReply> ReadCancelReply(wire::CancelReply::Reader r) {
  CancelReply c;
  DND_ASSIGN_OR_RETURN(c.job_id, ReadText(r.getJobId(), "cancelReply.jobId"));
  c.accepted = r.getAccepted();
  DND_ASSIGN_OR_RETURN(c.state, ReadJobState(r.getState(), "cancelReply.state"));
  return c;
}

StatusOr<ExpertList> ReadExpertList(wire::ExpertList::Reader r) {
  ExpertList list;
  auto experts = r.getExperts();
  DND_RETURN_IF_ERROR(CheckListSize(experts.size(), "expertList.experts"));
  for (unsigned i = 0; i < experts.size(); ++i) {
    const std::string field = "expertList.experts[" + std::to_string(i) + "]";
    auto e = experts[i];
    ExpertInfo x;
    DND_ASSIGN_OR_RETURN(x.expert_name, ReadText(e.getExpertName(), field + ".expertName"));
    DND_ASSIGN_OR_RETURN(x.organisation, ReadText(e.getOrganisation(), field + ".organisation"));
    DND_ASSIGN_OR_RETURN(x.latent_space_id,
                         ReadText(e.getLatentSpaceId(), field + ".latentSpaceId"));
    DND_ASSIGN_OR_RETURN(x.latent_shape, ReadUInts(e.getLatentShape(), field + ".latentShape"));
    DND_ASSIGN_OR_RETURN(x.concepts, ReadTexts(e.getConcepts(), field + ".concepts"));
    DND_ASSIGN_OR_RETURN(x.utilities, ReadUtilities(e.getUtilities(), field + ".utilities"));
    DND_ASSIGN_OR_RETURN(x.prediction_type,
                         ReadPredictionType(e.getPredictionType(), field + ".predictionType"));
    x.alive = e.getAlive();
    x.last_seen_millis_ago = e.getLastSeenMillisAgo();
    x.guidance_scale = e.getGuidanceScale();
    DND_RETURN_IF_ERROR(CheckGuidanceScale(x.guidance_scale, field + ".guidanceScale"));
    list.experts.push_back(std::move(x));
  }
  return list;
}

StatusOr<ResultFiles> ReadResultFiles(wire::ResultFiles::Reader r) {
  ResultFiles out;
  DND_ASSIGN_OR_RETURN(out.job_id, ReadText(r.getJobId(), "resultFiles.jobId"));
  auto files = r.getFiles();
  DND_RETURN_IF_ERROR(CheckListSize(files.size(), "resultFiles.files"));
  for (unsigned i = 0; i < files.size(); ++i) {
    const std::string field = "resultFiles.files[" + std::to_string(i) + "]";
    ResultFile f;
    DND_ASSIGN_OR_RETURN(f.name, ReadText(files[i].getName(), field + ".name"));
    if (f.name.empty() || f.name == "." || f.name == ".." ||
        f.name.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos) {
      return InvalidArgumentError("field '" + field + ".name': '" + f.name +
                                  "' is not a plain file name");
    }
    auto data = files[i].getData();
    f.data.assign(data.begin(), data.end());
    out.files.push_back(std::move(f));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The decode frame: word alignment, limits, exception boundary.

Status FromKjException(const kj::Exception& e, std::string_view what) {
  const std::string description = e.getDescription().cStr();
  const std::string message = std::string(what) + ": " + description;
  if (description.find("traversal limit") != std::string::npos ||
      description.find("too deeply-nested") != std::string::npos) {
    return ResourceExhaustedError(message);
  }
  return DataLossError(message);
}

template <typename Root, typename Fn>
auto DecodeFrame(std::span<const uint8_t> bytes, size_t limit_bytes, std::string_view what, Fn&& fn)
    -> decltype(fn(std::declval<typename Root::Reader>())) {
  if (bytes.empty()) return DataLossError(std::string(what) + ": empty message");
  if (bytes.size() % sizeof(capnp::word) != 0) {
    return DataLossError(std::string(what) + ": " + std::to_string(bytes.size()) +
                         " bytes is not a whole number of 8-byte words (truncated?)");
  }
  const size_t num_words = bytes.size() / sizeof(capnp::word);
  kj::Array<capnp::word> aligned_copy;
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()), num_words);
  } else {
    aligned_copy = kj::heapArray<capnp::word>(num_words);
    std::memcpy(aligned_copy.begin(), bytes.data(), bytes.size());
    words = aligned_copy.asPtr();
  }
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limit_bytes / sizeof(capnp::word);
  options.nestingLimit = kMaxNestingDepth;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    if (reader.getEnd() != words.end()) {
      return DataLossError(std::string(what) + ": " +
                           std::to_string((words.end() - reader.getEnd()) * sizeof(capnp::word)) +
                           " trailing bytes after the message");
    }
    auto root = reader.getRoot<Root>();
    DND_RETURN_IF_ERROR(CheckVersion(root.getProtocolVersion(), what));
    return fn(root);
  } catch (const kj::Exception& e) {
    return FromKjException(e, what);
  } catch (const std::exception& e) {
    return DataLossError(std::string(what) + ": " + e.what());
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public encoders.

std::string Encode(const WorkerToCoordinator& message) {
  size_t payload = 0;
  if (auto* s = std::get_if<StepReply>(&message)) {
    payload = TensorBytes(s->prediction_cond) + TensorBytes(s->prediction_uncond) +
              TensorBytes(s->utility);
  } else if (auto* g = std::get_if<GuidanceReply>(&message)) {
    payload = TensorBytes(g->gradient);
  }
  capnp::MallocMessageBuilder builder(FirstSegmentWords(payload));
  auto root = builder.initRoot<wire::WorkerToCoordinator>();
  root.setProtocolVersion(kProtocolVersion);
  auto body = root.initBody();
  std::visit(Overloaded{
                 [&](const WorkerHello& h) {
                   auto b = body.initHello();
                   b.setProtocolVersion(h.protocol_version);
                   b.setExpertName(AsText(h.expert_name));
                   b.setOrganisation(AsText(h.organisation));
                   b.setLatentSpaceId(AsText(h.latent_space_id));
                   WriteShape(h.latent_shape, b.initLatentShape(h.latent_shape.size()));
                   WriteTexts(h.concepts, b.initConcepts(h.concepts.size()));
                   WriteUtilities(h.utilities, b.initUtilities(h.utilities.size()));
                   b.setPredictionType(static_cast<wire::PredictionType>(h.prediction_type));
                   b.setMaxBatch(h.max_batch);
                   b.setGuidanceScale(h.guidance_scale);
                 },
                 [&](const StepReply& s) {
                   auto b = body.initStepReply();
                   b.setJobId(AsText(s.job_id));
                   b.setStepIndex(s.step_index);
                   b.setAttempt(s.attempt);
                   WriteTensor(s.prediction_cond, b.initPredictionCond());
                   WriteTensor(s.prediction_uncond, b.initPredictionUncond());
                   WriteTensor(s.utility, b.initUtility());
                   b.setComputeMicros(s.compute_micros);
                 },
                 [&](const GuidanceReply& g) {
                   auto b = body.initGuidanceReply();
                   b.setJobId(AsText(g.job_id));
                   b.setStepIndex(g.step_index);
                   b.setAttempt(g.attempt);
                   WriteTensor(g.gradient, b.initGradient());
                   b.setComputeMicros(g.compute_micros);
                 },
                 [&](const Heartbeat& h) { WriteHeartbeat(h, body.initHeartbeat()); },
                 [&](const ErrorReply& e) { WriteError(e, body.initError()); },
                 [&](const Goodbye& g) { body.initGoodbye().setReason(AsText(g.reason)); },
             },
             message);
  return Finish(builder);
}

std::string Encode(const CoordinatorToWorker& message) {
  size_t payload = 0;
  if (auto* s = std::get_if<StepRequest>(&message)) {
    payload = TensorBytes(s->latent);
  } else if (auto* g = std::get_if<GuidanceRequest>(&message)) {
    payload = TensorBytes(g->weights);
  }
  capnp::MallocMessageBuilder builder(FirstSegmentWords(payload));
  auto root = builder.initRoot<wire::CoordinatorToWorker>();
  root.setProtocolVersion(kProtocolVersion);
  auto body = root.initBody();
  std::visit(Overloaded{
                 [&](const HelloAck& a) {
                   auto b = body.initHelloAck();
                   b.setAccepted(a.accepted);
                   b.setReason(AsText(a.reason));
                   b.setHeartbeatIntervalMillis(a.heartbeat_interval_millis);
                 },
                 [&](const StepRequest& s) {
                   auto b = body.initStepRequest();
                   b.setJobId(AsText(s.job_id));
                   b.setStepIndex(s.step_index);
                   b.setAttempt(s.attempt);
                   b.setTimestep(s.timestep);
                   b.setPrevTimestep(s.prev_timestep);
                   b.setAlphaCumprod(s.alpha_cumprod);
                   WriteTensor(s.latent, b.initLatent());
                   b.setConcept(AsText(s.concept_name));
                   b.setCfgScale(s.cfg_scale);
                   b.setUtility(static_cast<wire::UtilityKind>(s.utility));
                   b.setWantGuidance(s.want_guidance);
                 },
                 [&](const GuidanceRequest& g) {
                   auto b = body.initGuidanceRequest();
                   b.setJobId(AsText(g.job_id));
                   b.setStepIndex(g.step_index);
                   b.setAttempt(g.attempt);
                   WriteTensor(g.weights, b.initWeights());
                 },
                 [&](const Heartbeat& h) { WriteHeartbeat(h, body.initHeartbeat()); },
                 [&](const ErrorReply& e) { WriteError(e, body.initError()); },
                 [&](const Goodbye& g) { body.initGoodbye().setReason(AsText(g.reason)); },
             },
             message);
  return Finish(builder);
}

std::string Encode(const ClientToCoordinator& message) {
  size_t payload = 0;
  if (auto* s = std::get_if<SubmitJob>(&message)) {
    for (const Tensor& t : s->spec.layout) payload += TensorBytes(t);
  }
  capnp::MallocMessageBuilder builder(FirstSegmentWords(payload));
  auto root = builder.initRoot<wire::ClientToCoordinator>();
  root.setProtocolVersion(kProtocolVersion);
  auto body = root.initBody();
  std::visit(Overloaded{
                 [&](const SubmitJob& s) {
                   auto b = body.initSubmitJob();
                   b.setClientToken(AsText(s.client_token));
                   WriteJobSpec(s.spec, b.initSpec());
                 },
                 [&](const GetStatus& g) { body.initGetStatus().setJobId(AsText(g.job_id)); },
                 [&](const Watch& w) { body.initWatch().setJobId(AsText(w.job_id)); },
                 [&](const Cancel& c) { body.initCancel().setJobId(AsText(c.job_id)); },
                 [&](const ListExperts&) { body.initListExperts(); },
                 [&](const FetchResult& f) { body.initFetchResult().setJobId(AsText(f.job_id)); },
             },
             message);
  return Finish(builder);
}

std::string Encode(const CoordinatorToClient& message) {
  size_t payload = 0;
  if (auto* r = std::get_if<ResultFiles>(&message)) {
    for (const ResultFile& f : r->files) payload += f.data.size();
  }
  capnp::MallocMessageBuilder builder(FirstSegmentWords(payload));
  auto root = builder.initRoot<wire::CoordinatorToClient>();
  root.setProtocolVersion(kProtocolVersion);
  auto body = root.initBody();
  std::visit(Overloaded{
                 [&](const SubmitReply& s) { body.initSubmitReply().setJobId(AsText(s.job_id)); },
                 [&](const StatusReply& s) {
                   auto jobs =
                       body.initStatusReply().initJobs(static_cast<unsigned>(s.jobs.size()));
                   for (size_t i = 0; i < s.jobs.size(); ++i) {
                     WriteJobStatus(s.jobs[i], jobs[static_cast<unsigned>(i)]);
                   }
                 },
                 [&](const ProgressEvent& p) {
                   auto b = body.initProgressEvent();
                   b.setJobId(AsText(p.job_id));
                   b.setState(static_cast<wire::JobState>(p.state));
                   b.setStep(p.step);
                   b.setTotalSteps(p.total_steps);
                   auto shares = b.initShares(static_cast<unsigned>(p.shares.size()));
                   for (size_t i = 0; i < p.shares.size(); ++i)
                     shares.set(static_cast<unsigned>(i), p.shares[i]);
                   b.setMessage(AsText(p.message));
                 },
                 [&](const CancelReply& c) {
                   auto b = body.initCancelReply();
                   b.setJobId(AsText(c.job_id));
                   b.setAccepted(c.accepted);
                   b.setState(static_cast<wire::JobState>(c.state));
                 },
                 [&](const ExpertList& l) {
                   auto experts =
                       body.initExpertList().initExperts(static_cast<unsigned>(l.experts.size()));
                   for (size_t i = 0; i < l.experts.size(); ++i) {
                     const ExpertInfo& x = l.experts[i];
                     auto b = experts[static_cast<unsigned>(i)];
                     b.setExpertName(AsText(x.expert_name));
                     b.setOrganisation(AsText(x.organisation));
                     b.setLatentSpaceId(AsText(x.latent_space_id));
                     WriteShape(x.latent_shape, b.initLatentShape(x.latent_shape.size()));
                     WriteTexts(x.concepts, b.initConcepts(x.concepts.size()));
                     WriteUtilities(x.utilities, b.initUtilities(x.utilities.size()));
                     b.setPredictionType(static_cast<wire::PredictionType>(x.prediction_type));
                     b.setAlive(x.alive);
                     b.setLastSeenMillisAgo(x.last_seen_millis_ago);
                     b.setGuidanceScale(x.guidance_scale);
                   }
                 },
                 [&](const ResultFiles& r) {
                   auto b = body.initResultFiles();
                   b.setJobId(AsText(r.job_id));
                   auto files = b.initFiles(static_cast<unsigned>(r.files.size()));
                   for (size_t i = 0; i < r.files.size(); ++i) {
                     auto f = files[static_cast<unsigned>(i)];
                     f.setName(AsText(r.files[i].name));
                     auto data = f.initData(static_cast<unsigned>(r.files[i].data.size()));
                     if (!r.files[i].data.empty()) {
                       std::memcpy(data.begin(), r.files[i].data.data(), r.files[i].data.size());
                     }
                   }
                 },
                 [&](const ErrorReply& e) { WriteError(e, body.initError()); },
             },
             message);
  return Finish(builder);
}

// ---------------------------------------------------------------------------------------------
// Public decoders.

StatusOr<WorkerToCoordinator> DecodeWorkerToCoordinator(std::span<const uint8_t> bytes) {
  using R = StatusOr<WorkerToCoordinator>;
  return DecodeFrame<wire::WorkerToCoordinator>(
      bytes, kMaxWorkerLinkMessageBytes, "WorkerToCoordinator",
      [](wire::WorkerToCoordinator::Reader root) -> R {
        auto body = root.getBody();
        switch (body.which()) {
          case wire::WorkerToCoordinator::Body::HELLO: {
            DND_ASSIGN_OR_RETURN(auto m, ReadWorkerHello(body.getHello()));
            return WorkerToCoordinator(std::move(m));
          }
          case wire::WorkerToCoordinator::Body::STEP_REPLY: {
            DND_ASSIGN_OR_RETURN(auto m, ReadStepReply(body.getStepReply()));
            return WorkerToCoordinator(std::move(m));
          }
          case wire::WorkerToCoordinator::Body::GUIDANCE_REPLY: {
            DND_ASSIGN_OR_RETURN(auto m, ReadGuidanceReply(body.getGuidanceReply()));
            return WorkerToCoordinator(std::move(m));
          }
          case wire::WorkerToCoordinator::Body::HEARTBEAT:
            return WorkerToCoordinator(ReadHeartbeat(body.getHeartbeat()));
          case wire::WorkerToCoordinator::Body::ERROR: {
            DND_ASSIGN_OR_RETURN(auto m, ReadError(body.getError()));
            return WorkerToCoordinator(std::move(m));
          }
          case wire::WorkerToCoordinator::Body::GOODBYE: {
            DND_ASSIGN_OR_RETURN(auto m, ReadGoodbye(body.getGoodbye()));
            return WorkerToCoordinator(std::move(m));
          }
        }
        return InvalidArgumentError("WorkerToCoordinator: unknown message kind " +
                                    std::to_string(static_cast<unsigned>(body.which())));
      });
}

StatusOr<CoordinatorToWorker> DecodeCoordinatorToWorker(std::span<const uint8_t> bytes) {
  using R = StatusOr<CoordinatorToWorker>;
  return DecodeFrame<wire::CoordinatorToWorker>(
      bytes, kMaxWorkerLinkMessageBytes, "CoordinatorToWorker",
      [](wire::CoordinatorToWorker::Reader root) -> R {
        auto body = root.getBody();
        switch (body.which()) {
          case wire::CoordinatorToWorker::Body::HELLO_ACK: {
            DND_ASSIGN_OR_RETURN(auto m, ReadHelloAck(body.getHelloAck()));
            return CoordinatorToWorker(std::move(m));
          }
          case wire::CoordinatorToWorker::Body::STEP_REQUEST: {
            DND_ASSIGN_OR_RETURN(auto m, ReadStepRequest(body.getStepRequest()));
            return CoordinatorToWorker(std::move(m));
          }
          case wire::CoordinatorToWorker::Body::GUIDANCE_REQUEST: {
            DND_ASSIGN_OR_RETURN(auto m, ReadGuidanceRequest(body.getGuidanceRequest()));
            return CoordinatorToWorker(std::move(m));
          }
          case wire::CoordinatorToWorker::Body::HEARTBEAT:
            return CoordinatorToWorker(ReadHeartbeat(body.getHeartbeat()));
          case wire::CoordinatorToWorker::Body::ERROR: {
            DND_ASSIGN_OR_RETURN(auto m, ReadError(body.getError()));
            return CoordinatorToWorker(std::move(m));
          }
          case wire::CoordinatorToWorker::Body::GOODBYE: {
            DND_ASSIGN_OR_RETURN(auto m, ReadGoodbye(body.getGoodbye()));
            return CoordinatorToWorker(std::move(m));
          }
        }
        return InvalidArgumentError("CoordinatorToWorker: unknown message kind " +
                                    std::to_string(static_cast<unsigned>(body.which())));
      });
}

StatusOr<ClientToCoordinator> DecodeClientToCoordinator(std::span<const uint8_t> bytes) {
  using R = StatusOr<ClientToCoordinator>;
  return DecodeFrame<wire::ClientToCoordinator>(
      bytes, kMaxClientRequestBytes, "ClientToCoordinator",
      [](wire::ClientToCoordinator::Reader root) -> R {
        auto body = root.getBody();
        switch (body.which()) {
          case wire::ClientToCoordinator::Body::SUBMIT_JOB: {
            DND_ASSIGN_OR_RETURN(auto m, ReadSubmitJob(body.getSubmitJob()));
            return ClientToCoordinator(std::move(m));
          }
          case wire::ClientToCoordinator::Body::GET_STATUS: {
            DND_ASSIGN_OR_RETURN(auto id,
                                 ReadText(body.getGetStatus().getJobId(), "getStatus.jobId"));
            return ClientToCoordinator(GetStatus{std::move(id)});
          }
          case wire::ClientToCoordinator::Body::WATCH: {
            DND_ASSIGN_OR_RETURN(auto id, ReadText(body.getWatch().getJobId(), "watch.jobId"));
            DND_RETURN_IF_ERROR(RequireNonEmpty(id, "watch.jobId"));
            return ClientToCoordinator(Watch{std::move(id)});
          }
          case wire::ClientToCoordinator::Body::CANCEL: {
            DND_ASSIGN_OR_RETURN(auto id, ReadText(body.getCancel().getJobId(), "cancel.jobId"));
            DND_RETURN_IF_ERROR(RequireNonEmpty(id, "cancel.jobId"));
            return ClientToCoordinator(Cancel{std::move(id)});
          }
          case wire::ClientToCoordinator::Body::LIST_EXPERTS:
            return ClientToCoordinator(ListExperts{});
          case wire::ClientToCoordinator::Body::FETCH_RESULT: {
            DND_ASSIGN_OR_RETURN(auto id,
                                 ReadText(body.getFetchResult().getJobId(), "fetchResult.jobId"));
            DND_RETURN_IF_ERROR(RequireNonEmpty(id, "fetchResult.jobId"));
            return ClientToCoordinator(FetchResult{std::move(id)});
          }
        }
        return InvalidArgumentError("ClientToCoordinator: unknown message kind " +
                                    std::to_string(static_cast<unsigned>(body.which())));
      });
}

StatusOr<CoordinatorToClient> DecodeCoordinatorToClient(std::span<const uint8_t> bytes) {
  using R = StatusOr<CoordinatorToClient>;
  return DecodeFrame<wire::CoordinatorToClient>(
      bytes, kMaxClientReplyBytes, "CoordinatorToClient",
      [](wire::CoordinatorToClient::Reader root) -> R {
        auto body = root.getBody();
        switch (body.which()) {
          case wire::CoordinatorToClient::Body::SUBMIT_REPLY: {
            DND_ASSIGN_OR_RETURN(auto id,
                                 ReadText(body.getSubmitReply().getJobId(), "submitReply.jobId"));
            return CoordinatorToClient(SubmitReply{std::move(id)});
          }
          case wire::CoordinatorToClient::Body::STATUS_REPLY: {
            DND_ASSIGN_OR_RETURN(auto m, ReadStatusReply(body.getStatusReply()));
            return CoordinatorToClient(std::move(m));
          }
          case wire::CoordinatorToClient::Body::PROGRESS_EVENT: {
            DND_ASSIGN_OR_RETURN(auto m, ReadProgressEvent(body.getProgressEvent()));
            return CoordinatorToClient(std::move(m));
          }
          case wire::CoordinatorToClient::Body::CANCEL_REPLY: {
            DND_ASSIGN_OR_RETURN(auto m, ReadCancelReply(body.getCancelReply()));
            return CoordinatorToClient(std::move(m));
          }
          case wire::CoordinatorToClient::Body::EXPERT_LIST: {
            DND_ASSIGN_OR_RETURN(auto m, ReadExpertList(body.getExpertList()));
            return CoordinatorToClient(std::move(m));
          }
          case wire::CoordinatorToClient::Body::RESULT_FILES: {
            DND_ASSIGN_OR_RETURN(auto m, ReadResultFiles(body.getResultFiles()));
            return CoordinatorToClient(std::move(m));
          }
          case wire::CoordinatorToClient::Body::ERROR: {
            DND_ASSIGN_OR_RETURN(auto m, ReadError(body.getError()));
            return CoordinatorToClient(std::move(m));
          }
        }
        return InvalidArgumentError("CoordinatorToClient: unknown message kind " +
                                    std::to_string(static_cast<unsigned>(body.which())));
      });
}

}  // namespace dnd::protocol
