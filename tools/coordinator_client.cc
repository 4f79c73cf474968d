// The coordinator client (coordinator_client.h): request/reply with a deadline, Watch streams, and
// the socket monitor that tells "not running" from "not authorised".
#include "tools/coordinator_client.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include <zmq.h>

#include "protocol/codec.h"

namespace dnd::tools {
namespace {

using Clock = std::chrono::steady_clock;

std::string Seconds(int ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f s", ms / 1000.0);
  return buffer;
}

int MillisSince(Clock::time_point start) {
  return static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

// The reply's kind, for "expected X, got Y" messages.
const char* ReplyName(const protocol::CoordinatorToClient& reply) {
  static constexpr std::array<const char*, 7> kNames = {
      "SubmitReply", "StatusReply", "ProgressEvent", "CancelReply",
      "ExpertList",  "ResultFiles", "ErrorReply"};
  return kNames[reply.index()];
}

// Unwraps a reply of type T; an ErrorReply becomes its Status.
template <typename T>
StatusOr<T> Expect(StatusOr<protocol::CoordinatorToClient> reply) {
  if (!reply.ok()) return reply.status();
  if (auto* error = std::get_if<protocol::ErrorReply>(&*reply)) return error->ToStatus();
  if (auto* value = std::get_if<T>(&*reply)) return std::move(*value);
  return InternalError(std::string("unexpected reply from the coordinator: ") + ReplyName(*reply));
}

}  // namespace

bool IsTerminal(protocol::JobState state) {
  return state == protocol::JobState::kSucceeded || state == protocol::JobState::kFailed ||
         state == protocol::JobState::kCancelled;
}

StatusOr<std::unique_ptr<CoordinatorClient>> CoordinatorClient::Connect(
    protocol::TransportContext& context, ClientOptions options) {
  if (options.endpoint.empty()) {
    return InvalidArgumentError("no coordinator address: give --coordinator tcp://HOST:PORT");
  }
  if (options.reply_timeout_ms <= 0) {
    return InvalidArgumentError("the reply timeout must be positive, got " +
                                std::to_string(options.reply_timeout_ms) + " ms");
  }
  protocol::SocketOptions socket_options;
  socket_options.max_message_bytes = protocol::kDefaultClientMaxMessageBytes;
  socket_options.linger_ms = 0;  // a CLI that gives up must not wait for unsent requests
  auto dealer =
      protocol::DealerSocket::Connect(context, options.endpoint, options.security, socket_options);
  if (!dealer.ok()) {
    if (dealer.status().code() == StatusCode::kUnavailable) {
      return InvalidArgumentError("bad coordinator address '" + options.endpoint +
                                  "' (expected tcp://HOST:PORT): " + dealer.status().message());
    }
    return dealer.status();
  }
  auto monitor = protocol::ConnectionMonitor::Attach(context, **dealer);
  if (!monitor.ok()) return monitor.status();
  return std::unique_ptr<CoordinatorClient>(new CoordinatorClient(
      std::move(options), std::move(dealer).value(), std::move(monitor).value()));
}

CoordinatorClient::CoordinatorClient(ClientOptions options,
                                     std::unique_ptr<protocol::DealerSocket> dealer,
                                     std::unique_ptr<protocol::ConnectionMonitor> monitor)
    : options_(std::move(options)), dealer_(std::move(dealer)), monitor_(std::move(monitor)) {}

CoordinatorClient::~CoordinatorClient() = default;

StatusOr<protocol::CoordinatorToClient> CoordinatorClient::Receive(int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    monitor_->Drain();
    DND_RETURN_IF_ERROR(monitor_->HandshakeStatus(options_.endpoint, "this client's key"));
    const auto now = Clock::now();
    const auto left = std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    std::array<zmq::pollitem_t, 2> items{{{dealer_->socket().handle(), 0, ZMQ_POLLIN, 0},
                                          {monitor_->socket().handle(), 0, ZMQ_POLLIN, 0}}};
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(left));
    } catch (const zmq::error_t& e) {
      return InternalError(std::string("poll on the client socket failed: ") + e.what());
    }
    if (items[1].revents & ZMQ_POLLIN) continue;  // read the event first, then look again
    if (items[0].revents & ZMQ_POLLIN) {
      auto payload = dealer_->Receive(0);
      if (!payload.ok()) {
        if (payload.status().code() == StatusCode::kDeadlineExceeded) continue;
        return payload.status();
      }
      auto decoded = protocol::DecodeCoordinatorToClient(protocol::AsBytes(*payload));
      if (!decoded.ok()) {
        return InternalError("malformed reply from the coordinator at " + options_.endpoint + ": " +
                             decoded.status().ToString());
      }
      return std::move(decoded).value();
    }
    if (left == 0) return DeadlineExceededError("no reply");
  }
}

Status CoordinatorClient::NoReplyError(const std::string& what, int waited_ms) const {
  std::string message =
      what + " the coordinator at " + options_.endpoint + " within " + Seconds(waited_ms);
  if (monitor_->events().handshakes > 0) {
    message += " (connected, but it did not answer)";
  } else if (options_.security.mode == protocol::SecurityMode::kCurve &&
             monitor_->events().connected > 0 && monitor_->events().disconnects > 0) {
    return UnauthenticatedError(message +
                                ": it closed the connection during the CURVE handshake (is "
                                "--server-key the coordinator's public key?)");
  } else if (monitor_->events().connect_refused > 0) {
    message += " (connection refused: is dnd-coordinator running, and is the address right?)";
  } else {
    message += " (no connection could be made)";
  }
  return UnavailableError(message);
}

StatusOr<protocol::CoordinatorToClient> CoordinatorClient::Call(
    const protocol::ClientToCoordinator& request) {
  DND_RETURN_IF_ERROR(dealer_->Send(protocol::Encode(request)));
  const auto start = Clock::now();
  for (;;) {
    const int left = options_.reply_timeout_ms - MillisSince(start);
    auto reply = Receive(std::max(left, 0));
    if (!reply.ok()) {
      if (reply.status().code() == StatusCode::kDeadlineExceeded) {
        return NoReplyError("cannot reach", options_.reply_timeout_ms);
      }
      return reply.status();
    }
    // A ProgressEvent belongs to an earlier Watch on this socket, not to this request.
    if (std::holds_alternative<protocol::ProgressEvent>(*reply)) continue;
    return reply;
  }
}

StatusOr<std::string> CoordinatorClient::Submit(const protocol::SubmitJob& request) {
  DND_ASSIGN_OR_RETURN(auto reply, Expect<protocol::SubmitReply>(Call(request)));
  return reply.job_id;
}

StatusOr<std::vector<protocol::JobStatus>> CoordinatorClient::GetStatus(const std::string& job_id) {
  DND_ASSIGN_OR_RETURN(auto reply,
                       Expect<protocol::StatusReply>(Call(protocol::GetStatus{job_id})));
  return std::move(reply.jobs);
}

StatusOr<protocol::CancelReply> CoordinatorClient::Cancel(const std::string& job_id) {
  return Expect<protocol::CancelReply>(Call(protocol::Cancel{job_id}));
}

StatusOr<std::vector<protocol::ExpertInfo>> CoordinatorClient::ListExperts() {
  DND_ASSIGN_OR_RETURN(auto reply, Expect<protocol::ExpertList>(Call(protocol::ListExperts{})));
  return std::move(reply.experts);
}

StatusOr<protocol::ResultFiles> CoordinatorClient::FetchResult(const std::string& job_id) {
  return Expect<protocol::ResultFiles>(Call(protocol::FetchResult{job_id}));
}

StatusOr<protocol::ProgressEvent> CoordinatorClient::Watch(
    const std::string& job_id, const std::function<void(const protocol::ProgressEvent&)>& on_event,
    std::optional<std::chrono::milliseconds> deadline) {
  DND_RETURN_IF_ERROR(
      dealer_->Send(protocol::Encode(protocol::ClientToCoordinator{protocol::Watch{job_id}})));
  const auto start = Clock::now();
  auto last_heard = start;
  bool probe_outstanding = false;  // a GetStatus sent at probe_sent and not answered yet
  Clock::time_point probe_sent = start;
  bool heard_anything = false;
  const auto ms_since = [](Clock::time_point t) { return MillisSince(t); };
  for (;;) {
    int wait_ms = options_.reply_timeout_ms - ms_since(probe_outstanding ? probe_sent : last_heard);
    if (deadline) {
      wait_ms = std::min<int>(wait_ms, static_cast<int>(deadline->count()) - ms_since(start));
    }
    auto message = Receive(std::max(wait_ms, 0));
    if (message.ok()) {
      last_heard = Clock::now();
      heard_anything = true;
      if (auto* event = std::get_if<protocol::ProgressEvent>(&*message)) {
        if (event->job_id != job_id) continue;
        probe_outstanding = false;  // it is alive; a late StatusReply is still welcome
        if (on_event) on_event(*event);
        if (IsTerminal(event->state)) return *event;
        continue;
      }
      if (auto* error = std::get_if<protocol::ErrorReply>(&*message)) {
        return error->ToStatus();
      }
      if (auto* status = std::get_if<protocol::StatusReply>(&*message)) {
        probe_outstanding = false;
        for (const protocol::JobStatus& job : status->jobs) {
          if (job.job_id != job_id || !IsTerminal(job.state)) continue;
          protocol::ProgressEvent last;
          last.job_id = job.job_id;
          last.state = job.state;
          last.step = job.step;
          last.total_steps = job.total_steps;
          last.message = job.reason;
          if (on_event) on_event(last);
          return last;
        }
      }
      continue;  // other replies belong to earlier requests
    }
    if (message.status().code() != StatusCode::kDeadlineExceeded) return message.status();
    if (deadline && ms_since(start) >= deadline->count()) {
      return DeadlineExceededError("job " + job_id + " did not finish within " +
                                   Seconds(static_cast<int>(deadline->count())) +
                                   "; it keeps running (see `dnd status " + job_id + "`)");
    }
    if (probe_outstanding) {
      if (ms_since(probe_sent) >= options_.reply_timeout_ms) {
        return NoReplyError(heard_anything ? "lost contact with" : "cannot reach",
                            options_.reply_timeout_ms);
      }
      continue;
    }
    // Never connected: the same answer as a plain request gets.
    if (!heard_anything && monitor_->events().handshakes == 0) {
      return NoReplyError("cannot reach", options_.reply_timeout_ms);
    }
    // Silent for a whole reply timeout: is the coordinator still there, and the job still alive?
    DND_RETURN_IF_ERROR(dealer_->Send(
        protocol::Encode(protocol::ClientToCoordinator{protocol::GetStatus{job_id}})));
    probe_sent = Clock::now();
    probe_outstanding = true;
  }
}

}  // namespace dnd::tools
