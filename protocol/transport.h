// ZeroMQ transport between coordinator, workers and clients. The coordinator binds ROUTER sockets
// (one for workers, one for clients); workers and clients connect out with DEALER sockets, so
// organisations open no inbound ports. Every message is [version frame: 4-byte LE
// kProtocolVersion][payload: one codec-encoded envelope]; the ROUTER adds the peer identity frame.
// Security: CurveZMQ, with a ZAP handler per TransportContext that admits only allow-listed client
// public keys; plain text only when SecurityOptions::Plain() is asked for explicitly.
// No zmq::error_t escapes: every operation returns Status / StatusOr.
#ifndef DND_PROTOCOL_TRANSPORT_H_
#define DND_PROTOCOL_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "protocol/curve_keys.h"
#include "protocol/status.h"

namespace dnd::protocol {

// Default ZMQ_MAXMSGSIZE (largest inbound message; bigger ones drop the connection).
inline constexpr int64_t kDefaultWorkerMaxMessageBytes = int64_t{16} << 20;
inline constexpr int64_t kDefaultClientMaxMessageBytes = int64_t{64} << 20;

enum class SecurityMode { kUnset, kPlain, kCurve };

// How a socket authenticates and encrypts. A default-constructed value (kUnset) is refused by
// Bind/Connect with InvalidArgument: plain text must be requested with Plain().
struct SecurityOptions {
  SecurityMode mode = SecurityMode::kUnset;
  CurveKeyPair own_keys;                         // CURVE: this side's key pair (Z85)
  std::string server_public_key;                 // CURVE client: the server's public key (Z85)
  std::vector<std::string> allowed_client_keys;  // CURVE server: admitted client public keys

  // No authentication, no encryption: for tests and the single-process demo only.
  static SecurityOptions Plain();
  // A ROUTER that admits only clients whose public key is in `allowed_client_keys`.
  static SecurityOptions CurveServer(CurveKeyPair server_keys,
                                     std::vector<std::string> allowed_client_keys);
  // A DEALER that authenticates with `client_keys` to a server known by its public key.
  static SecurityOptions CurveClient(CurveKeyPair client_keys, std::string server_public_key);
};

// Socket options; the defaults suit a worker link.
struct SocketOptions {
  int heartbeat_interval_ms = 1000;  // ZMQ_HEARTBEAT_IVL (ZMTP PING every ...)
  int heartbeat_timeout_ms = 5000;   // ZMQ_HEARTBEAT_TIMEOUT (no traffic for ... = dead peer)
  int heartbeat_ttl_ms = 5000;       // ZMQ_HEARTBEAT_TTL (the remote side's timeout)
  int64_t max_message_bytes = kDefaultWorkerMaxMessageBytes;  // ZMQ_MAXMSGSIZE, -1 = unlimited
  int linger_ms = 100;                                        // ZMQ_LINGER on close
  int high_water_mark = 1000;                                 // ZMQ_SNDHWM and ZMQ_RCVHWM, messages
  std::string routing_id;  // DEALER only: ZMQ_ROUTING_ID; empty = chosen by the ROUTER
};

namespace internal {
class ContextState;
}  // namespace internal

// A ZeroMQ context and its ZAP handler thread (bound to inproc://zeromq.zap.01 before any socket
// of this context binds). Sockets keep the shared state alive, so the context may be destroyed
// before its sockets. Resource type. Thread-safe.
class TransportContext {
 public:
  // Starts the ZAP handler. Internal when it cannot bind.
  static StatusOr<std::unique_ptr<TransportContext>> Create();
  ~TransportContext();
  TransportContext(const TransportContext&) = delete;
  TransportContext& operator=(const TransportContext&) = delete;

  // The underlying context, e.g. to make an inproc wake-up socket for a poll loop.
  zmq::context_t& context();

 private:
  explicit TransportContext(std::shared_ptr<internal::ContextState> state);
  friend class RouterSocket;
  friend class DealerSocket;
  std::shared_ptr<internal::ContextState> state_;
};

// One message received by a ROUTER.
struct RoutedMessage {
  std::string peer;             // identity frame (opaque bytes), used to reply
  std::string payload;          // codec-encoded envelope
  std::string peer_public_key;  // Z85 key the peer authenticated with; empty in plain mode
};

// The coordinator's side of a link: binds, receives from many peers, replies by identity.
// ROUTER_MANDATORY and ROUTER_HANDOVER are on. Use only from the thread that created it.
class RouterSocket {
 public:
  // Binds to `endpoint` (e.g. "tcp://0.0.0.0:5555" or "tcp://127.0.0.1:*").
  // InvalidArgument for unset security or a bad key; Unavailable when the bind fails.
  static StatusOr<std::unique_ptr<RouterSocket>> Bind(TransportContext& context,
                                                      const std::string& endpoint,
                                                      const SecurityOptions& security,
                                                      const SocketOptions& options = {});
  ~RouterSocket();
  RouterSocket(const RouterSocket&) = delete;
  RouterSocket& operator=(const RouterSocket&) = delete;

  // The bound endpoint with the real port, e.g. "tcp://127.0.0.1:41234".
  const std::string& endpoint() const { return endpoint_; }

  // Sends [peer][version][payload] without blocking. Unavailable when the peer is not connected
  // (ROUTER_MANDATORY), ResourceExhausted when its queue is full.
  Status Send(std::string_view peer, std::string_view payload);

  // Waits up to timeout_ms (>= 0) for one message. DeadlineExceeded on timeout;
  // FailedPrecondition for a wrong version frame and InvalidArgument for a wrong frame count (the
  // bad message is consumed and the socket keeps working).
  StatusOr<RoutedMessage> Receive(int timeout_ms);

  // For zmq::poll in a server loop; do not read or write it directly.
  zmq::socket_t& socket() { return socket_; }

 private:
  RouterSocket(std::shared_ptr<internal::ContextState> state, zmq::socket_t socket,
               std::string endpoint, std::string zap_domain);
  std::shared_ptr<internal::ContextState> state_;
  zmq::socket_t socket_;
  std::string endpoint_;
  std::string zap_domain_;
};

// A worker's or client's side of a link: connects out to one ROUTER. ZeroMQ reconnects by itself.
// Use only from the thread that created it.
class DealerSocket {
 public:
  // Connects to `endpoint` (the connection is made in the background). InvalidArgument for unset
  // security or a bad key; Unavailable when the endpoint is malformed.
  static StatusOr<std::unique_ptr<DealerSocket>> Connect(TransportContext& context,
                                                         const std::string& endpoint,
                                                         const SecurityOptions& security,
                                                         const SocketOptions& options = {});
  ~DealerSocket();
  DealerSocket(const DealerSocket&) = delete;
  DealerSocket& operator=(const DealerSocket&) = delete;

  // Queues [version][payload] without blocking. ResourceExhausted when the queue is full.
  Status Send(std::string_view payload);

  // Waits up to timeout_ms (>= 0) for one message; returns its payload. DeadlineExceeded on
  // timeout; FailedPrecondition for a wrong version frame; InvalidArgument for a wrong frame count.
  StatusOr<std::string> Receive(int timeout_ms);

  zmq::socket_t& socket() { return socket_; }

 private:
  DealerSocket(std::shared_ptr<internal::ContextState> state, zmq::socket_t socket);
  std::shared_ptr<internal::ContextState> state_;
  zmq::socket_t socket_;
};

}  // namespace dnd::protocol

#endif  // DND_PROTOCOL_TRANSPORT_H_
