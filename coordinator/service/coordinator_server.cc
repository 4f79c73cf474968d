// See coordinator_server.h. The serving thread alternates between the worker socket (waiting up to
// kTickMs for replies, which wake it at once) and the client socket, then does the periodic work:
// worker liveness, round deadlines, starting queued jobs and finishing completed ones.
#include "coordinator/service/coordinator_server.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <spdlog/spdlog.h>

#include "coordinator/service/job.h"
#include "coordinator/service/job_spec.h"
#include "coordinator/service/result_writer.h"
#include "coordinator/service/worker_registry.h"
#include "protocol/codec.h"
#include "protocol/messages.h"

namespace dnd::coordinator {
namespace {

constexpr int kTickMs = 10;

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string JobIdFor(uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "j-%06llu", static_cast<unsigned long long>(number));
  return buf;
}

}  // namespace

class CoordinatorServer::Loop {
 public:
  Loop(CoordinatorServer& server, std::unique_ptr<protocol::RouterSocket> workers,
       std::unique_ptr<protocol::RouterSocket> clients)
      : server_(server),
        options_(server.options_),
        workers_(std::move(workers)),
        clients_(std::move(clients)),
        registry_(std::chrono::milliseconds(options_.worker_liveness_ms)),
        writer_(options_.data_dir, /*image_scale=*/4, options_.decoders),
        next_job_number_(writer_.HighestJobNumber() + 1) {}

  void Run() {
    while (!server_.stop_.load()) {
      // Worker replies first: they drive the running jobs.
      int timeout_ms = kTickMs;
      for (;;) {
        StatusOr<protocol::RoutedMessage> m = workers_->Receive(timeout_ms);
        if (!m.ok()) {
          if (m.status().code() != StatusCode::kDeadlineExceeded) {
            spdlog::warn("coordinator: dropped a worker message: {}", m.status().ToString());
            timeout_ms = 0;
            continue;
          }
          break;
        }
        HandleWorker(*m);
        timeout_ms = 0;
      }
      for (;;) {
        StatusOr<protocol::RoutedMessage> m = clients_->Receive(0);
        if (!m.ok()) {
          if (m.status().code() != StatusCode::kDeadlineExceeded) {
            spdlog::warn("coordinator: dropped a client message: {}", m.status().ToString());
            continue;
          }
          break;
        }
        HandleClient(*m);
      }
      Periodic(SteadyClock::now());
    }
    for (auto& [id, job] : jobs_) {
      if (!job->finished()) job->Cancel("coordinator stopping");
    }
    Periodic(SteadyClock::now());
  }

 private:
  // ---- workers ----

  void HandleWorker(const protocol::RoutedMessage& m) {
    const SteadyClock::time_point now = SteadyClock::now();
    StatusOr<protocol::WorkerToCoordinator> decoded =
        protocol::DecodeWorkerToCoordinator(protocol::AsBytes(m.payload));
    if (!decoded.ok()) {
      spdlog::warn("coordinator: bad message from a worker: {}", decoded.status().ToString());
      SendWorker(m.peer, protocol::MakeErrorReply(decoded.status()));
      return;
    }
    if (auto* hello = std::get_if<protocol::WorkerHello>(&*decoded)) {
      OnHello(m, *hello, now);
      return;
    }
    if (!registry_.Touch(m.peer, now)) {
      // Not registered (e.g. this coordinator restarted): the worker registers again on this reply.
      SendWorker(m.peer, protocol::MakeErrorReply(
                             FailedPreconditionError("not registered: send WorkerHello first")));
      return;
    }
    std::visit([&](auto& msg) { OnWorker(m.peer, msg, now); }, *decoded);
  }

  void OnHello(const protocol::RoutedMessage& m, const protocol::WorkerHello& hello,
               SteadyClock::time_point now) {
    if (hello.protocol_version != protocol::kProtocolVersion) {
      SendWorker(m.peer, protocol::HelloAck{.accepted = false,
                                            .reason = "protocol version " +
                                                      std::to_string(hello.protocol_version) +
                                                      " is not this coordinator's " +
                                                      std::to_string(protocol::kProtocolVersion),
                                            .heartbeat_interval_millis = 0});
      return;
    }
    if (hello.expert_name.empty() || hello.latent_shape.size() != 3 || hello.concepts.empty()) {
      SendWorker(m.peer, protocol::HelloAck{.accepted = false,
                                            .reason = "registration needs an expert name, a C x "
                                                      "H x W latent shape and at least one concept",
                                            .heartbeat_interval_millis = 0});
      return;
    }
    std::optional<std::string> replaced = registry_.Register(m.peer, m.peer_public_key, hello, now);
    if (replaced.has_value()) {
      LoseWorker(*replaced, "was replaced by a new registration of the same expert");
    }
    spdlog::info("coordinator: expert '{}' of '{}' registered ({} concepts, latent {})",
                 hello.expert_name, hello.organisation, hello.concepts.size(),
                 hello.latent_space_id);
    if (hello.latent_shape[0] != 1 && writer_.FindDecoder(hello.latent_space_id) == nullptr) {
      spdlog::warn(
          "coordinator: no autoencoder for latent space '{}' (expert '{}'): its jobs' image.png "
          "will be a channel-mean preview; give dnd-coordinator --autoencoder FILE",
          hello.latent_space_id, hello.expert_name);
    }
    SendWorker(m.peer, protocol::HelloAck{.accepted = true,
                                          .reason = "",
                                          .heartbeat_interval_millis = static_cast<uint32_t>(
                                              options_.heartbeat_interval_ms)});
  }

  void OnWorker(const std::string&, protocol::WorkerHello&, SteadyClock::time_point) {}

  void OnWorker(const std::string& peer, protocol::Heartbeat&, SteadyClock::time_point) {
    SendWorker(peer, protocol::Heartbeat{.sent_unix_millis = UnixMillis(), .in_flight = 0});
  }

  void OnWorker(const std::string& peer, protocol::StepReply& reply, SteadyClock::time_point now) {
    if (Job* job = FindJob(reply.job_id)) Dispatch(*job, job->OnStepReply(peer, reply, now));
  }

  void OnWorker(const std::string& peer, protocol::GuidanceReply& reply,
                SteadyClock::time_point now) {
    if (Job* job = FindJob(reply.job_id)) Dispatch(*job, job->OnGuidanceReply(peer, reply, now));
  }

  void OnWorker(const std::string& peer, protocol::ErrorReply& error, SteadyClock::time_point) {
    spdlog::warn("coordinator: worker error for job '{}' step {}: {}", error.job_id,
                 error.step_index, error.ToStatus().ToString());
    if (Job* job = FindJob(error.job_id)) job->OnWorkerError(peer, error);
  }

  void OnWorker(const std::string& peer, protocol::Goodbye& bye, SteadyClock::time_point) {
    registry_.MarkOffline(peer);
    LoseWorker(peer, "disconnected (" + bye.reason + ")");
  }

  void LoseWorker(const std::string& peer, const std::string& why) {
    for (auto& [id, job] : jobs_) job->OnWorkerLost(peer, why);
  }

  void SendWorker(const std::string& peer, const protocol::CoordinatorToWorker& message) {
    Status s = workers_->Send(peer, protocol::Encode(message));
    if (!s.ok()) spdlog::warn("coordinator: send to a worker failed: {}", s.ToString());
  }

  void Dispatch(Job& job, std::vector<Outgoing> requests) {
    for (Outgoing& o : requests) {
      Status s = workers_->Send(o.peer, protocol::Encode(o.message));
      if (!s.ok()) {
        job.OnWorkerLost(o.peer, "cannot be reached: " + s.ToString());
        return;
      }
    }
    // One progress event per step: when the next step fans out (not on guidance rounds).
    if (!requests.empty() &&
        std::holds_alternative<protocol::StepRequest>(requests.front().message)) {
      NotifyWatchers(job, "");
    }
  }

  // ---- clients ----

  void HandleClient(const protocol::RoutedMessage& m) {
    StatusOr<protocol::ClientToCoordinator> decoded =
        protocol::DecodeClientToCoordinator(protocol::AsBytes(m.payload));
    if (!decoded.ok()) {
      SendClient(m.peer, protocol::MakeErrorReply(decoded.status()));
      return;
    }
    std::visit([&](auto& msg) { OnClient(m.peer, msg); }, *decoded);
  }

  void OnClient(const std::string& peer, protocol::SubmitJob& submit) {
    if (!submit.client_token.empty()) {
      if (auto it = tokens_.find(submit.client_token); it != tokens_.end()) {
        SendClient(peer, protocol::SubmitReply{.job_id = it->second});
        return;
      }
    }
    StatusOr<ResolvedJob> resolved = ResolveJob(submit.spec, options_.defaults, registry_);
    if (!resolved.ok()) {
      SendClient(peer, protocol::MakeErrorReply(resolved.status()));
      return;
    }
    const std::string id = JobIdFor(next_job_number_++);
    StatusOr<std::unique_ptr<Job>> job =
        Job::Create(id, std::move(resolved->resolved), std::move(resolved->experts),
                    resolved->shape, resolved->latent_space_id);
    if (!job.ok()) {
      SendClient(peer, protocol::MakeErrorReply(job.status()));
      return;
    }
    (*job)->submitted_unix_ms = UnixMillis();
    jobs_.emplace(id, std::move(job).value());
    queue_.push_back(id);
    if (!submit.client_token.empty()) tokens_[submit.client_token] = id;
    spdlog::info("coordinator: job {} queued ({} experts, {} steps)", id,
                 jobs_[id]->experts().size(), jobs_[id]->total_steps());
    SendClient(peer, protocol::SubmitReply{.job_id = id});
  }

  void OnClient(const std::string& peer, protocol::GetStatus& request) {
    protocol::StatusReply reply;
    if (!request.job_id.empty()) {
      Job* job = FindJob(request.job_id);
      if (job == nullptr) {
        SendClient(peer, protocol::MakeErrorReply(UnknownJob(request.job_id)));
        return;
      }
      reply.jobs.push_back(StatusOf(*job));
    } else {
      for (auto& [id, job] : jobs_) reply.jobs.push_back(StatusOf(*job));
    }
    SendClient(peer, reply);
  }

  void OnClient(const std::string& peer, protocol::Watch& watch) {
    Job* job = FindJob(watch.job_id);
    if (job == nullptr) {
      SendClient(peer, protocol::MakeErrorReply(UnknownJob(watch.job_id)));
      return;
    }
    SendClient(peer, Progress(*job, ""));
    if (!job->finished()) watchers_[watch.job_id].push_back(peer);
  }

  void OnClient(const std::string& peer, protocol::Cancel& cancel) {
    Job* job = FindJob(cancel.job_id);
    if (job == nullptr) {
      SendClient(peer, protocol::MakeErrorReply(UnknownJob(cancel.job_id)));
      return;
    }
    const bool accepted = !job->finished();
    job->Cancel("cancelled by a client");
    std::erase(queue_, cancel.job_id);
    SendClient(peer, protocol::CancelReply{
                         .job_id = cancel.job_id, .accepted = accepted, .state = job->state()});
    Periodic(SteadyClock::now());
  }

  void OnClient(const std::string& peer, protocol::ListExperts&) {
    SendClient(peer, protocol::ExpertList{.experts = registry_.List(SteadyClock::now())});
  }

  void OnClient(const std::string& peer, protocol::FetchResult& fetch) {
    Job* job = FindJob(fetch.job_id);
    if (job == nullptr && !writer_.HasRecord(fetch.job_id)) {
      SendClient(peer, protocol::MakeErrorReply(UnknownJob(fetch.job_id)));
      return;
    }
    if (job != nullptr && !job->finished()) {
      SendClient(peer, protocol::MakeErrorReply(FailedPreconditionError(
                           "job '" + fetch.job_id + "' is " + protocol::JobStateName(job->state()) +
                           "; results come when it ends")));
      return;
    }
    StatusOr<std::vector<protocol::ResultFile>> files = writer_.Read(fetch.job_id);
    if (!files.ok()) {
      SendClient(peer, protocol::MakeErrorReply(files.status()));
      return;
    }
    SendClient(peer, protocol::ResultFiles{.job_id = fetch.job_id, .files = std::move(*files)});
  }

  void SendClient(const std::string& peer, const protocol::CoordinatorToClient& message) {
    Status s = clients_->Send(peer, protocol::Encode(message));
    if (!s.ok()) spdlog::debug("coordinator: send to a client failed: {}", s.ToString());
  }

  Status UnknownJob(const std::string& id) const {
    if (dropped_ > 0 && writer_.HasRecord(id)) {
      return NotFoundError("job '" + id +
                           "' has finished and is no longer held in memory (this coordinator "
                           "keeps the last " +
                           std::to_string(options_.keep_finished_jobs) +
                           " finished jobs); its results are in " +
                           writer_.JobDir(id).string() + " and `dnd fetch` returns them");
    }
    return NotFoundError("no job '" + id + "' on this coordinator");
  }

  protocol::JobStatus StatusOf(const Job& job) const {
    protocol::JobStatus s;
    s.job_id = job.id();
    s.state = job.state();
    s.reason = job.reason();
    s.step = job.steps_done();
    s.total_steps = job.total_steps();
    s.submitted_unix_millis = job.submitted_unix_ms;
    s.started_unix_millis = job.started_unix_ms;
    s.finished_unix_millis = job.finished_unix_ms;
    s.eta_millis = job.EtaMillis(SteadyClock::now());
    return s;
  }

  protocol::ProgressEvent Progress(const Job& job, const std::string& message) const {
    protocol::ProgressEvent e;
    e.job_id = job.id();
    e.state = job.state();
    e.step = job.steps_done();
    e.total_steps = job.total_steps();
    if (!job.records().empty()) e.shares = job.records().back().share;
    e.message = message.empty() ? job.reason() : message;
    return e;
  }

  void NotifyWatchers(const Job& job, const std::string& message) {
    auto it = watchers_.find(job.id());
    if (it == watchers_.end()) return;
    const protocol::ProgressEvent event = Progress(job, message);
    for (const std::string& peer : it->second) SendClient(peer, event);
    if (job.finished()) watchers_.erase(it);
  }

  // ---- periodic work ----

  void Periodic(SteadyClock::time_point now) {
    for (const std::string& peer : registry_.ExpireSilent(now)) {
      const WorkerRecord* w = registry_.FindByPeer(peer);
      spdlog::warn("coordinator: expert '{}' is offline (no heartbeat for {} ms)",
                   w ? w->hello.expert_name : peer, options_.worker_liveness_ms);
      LoseWorker(peer, "went offline: no heartbeat for " +
                           std::to_string(options_.worker_liveness_ms) + " ms");
    }
    size_t running = 0;
    for (auto& [id, job] : jobs_) {
      job->CheckDeadline(now);
      if (job->state() == protocol::JobState::kRunning && job->all_steps_done()) {
        Complete(*job);
      }
      if (job->finished() && !finalised_.contains(id)) Finalise(*job);
      if (job->state() == protocol::JobState::kRunning) ++running;
    }
    DropOldFinishedJobs();
    while (running < static_cast<size_t>(options_.max_concurrent_jobs) && !queue_.empty()) {
      Job* job = FindJob(queue_.front());
      queue_.pop_front();
      if (job == nullptr || job->state() != protocol::JobState::kQueued) continue;
      job->started_unix_ms = UnixMillis();
      started_at_[job->id()] = now;
      spdlog::info("coordinator: job {} running", job->id());
      Dispatch(*job, job->Start(now, options_.step_deadline_ms));
      ++running;
    }
  }

  // All steps done: write the results, then succeed (or fail if they cannot be written).
  void Complete(Job& job) {
    Status written = writer_.WriteSuccess(job, WallMs(job));
    if (written.ok()) {
      job.MarkSucceeded();
    } else {
      job.Fail("results could not be written: " + written.ToString());
    }
  }

  void Finalise(Job& job) {
    finalised_.insert(job.id());
    finish_order_.push_back(job.id());
    job.finished_unix_ms = UnixMillis();
    if (job.state() != protocol::JobState::kSucceeded) {
      Status s = writer_.WriteRecordOnly(job, WallMs(job));
      if (!s.ok()) spdlog::warn("coordinator: job {}: {}", job.id(), s.ToString());
      spdlog::warn("coordinator: job {} {}: {}", job.id(), protocol::JobStateName(job.state()),
                   job.reason());
    } else {
      spdlog::info("coordinator: job {} succeeded in {} ms; results in {}", job.id(), WallMs(job),
                   writer_.JobDir(job.id()).string());
    }
    NotifyWatchers(job, "");
    job.ReleaseWorkingMemory();  // results are on disk; status needs only the records
  }

  // Keeps the newest options_.keep_finished_jobs finished jobs in memory (not called while
  // jobs_ is being iterated: it erases from it).
  void DropOldFinishedJobs() {
    while (finish_order_.size() > static_cast<size_t>(options_.keep_finished_jobs)) {
      const std::string id = std::move(finish_order_.front());
      finish_order_.pop_front();
      jobs_.erase(id);
      finalised_.erase(id);
      started_at_.erase(id);
      watchers_.erase(id);
      std::erase_if(tokens_, [&id](const auto& token) { return token.second == id; });
      dropped_ += 1;
    }
  }

  int64_t WallMs(const Job& job) const {
    auto it = started_at_.find(job.id());
    if (it == started_at_.end()) return 0;
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - it->second)
        .count();
  }

  Job* FindJob(const std::string& id) {
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : it->second.get();
  }

  CoordinatorServer& server_;
  const CoordinatorOptions& options_;
  std::unique_ptr<protocol::RouterSocket> workers_;
  std::unique_ptr<protocol::RouterSocket> clients_;
  WorkerRegistry registry_;
  ResultWriter writer_;
  uint64_t next_job_number_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;     // by id (ids sort by submission)
  std::deque<std::string> queue_;                        // queued job ids, oldest first
  std::unordered_map<std::string, std::string> tokens_;  // client token -> job id
  std::unordered_map<std::string, std::vector<std::string>> watchers_;  // job id -> client peers
  std::unordered_map<std::string, SteadyClock::time_point> started_at_;
  std::set<std::string> finalised_;
  std::deque<std::string> finish_order_;  // finished job ids still in jobs_, oldest first
  uint64_t dropped_ = 0;                  // finished jobs dropped from memory so far
};

StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Create(
    CoordinatorOptions options, protocol::TransportContext& context) {
  if (options.worker_security.mode == protocol::SecurityMode::kUnset ||
      options.client_security.mode == protocol::SecurityMode::kUnset) {
    return InvalidArgumentError("security not set: give CURVE keys, or ask for plain text");
  }
  if (options.max_concurrent_jobs < 1) {
    return InvalidArgumentError("max_concurrent_jobs must be at least 1");
  }
  if (options.keep_finished_jobs < 1) {
    return InvalidArgumentError("keep_finished_jobs must be at least 1");
  }
  if (options.step_deadline_ms < 1 || options.heartbeat_interval_ms < 1 ||
      options.worker_liveness_ms < options.heartbeat_interval_ms) {
    return InvalidArgumentError(
        "step deadline and heartbeat interval must be positive, and the liveness window at least "
        "one heartbeat interval");
  }
  std::set<std::string> decoded_spaces;
  for (const auto& decoder : options.decoders) {
    if (decoder == nullptr) return InvalidArgumentError("a null latent decoder");
    if (!decoded_spaces.insert(decoder->latent_space_id()).second) {
      return InvalidArgumentError("two decoders for latent space '" + decoder->latent_space_id() +
                                  "'");
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir / "jobs", ec);
  if (ec) {
    return FailedPreconditionError("cannot create the data directory " + options.data_dir.string() +
                                   ": " + ec.message());
  }
  return std::unique_ptr<CoordinatorServer>(new CoordinatorServer(std::move(options), context));
}

CoordinatorServer::CoordinatorServer(CoordinatorOptions options,
                                     protocol::TransportContext& context)
    : options_(std::move(options)), context_(context) {}

CoordinatorServer::~CoordinatorServer() = default;

void CoordinatorServer::RequestStop() { stop_.store(true); }

StatusOr<BoundEndpoints> CoordinatorServer::WaitUntilBound(std::chrono::milliseconds timeout) {
  std::unique_lock lock(bound_mutex_);
  if (!bound_cv_.wait_for(lock, timeout, [this] { return bound_.has_value(); })) {
    return DeadlineExceededError("the coordinator did not bind within " +
                                 std::to_string(timeout.count()) + " ms");
  }
  return *bound_;
}

Status CoordinatorServer::Run() {
  protocol::SocketOptions worker_socket;
  protocol::SocketOptions client_socket;
  client_socket.max_message_bytes = protocol::kDefaultClientMaxMessageBytes;
  auto publish = [this](StatusOr<BoundEndpoints> result) {
    std::lock_guard lock(bound_mutex_);
    bound_ = std::move(result);
    bound_cv_.notify_all();
  };
  auto workers = protocol::RouterSocket::Bind(context_, options_.worker_endpoint,
                                              options_.worker_security, worker_socket);
  if (!workers.ok()) {
    publish(workers.status().WithContext("worker endpoint"));
    return workers.status().WithContext("worker endpoint");
  }
  auto clients = protocol::RouterSocket::Bind(context_, options_.client_endpoint,
                                              options_.client_security, client_socket);
  if (!clients.ok()) {
    publish(clients.status().WithContext("client endpoint"));
    return clients.status().WithContext("client endpoint");
  }
  publish(BoundEndpoints{(*workers)->endpoint(), (*clients)->endpoint()});
  spdlog::info("coordinator: workers connect to {}, clients to {}; data in {}",
               (*workers)->endpoint(), (*clients)->endpoint(), options_.data_dir.string());
  Loop loop(*this, std::move(workers).value(), std::move(clients).value());
  loop.Run();
  return OkStatus();
}

}  // namespace dnd::coordinator
