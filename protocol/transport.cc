// ROUTER/DEALER sockets with version framing, CURVE security and the ZAP handler (transport.h).
// zmq::error_t is caught in this file and turned into Status values.
#include "protocol/transport.h"

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include <zmq.h>
#include <zmq_addon.hpp>

#include "protocol/messages.h"

namespace dnd::protocol {
namespace internal {

// The context, the ZAP handler thread, and the allow-lists it consults, keyed by ZAP domain (one
// domain per CURVE ROUTER socket, so two servers in one context can admit different keys).
class ContextState {
 public:
  ContextState() = default;
  ~ContextState() {
    stop_.store(true);
    if (zap_thread_.joinable()) zap_thread_.join();
    // context_ is destroyed after this; every socket holding this state is already closed.
  }

  Status StartZapHandler() {
    std::promise<Status> started;
    auto started_future = started.get_future();
    zap_thread_ = std::thread([this, &started] { RunZap(started); });
    return started_future.get();
  }

  // Registers an allow-list and returns the ZAP domain to give the socket.
  std::string AddDomain(const std::vector<std::string>& keys) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string domain = "dnd-" + std::to_string(next_domain_++);
    allowed_[domain] = std::set<std::string>(keys.begin(), keys.end());
    return domain;
  }

  void RemoveDomain(const std::string& domain) {
    std::lock_guard<std::mutex> lock(mu_);
    allowed_.erase(domain);
  }

  zmq::context_t& context() { return context_; }

 private:
  bool IsAllowed(const std::string& domain, const std::string& z85_key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = allowed_.find(domain);
    return it != allowed_.end() && it->second.count(z85_key) > 0;
  }

  // ZAP (RFC 27): request [version][request id][domain][address][identity][mechanism][creds...],
  // reply [version][request id][status code][status text][user id][metadata]. CURVE peers are
  // admitted when their key is in the domain's allow-list (user id = their Z85 key); NULL
  // (plain) sockets were configured without security on purpose and are admitted; others refused.
  void RunZap(std::promise<Status>& started) {
    try {
      zmq::socket_t zap(context_, zmq::socket_type::rep);
      zap.set(zmq::sockopt::linger, 0);
      zap.bind("inproc://zeromq.zap.01");
      started.set_value(OkStatus());
      while (!stop_.load()) {
        std::array<zmq::pollitem_t, 1> items{{{zap.handle(), 0, ZMQ_POLLIN, 0}}};
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
        if (!(items[0].revents & ZMQ_POLLIN)) continue;
        std::vector<zmq::message_t> request;
        if (!zmq::recv_multipart(zap, std::back_inserter(request))) continue;
        std::string status_code = "400";
        std::string status_text = "malformed ZAP request";
        std::string user_id;
        if (request.size() >= 6) {
          const std::string domain = request[2].to_string();
          const std::string mechanism = request[5].to_string();
          if (mechanism == "CURVE" && request.size() >= 7 && request[6].size() == 32) {
            std::array<char, kZ85KeyLength + 1> z85{};
            zmq_z85_encode(z85.data(), static_cast<const uint8_t*>(request[6].data()), 32);
            const std::string key(z85.data(), kZ85KeyLength);
            if (IsAllowed(domain, key)) {
              status_code = "200";
              status_text = "OK";
              user_id = key;
            } else {
              status_text = "client key not in the allow-list";
            }
          } else if (mechanism == "NULL") {
            status_code = "200";
            status_text = "OK";
          } else {
            status_text = "mechanism " + mechanism + " not accepted";
          }
        }
        std::array<zmq::const_buffer, 6> reply = {
            zmq::str_buffer("1.0"),
            zmq::buffer(request.size() > 1 ? request[1].data() : nullptr,
                        request.size() > 1 ? request[1].size() : 0),
            zmq::buffer(status_code),
            zmq::buffer(status_text),
            zmq::buffer(user_id),
            zmq::const_buffer()};
        zmq::send_multipart(zap, reply);
      }
    } catch (const zmq::error_t& e) {
      // Before set_value: report the failure to Create(); after it: the context is terminating.
      try {
        started.set_value(InternalError(std::string("ZAP handler: ") + e.what()));
      } catch (const std::future_error&) {
      }
    }
  }

  zmq::context_t context_;
  std::thread zap_thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<std::string, std::set<std::string>> allowed_;  // guarded by mu_
  int next_domain_ = 0;                                   // guarded by mu_
};

}  // namespace internal

namespace {

std::array<uint8_t, 4> VersionFrame() {
  const uint32_t v = kProtocolVersion;
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 24)};
}

Status CheckVersionFrame(const zmq::message_t& frame) {
  if (frame.size() != 4) {
    return FailedPreconditionError("version frame has " + std::to_string(frame.size()) +
                                   " bytes, expected 4 (protocol version " +
                                   std::to_string(kProtocolVersion) + ")");
  }
  const auto* b = static_cast<const uint8_t*>(frame.data());
  const uint32_t v =
      uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  if (v != kProtocolVersion) {
    return FailedPreconditionError("peer speaks protocol version " + std::to_string(v) +
                                   ", this build speaks version " +
                                   std::to_string(kProtocolVersion));
  }
  return OkStatus();
}

Status FromZmq(const zmq::error_t& e, std::string_view what) {
  return UnavailableError(std::string(what) + ": " + e.what());
}

void ApplyCommonOptions(zmq::socket_t& s, const SocketOptions& o) {
  s.set(zmq::sockopt::linger, o.linger_ms);
  s.set(zmq::sockopt::heartbeat_ivl, o.heartbeat_interval_ms);
  s.set(zmq::sockopt::heartbeat_timeout, o.heartbeat_timeout_ms);
  s.set(zmq::sockopt::heartbeat_ttl, o.heartbeat_ttl_ms);
  s.set(zmq::sockopt::maxmsgsize, o.max_message_bytes);
  s.set(zmq::sockopt::sndhwm, o.high_water_mark);
  s.set(zmq::sockopt::rcvhwm, o.high_water_mark);
}

// Waits for input; then reads one whole multipart message.
StatusOr<std::vector<zmq::message_t>> ReceiveFrames(zmq::socket_t& s, int timeout_ms) {
  try {
    std::array<zmq::pollitem_t, 1> items{{{s.handle(), 0, ZMQ_POLLIN, 0}}};
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(std::max(timeout_ms, 0)));
    if (!(items[0].revents & ZMQ_POLLIN)) {
      return DeadlineExceededError("no message within " + std::to_string(timeout_ms) + " ms");
    }
    std::vector<zmq::message_t> frames;
    if (!zmq::recv_multipart(s, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      return DeadlineExceededError("no message within " + std::to_string(timeout_ms) + " ms");
    }
    return frames;
  } catch (const zmq::error_t& e) {
    // A signal (e.g. the SIGTERM that stops a server) interrupts the wait: nothing was received.
    if (e.num() == EINTR) return DeadlineExceededError("interrupted by a signal");
    return FromZmq(e, "receive");
  }
}

}  // namespace

SecurityOptions SecurityOptions::Plain() {
  SecurityOptions s;
  s.mode = SecurityMode::kPlain;
  return s;
}

SecurityOptions SecurityOptions::CurveServer(CurveKeyPair server_keys,
                                             std::vector<std::string> allowed_client_keys) {
  SecurityOptions s;
  s.mode = SecurityMode::kCurve;
  s.own_keys = std::move(server_keys);
  s.allowed_client_keys = std::move(allowed_client_keys);
  return s;
}

SecurityOptions SecurityOptions::CurveClient(CurveKeyPair client_keys,
                                             std::string server_public_key) {
  SecurityOptions s;
  s.mode = SecurityMode::kCurve;
  s.own_keys = std::move(client_keys);
  s.server_public_key = std::move(server_public_key);
  return s;
}

// ---- TransportContext ----

StatusOr<std::unique_ptr<TransportContext>> TransportContext::Create() {
  auto state = std::make_shared<internal::ContextState>();
  DND_RETURN_IF_ERROR(state->StartZapHandler());
  return std::unique_ptr<TransportContext>(new TransportContext(std::move(state)));
}

TransportContext::TransportContext(std::shared_ptr<internal::ContextState> state)
    : state_(std::move(state)) {}
TransportContext::~TransportContext() = default;

zmq::context_t& TransportContext::context() { return state_->context(); }

// ---- RouterSocket ----

StatusOr<std::unique_ptr<RouterSocket>> RouterSocket::Bind(TransportContext& context,
                                                           const std::string& endpoint,
                                                           const SecurityOptions& security,
                                                           const SocketOptions& options) {
  if (security.mode == SecurityMode::kUnset) {
    return InvalidArgumentError("RouterSocket::Bind(" + endpoint +
                                "): security not set; use SecurityOptions::CurveServer or, for "
                                "tests and the demo, SecurityOptions::Plain()");
  }
  if (security.mode == SecurityMode::kCurve) {
    DND_RETURN_IF_ERROR(ValidateZ85Key(security.own_keys.public_key, "server public key"));
    DND_RETURN_IF_ERROR(ValidateZ85Key(security.own_keys.secret_key, "server secret key"));
    for (size_t i = 0; i < security.allowed_client_keys.size(); ++i) {
      DND_RETURN_IF_ERROR(ValidateZ85Key(security.allowed_client_keys[i],
                                         "allowed client key " + std::to_string(i)));
    }
  }
  auto state = context.state_;
  std::string domain;
  try {
    zmq::socket_t socket(state->context(), zmq::socket_type::router);
    ApplyCommonOptions(socket, options);
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::router_handover, 1);
    if (security.mode == SecurityMode::kCurve) {
      domain = state->AddDomain(security.allowed_client_keys);
      socket.set(zmq::sockopt::zap_domain, domain);
      socket.set(zmq::sockopt::curve_server, 1);
      socket.set(zmq::sockopt::curve_secretkey, security.own_keys.secret_key);
    }
    socket.bind(endpoint);
    std::string bound = socket.get(zmq::sockopt::last_endpoint);
    return std::unique_ptr<RouterSocket>(
        new RouterSocket(std::move(state), std::move(socket), std::move(bound), domain));
  } catch (const zmq::error_t& e) {
    if (!domain.empty()) state->RemoveDomain(domain);
    return FromZmq(e, "bind " + endpoint);
  }
}

RouterSocket::RouterSocket(std::shared_ptr<internal::ContextState> state, zmq::socket_t socket,
                           std::string endpoint, std::string zap_domain)
    : state_(std::move(state)),
      socket_(std::move(socket)),
      endpoint_(std::move(endpoint)),
      zap_domain_(std::move(zap_domain)) {}

RouterSocket::~RouterSocket() {
  socket_.close();
  if (!zap_domain_.empty()) state_->RemoveDomain(zap_domain_);
}

Status RouterSocket::Send(std::string_view peer, std::string_view payload) {
  const auto version = VersionFrame();
  try {
    const auto flags = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
    if (!socket_.send(zmq::buffer(peer.data(), peer.size()), flags)) {
      return ResourceExhaustedError("send queue to the peer is full");
    }
    // Once the first frame is accepted the rest of the message is too (atomic delivery).
    socket_.send(zmq::buffer(version), flags);
    socket_.send(zmq::buffer(payload.data(), payload.size()), zmq::send_flags::dontwait);
    return OkStatus();
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return UnavailableError("peer is not connected");
    return FromZmq(e, "send");
  }
}

StatusOr<RoutedMessage> RouterSocket::Receive(int timeout_ms) {
  DND_ASSIGN_OR_RETURN(auto frames, ReceiveFrames(socket_, timeout_ms));
  if (frames.size() != 3) {
    return InvalidArgumentError("expected [identity][version][payload], got " +
                                std::to_string(frames.size()) + " frames");
  }
  DND_RETURN_IF_ERROR(CheckVersionFrame(frames[1]));
  RoutedMessage m;
  m.peer = frames[0].to_string();
  m.payload = frames[2].to_string();
  if (const char* user = zmq_msg_gets(frames[2].handle(), "User-Id")) m.peer_public_key = user;
  return m;
}

// ---- DealerSocket ----

StatusOr<std::unique_ptr<DealerSocket>> DealerSocket::Connect(TransportContext& context,
                                                              const std::string& endpoint,
                                                              const SecurityOptions& security,
                                                              const SocketOptions& options) {
  if (security.mode == SecurityMode::kUnset) {
    return InvalidArgumentError("DealerSocket::Connect(" + endpoint +
                                "): security not set; use SecurityOptions::CurveClient or, for "
                                "tests and the demo, SecurityOptions::Plain()");
  }
  if (security.mode == SecurityMode::kCurve) {
    DND_RETURN_IF_ERROR(ValidateZ85Key(security.own_keys.public_key, "client public key"));
    DND_RETURN_IF_ERROR(ValidateZ85Key(security.own_keys.secret_key, "client secret key"));
    DND_RETURN_IF_ERROR(ValidateZ85Key(security.server_public_key, "server public key"));
  }
  auto state = context.state_;
  try {
    zmq::socket_t socket(state->context(), zmq::socket_type::dealer);
    ApplyCommonOptions(socket, options);
    if (!options.routing_id.empty()) socket.set(zmq::sockopt::routing_id, options.routing_id);
    if (security.mode == SecurityMode::kCurve) {
      socket.set(zmq::sockopt::curve_serverkey, security.server_public_key);
      socket.set(zmq::sockopt::curve_publickey, security.own_keys.public_key);
      socket.set(zmq::sockopt::curve_secretkey, security.own_keys.secret_key);
    }
    socket.connect(endpoint);
    return std::unique_ptr<DealerSocket>(new DealerSocket(std::move(state), std::move(socket)));
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "connect " + endpoint);
  }
}

DealerSocket::DealerSocket(std::shared_ptr<internal::ContextState> state, zmq::socket_t socket)
    : state_(std::move(state)), socket_(std::move(socket)) {}

DealerSocket::~DealerSocket() { socket_.close(); }

Status DealerSocket::Send(std::string_view payload) {
  const auto version = VersionFrame();
  try {
    if (!socket_.send(zmq::buffer(version), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return ResourceExhaustedError("send queue is full (is the server reachable?)");
    }
    socket_.send(zmq::buffer(payload.data(), payload.size()), zmq::send_flags::dontwait);
    return OkStatus();
  } catch (const zmq::error_t& e) {
    return FromZmq(e, "send");
  }
}

StatusOr<std::string> DealerSocket::Receive(int timeout_ms) {
  DND_ASSIGN_OR_RETURN(auto frames, ReceiveFrames(socket_, timeout_ms));
  if (frames.size() != 2) {
    return InvalidArgumentError("expected [version][payload], got " +
                                std::to_string(frames.size()) + " frames");
  }
  DND_RETURN_IF_ERROR(CheckVersionFrame(frames[0]));
  return frames[1].to_string();
}

}  // namespace dnd::protocol
