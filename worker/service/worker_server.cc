// See worker_server.h. One thread owns the DEALER socket, the batchers and the guidance cache:
// it drains every message that has arrived, runs ready batches through the expert, sends the
// replies, and heart-beats between batches. A wedged model therefore stops the heartbeats, which is
// what the coordinator should see.
#include "worker/service/worker_server.h"

#include <algorithm>
#include <chrono>
#include <list>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <spdlog/spdlog.h>

#include "protocol/codec.h"
#include "protocol/connection_monitor.h"
#include "protocol/messages.h"
#include "worker/service/request_batcher.h"

namespace dnd::worker {
namespace {

using protocol::CoordinatorToWorker;
using protocol::WorkerToCoordinator;

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ShapeString(const std::vector<uint32_t>& shape) {
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += "x";
    out += std::to_string(shape[i]);
  }
  return out.empty() ? "scalar" : out;
}

experts::StepInput ToStepInput(const protocol::StepRequest& r) {
  experts::StepInput in;
  in.latent = std::span<const float>(r.latent.f32);
  in.timestep = r.timestep;
  in.alpha_cumprod = r.alpha_cumprod;
  in.concept_name = r.concept_name;
  in.utility = ToExpertUtility(r.utility);
  in.cfg_scale = r.cfg_scale;
  return in;
}

// A guidance request together with the step request it refers to.
struct PendingGuidance {
  protocol::GuidanceRequest request;
  protocol::StepRequest step;
};

}  // namespace

experts::UtilityKind ToExpertUtility(protocol::UtilityKind kind) {
  return kind == protocol::UtilityKind::kAttention ? experts::UtilityKind::kAttention
                                                   : experts::UtilityKind::kScore;
}

protocol::UtilityKind ToWireUtility(experts::UtilityKind kind) {
  return kind == experts::UtilityKind::kAttention ? protocol::UtilityKind::kAttention
                                                  : protocol::UtilityKind::kScore;
}

protocol::PredictionType ToWirePrediction(experts::PredictionType type) {
  switch (type) {
    case experts::PredictionType::kEpsilon:
      return protocol::PredictionType::kEpsilon;
    case experts::PredictionType::kSample:
      return protocol::PredictionType::kSample;
    case experts::PredictionType::kV:
      return protocol::PredictionType::kVPrediction;
  }
  return protocol::PredictionType::kEpsilon;
}

protocol::WorkerHello MakeHello(const experts::ExpertInfo& info, const std::string& organisation,
                                size_t max_batch, double guidance_scale) {
  protocol::WorkerHello hello;
  hello.expert_name = info.name;
  hello.organisation = organisation;
  hello.latent_space_id = info.latent.id;
  hello.latent_shape = {static_cast<uint32_t>(info.latent.channels),
                        static_cast<uint32_t>(info.latent.height),
                        static_cast<uint32_t>(info.latent.width)};
  hello.concepts = info.concepts;
  for (experts::UtilityKind u : info.utilities) hello.utilities.push_back(ToWireUtility(u));
  hello.prediction_type = ToWirePrediction(info.prediction_type);
  hello.max_batch = static_cast<uint32_t>(max_batch);
  hello.guidance_scale = static_cast<float>(guidance_scale);
  return hello;
}

Status CheckLatentShape(const experts::ExpertInfo& info, const protocol::Tensor& latent) {
  const std::vector<uint32_t> expected = {static_cast<uint32_t>(info.latent.channels),
                                          static_cast<uint32_t>(info.latent.height),
                                          static_cast<uint32_t>(info.latent.width)};
  if (latent.dtype != protocol::DType::kFloat32 || latent.shape != expected) {
    return InvalidArgumentError(
        "latent shape " + ShapeString(latent.shape) + " does not match expert '" + info.name +
        "' (" + ShapeString(expected) + " float32, latent space '" + info.latent.id + "')");
  }
  return OkStatus();
}

// The state of one Run(): lives on the serving thread only.
class WorkerServer::Loop {
 public:
  Loop(WorkerServer& server, std::unique_ptr<protocol::DealerSocket> socket,
       std::unique_ptr<protocol::ConnectionMonitor> monitor)
      : server_(server),
        info_(server.expert_->Describe()),
        socket_(std::move(socket)),
        monitor_(std::move(monitor)),
        steps_(server.options_.max_batch, server.options_.batch_wait_ms),
        guidance_(server.options_.max_batch, server.options_.batch_wait_ms),
        heartbeat_interval_(std::chrono::milliseconds(server.options_.heartbeat_interval_ms)) {}

  Status Run() {
    SendHello();
    while (!server_.stop_.load()) {
      const Clock::time_point now = Clock::now();
      // Drain everything that has arrived (batches form from what queued up meanwhile); the first
      // receive waits until the next thing this loop has to do.
      int timeout_ms = MillisUntil(NextWake(now), now);
      for (;;) {
        StatusOr<std::string> payload = socket_->Receive(timeout_ms);
        if (!payload.ok()) {
          if (payload.status().code() != StatusCode::kDeadlineExceeded) {
            spdlog::warn("worker: dropped a message: {}", payload.status().ToString());
          }
          break;
        }
        last_heard_ = Clock::now();
        if (Status s = Handle(*payload); !s.ok()) return s;
        if (done_) return OkStatus();
        timeout_ms = 0;
      }
      // A coordinator that refuses this worker's key never answers: stop with the reason
      // instead of retrying registration forever.
      monitor_->Drain();
      DND_RETURN_IF_ERROR(
          monitor_->HandshakeStatus(server_.options_.coordinator_endpoint, "this worker's key"));
      const Clock::time_point after = Clock::now();
      while (steps_.Ready(after)) RunStepBatch(steps_.Take());
      while (guidance_.Ready(Clock::now())) RunGuidanceBatch(guidance_.Take());
      Housekeeping(Clock::now());
    }
    Send(protocol::Goodbye{.reason = "worker stopping"});
    return OkStatus();
  }

 private:
  Clock::time_point NextWake(Clock::time_point now) const {
    Clock::time_point wake = std::min(next_heartbeat_, now + std::chrono::milliseconds(100));
    if (!registered_) wake = std::min(wake, next_hello_);
    if (auto d = steps_.Deadline()) wake = std::min(wake, *d);
    if (auto d = guidance_.Deadline()) wake = std::min(wake, *d);
    return wake;
  }

  static int MillisUntil(Clock::time_point when, Clock::time_point now) {
    if (when <= now) return 0;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(when - now).count());
  }

  void Send(const WorkerToCoordinator& message) {
    Status s = socket_->Send(protocol::Encode(message));
    if (!s.ok()) spdlog::warn("worker: send failed: {}", s.ToString());
  }

  void SendError(const Status& status, const std::string& job_id, uint32_t step, uint32_t attempt) {
    Send(protocol::MakeErrorReply(status, job_id, step, attempt));
  }

  void SendHello() {
    Send(MakeHello(info_, server_.options_.organisation, server_.options_.max_batch,
                   server_.options_.guidance_scale));
    next_hello_ = Clock::now() + std::chrono::milliseconds(server_.options_.hello_retry_ms);
  }

  void Housekeeping(Clock::time_point now) {
    if (!registered_ && now >= next_hello_) SendHello();
    if (registered_ && now - last_heard_ > 3 * heartbeat_interval_) {
      spdlog::warn(
          "worker: coordinator silent for {} ms; registering again",
          std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard_).count());
      registered_ = false;
      SendHello();
    }
    if (now >= next_heartbeat_) {
      Send(protocol::Heartbeat{
          .sent_unix_millis = UnixMillis(),
          .in_flight = static_cast<uint32_t>(steps_.size() + guidance_.size())});
      next_heartbeat_ = now + heartbeat_interval_;
    }
  }

  Status Handle(const std::string& payload) {
    StatusOr<CoordinatorToWorker> decoded =
        protocol::DecodeCoordinatorToWorker(protocol::AsBytes(payload));
    if (!decoded.ok()) {
      // The request could not be read, so its job is unknown: report the problem without one.
      spdlog::warn("worker: bad request: {}", decoded.status().ToString());
      SendError(decoded.status().WithContext("request rejected"), "", 0, 0);
      return OkStatus();
    }
    return std::visit([this](auto& m) { return On(m); }, *decoded);
  }

  Status On(protocol::HelloAck& ack) {
    if (!ack.accepted) {
      return FailedPreconditionError("coordinator refused registration of expert '" + info_.name +
                                     "': " + ack.reason);
    }
    if (!registered_) spdlog::info("worker: registered '{}' with the coordinator", info_.name);
    registered_ = true;
    if (ack.heartbeat_interval_millis > 0) {
      heartbeat_interval_ = std::chrono::milliseconds(ack.heartbeat_interval_millis);
    }
    return OkStatus();
  }

  Status On(protocol::StepRequest& request) {
    Status valid = CheckLatentShape(info_, request.latent);
    if (valid.ok() && info_.ConceptIndex(request.concept_name) < 0) {
      valid = experts::ValidateStepInput(info_, ToStepInput(request));
    }
    if (!valid.ok()) {
      SendError(valid, request.job_id, request.step_index, request.attempt);
      return OkStatus();
    }
    steps_.Add(std::move(request), Clock::now());
    return OkStatus();
  }

  Status On(protocol::GuidanceRequest& request) {
    auto it = cache_.find(request.job_id);
    if (it == cache_.end() || it->second.step.step_index != request.step_index ||
        it->second.step.attempt != request.attempt) {
      SendError(FailedPreconditionError("guidance request for job '" + request.job_id + "' step " +
                                        std::to_string(request.step_index) + " attempt " +
                                        std::to_string(request.attempt) +
                                        ", a step this worker has not served with want_guidance"),
                request.job_id, request.step_index, request.attempt);
      return OkStatus();
    }
    Touch(it->second);
    const size_t positions = info_.latent.NumPositions();
    if (request.weights.shape != std::vector<uint32_t>{static_cast<uint32_t>(info_.latent.height),
                                                       static_cast<uint32_t>(info_.latent.width)} ||
        request.weights.f32.size() != positions) {
      SendError(InvalidArgumentError("allocation weights have shape " +
                                     ShapeString(request.weights.shape) + ", expected " +
                                     std::to_string(info_.latent.height) + "x" +
                                     std::to_string(info_.latent.width)),
                request.job_id, request.step_index, request.attempt);
      return OkStatus();
    }
    guidance_.Add(PendingGuidance{std::move(request), it->second.step}, Clock::now());
    return OkStatus();
  }

  Status On(protocol::Heartbeat&) { return OkStatus(); }

  Status On(protocol::ErrorReply& error) {
    spdlog::warn("worker: coordinator error: {}", error.ToStatus().ToString());
    if (error.code == StatusCode::kFailedPrecondition && error.job_id.empty()) {
      // "not registered": the coordinator does not know this peer (e.g. it restarted).
      registered_ = false;
      SendHello();
    }
    return OkStatus();
  }

  Status On(protocol::Goodbye& bye) {
    spdlog::info("worker: coordinator said goodbye: {}", bye.reason);
    done_ = true;
    return OkStatus();
  }

  void RunStepBatch(std::vector<protocol::StepRequest> batch) {
    std::vector<experts::StepInput> inputs;
    inputs.reserve(batch.size());
    for (const protocol::StepRequest& r : batch) inputs.push_back(ToStepInput(r));
    const Clock::time_point start = Clock::now();
    std::vector<StatusOr<experts::StepOutput>> outputs = server_.expert_->Step(inputs);
    const auto micros = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    DND_CHECK(outputs.size() == batch.size())
        << "expert returned " << outputs.size() << " results for " << batch.size() << " items";
    const uint32_t c = info_.latent.channels, h = info_.latent.height, w = info_.latent.width;
    for (size_t i = 0; i < batch.size(); ++i) {
      protocol::StepRequest& r = batch[i];
      if (!outputs[i].ok()) {
        SendError(outputs[i].status(), r.job_id, r.step_index, r.attempt);
        continue;
      }
      experts::StepOutput& out = *outputs[i];
      protocol::StepReply reply;
      reply.job_id = r.job_id;
      reply.step_index = r.step_index;
      reply.attempt = r.attempt;
      reply.prediction_cond = protocol::MakeFloatTensor({c, h, w}, std::move(out.prediction_cond));
      reply.prediction_uncond =
          protocol::MakeFloatTensor({c, h, w}, std::move(out.prediction_uncond));
      reply.utility = protocol::MakeFloatTensor({h, w}, std::move(out.utility));
      reply.compute_micros = micros;
      Send(reply);
      if (r.want_guidance) Remember(std::move(r));
    }
  }

  void RunGuidanceBatch(std::vector<PendingGuidance> batch) {
    std::vector<experts::GradientInput> inputs;
    inputs.reserve(batch.size());
    for (const PendingGuidance& g : batch) {
      inputs.push_back({.step = ToStepInput(g.step),
                        .allocation = std::span<const float>(g.request.weights.f32)});
    }
    const Clock::time_point start = Clock::now();
    std::vector<StatusOr<std::vector<float>>> grads = server_.expert_->Gradient(inputs);
    const auto micros = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    DND_CHECK(grads.size() == batch.size())
        << "expert returned " << grads.size() << " gradients for " << batch.size() << " items";
    const uint32_t c = info_.latent.channels, h = info_.latent.height, w = info_.latent.width;
    for (size_t i = 0; i < batch.size(); ++i) {
      const protocol::GuidanceRequest& r = batch[i].request;
      if (!grads[i].ok()) {
        SendError(grads[i].status(), r.job_id, r.step_index, r.attempt);
        continue;
      }
      protocol::GuidanceReply reply;
      reply.job_id = r.job_id;
      reply.step_index = r.step_index;
      reply.attempt = r.attempt;
      reply.gradient = protocol::MakeFloatTensor({c, h, w}, std::move(*grads[i]));
      reply.compute_micros = micros;
      Send(reply);
    }
  }

  struct Cached {
    protocol::StepRequest step;
    std::list<std::string>::iterator lru;
  };

  // Keeps the latest want_guidance step of its job for the guidance request that follows.
  void Remember(protocol::StepRequest step) {
    auto it = cache_.find(step.job_id);
    if (it != cache_.end()) {
      it->second.step = std::move(step);
      Touch(it->second);
      return;
    }
    lru_.push_front(step.job_id);
    std::string job = step.job_id;
    cache_.emplace(std::move(job), Cached{std::move(step), lru_.begin()});
    while (cache_.size() > server_.options_.guidance_cache_jobs) {
      cache_.erase(lru_.back());
      lru_.pop_back();
    }
  }

  void Touch(Cached& entry) { lru_.splice(lru_.begin(), lru_, entry.lru); }

  WorkerServer& server_;
  const experts::ExpertInfo& info_;
  std::unique_ptr<protocol::DealerSocket> socket_;
  std::unique_ptr<protocol::ConnectionMonitor> monitor_;  // watches socket_; destroyed first
  RequestBatcher<protocol::StepRequest> steps_;
  RequestBatcher<PendingGuidance> guidance_;
  std::unordered_map<std::string, Cached> cache_;
  std::list<std::string> lru_;  // job ids, most recently used first
  std::chrono::milliseconds heartbeat_interval_;
  Clock::time_point next_heartbeat_ = Clock::now();
  Clock::time_point next_hello_ = Clock::now();
  Clock::time_point last_heard_ = Clock::now();
  bool registered_ = false;
  bool done_ = false;
};

StatusOr<std::unique_ptr<WorkerServer>> WorkerServer::Create(
    WorkerOptions options, std::unique_ptr<experts::Expert> expert,
    protocol::TransportContext& context) {
  if (expert == nullptr) return InvalidArgumentError("no expert to serve");
  if (options.coordinator_endpoint.empty()) {
    return InvalidArgumentError("no coordinator endpoint (e.g. tcp://coordinator:5555)");
  }
  if (options.max_batch == 0) return InvalidArgumentError("max_batch must be at least 1");
  if (options.batch_wait_ms < 0) return InvalidArgumentError("batch_wait_ms must not be negative");
  if (options.heartbeat_interval_ms <= 0 || options.hello_retry_ms <= 0) {
    return InvalidArgumentError("heartbeat and hello intervals must be positive");
  }
  if (!(options.guidance_scale >= 0 && options.guidance_scale <= 100)) {
    return InvalidArgumentError("guidance scale " + std::to_string(options.guidance_scale) +
                                " is outside [0, 100] (0 = the coordinator's default)");
  }
  if (options.guidance_cache_jobs == 0) {
    return InvalidArgumentError("guidance_cache_jobs must be at least 1");
  }
  if (options.security.mode == protocol::SecurityMode::kUnset) {
    return InvalidArgumentError("security mode not set: pass CURVE keys, or ask for plain text");
  }
  return std::unique_ptr<WorkerServer>(
      new WorkerServer(std::move(options), std::move(expert), context));
}

WorkerServer::WorkerServer(WorkerOptions options, std::unique_ptr<experts::Expert> expert,
                           protocol::TransportContext& context)
    : options_(std::move(options)), expert_(std::move(expert)), context_(context) {}

WorkerServer::~WorkerServer() = default;

Status WorkerServer::Run() {
  protocol::SocketOptions socket_options;
  socket_options.routing_id = "worker/" + expert_->Describe().name;
  DND_ASSIGN_OR_RETURN(std::unique_ptr<protocol::DealerSocket> socket,
                       protocol::DealerSocket::Connect(context_, options_.coordinator_endpoint,
                                                       options_.security, socket_options));
  spdlog::info("worker: serving expert '{}' ({}), coordinator {}", expert_->Describe().name,
               expert_->Describe().latent.ShapeString(), options_.coordinator_endpoint);
  DND_ASSIGN_OR_RETURN(std::unique_ptr<protocol::ConnectionMonitor> monitor,
                       protocol::ConnectionMonitor::Attach(context_, *socket));
  Loop loop(*this, std::move(socket), std::move(monitor));
  return loop.Run();
}

}  // namespace dnd::worker
