// Helpers declared in messages.h: tensor and error-reply builders and enum names for logs.
#include "protocol/messages.h"

#include <utility>

namespace dnd::protocol {

Tensor MakeFloatTensor(std::vector<uint32_t> shape, std::vector<float> values) {
  Tensor t;
  t.shape = std::move(shape);
  t.dtype = DType::kFloat32;
  t.f32 = std::move(values);
  DND_CHECK(t.f32.size() == t.NumElements())
      << "MakeFloatTensor: " << t.f32.size() << " values for " << t.NumElements() << " elements";
  return t;
}

ErrorReply MakeErrorReply(const Status& status, std::string job_id, uint32_t step_index,
                          uint32_t attempt) {
  DND_CHECK(!status.ok()) << "MakeErrorReply needs an error status";
  return ErrorReply{status.code(), status.message(), std::move(job_id), step_index, attempt};
}

const char* UtilityKindName(UtilityKind kind) {
  switch (kind) {
    case UtilityKind::kScore:
      return "score";
    case UtilityKind::kAttention:
      return "attention";
  }
  return "unknown";
}

const char* PredictionTypeName(PredictionType type) {
  switch (type) {
    case PredictionType::kEpsilon:
      return "epsilon";
    case PredictionType::kSample:
      return "sample";
    case PredictionType::kVPrediction:
      return "v_prediction";
  }
  return "unknown";
}

const char* StrategyName(Strategy strategy) {
  switch (strategy) {
    case Strategy::kDnd:
      return "dnd";
    case Strategy::kAveraging:
      return "averaging";
    case Strategy::kComposable:
      return "composable";
    case Strategy::kMultiDiffusion:
      return "multidiffusion";
  }
  return "unknown";
}

const char* JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

}  // namespace dnd::protocol
