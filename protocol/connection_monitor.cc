// See connection_monitor.h.
#include "protocol/connection_monitor.h"

#include <atomic>
#include <cstdint>
#include <cstring>

#include <zmq.h>

namespace dnd::protocol {
namespace {

constexpr int kMonitoredEvents =
    ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |
    ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;

}  // namespace

StatusOr<std::unique_ptr<ConnectionMonitor>> ConnectionMonitor::Attach(TransportContext& context,
                                                                       DealerSocket& dealer) {
  // The monitor reports the DEALER's events on an inproc PAIR. Handshake failures repeat on every
  // reconnect, so events that happen before the PAIR connects are seen again.
  static std::atomic<uint64_t> next_monitor_id{0};
  const std::string endpoint =
      "inproc://dnd-connection-monitor-" + std::to_string(next_monitor_id.fetch_add(1));
  void* handle = dealer.socket().handle();
  if (zmq_socket_monitor(handle, endpoint.c_str(), kMonitoredEvents) != 0) {
    return InternalError(std::string("cannot monitor the socket: ") + zmq_strerror(zmq_errno()));
  }
  try {
    zmq::socket_t pair(context.context(), zmq::socket_type::pair);
    pair.set(zmq::sockopt::linger, 0);
    pair.connect(endpoint);
    return std::unique_ptr<ConnectionMonitor>(new ConnectionMonitor(handle, std::move(pair)));
  } catch (const zmq::error_t& e) {
    zmq_socket_monitor(handle, nullptr, 0);
    return InternalError(std::string("cannot connect the socket monitor: ") + e.what());
  }
}

ConnectionMonitor::~ConnectionMonitor() {
  zmq_socket_monitor(dealer_handle_, nullptr, 0);
  pair_.close();
}

const ConnectionEvents& ConnectionMonitor::Drain() {
  for (;;) {
    zmq::message_t header;
    zmq::recv_result_t got;
    try {
      got = pair_.recv(header, zmq::recv_flags::dontwait);
      // Frame 1: uint16 event, uint32 value; frame 2: the endpoint (consumed and ignored).
      while (got && pair_.get(zmq::sockopt::rcvmore)) {
        zmq::message_t rest;
        if (!pair_.recv(rest, zmq::recv_flags::dontwait)) break;
      }
    } catch (const zmq::error_t&) {
      return events_;  // e.g. EINTR: the rest is read next time
    }
    if (!got) return events_;
    if (header.size() < sizeof(uint16_t)) continue;
    uint16_t event = 0;
    std::memcpy(&event, header.data(), sizeof(event));
    switch (event) {
      case ZMQ_EVENT_CONNECT_RETRIED:
        ++events_.connect_refused;
        break;
      case ZMQ_EVENT_CONNECTED:
        ++events_.connected;
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        ++events_.handshakes;
        break;
      case ZMQ_EVENT_DISCONNECTED:
        ++events_.disconnects;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        ++events_.auth_failures;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        ++events_.protocol_failures;
        break;
      default:
        break;
    }
  }
}

Status ConnectionMonitor::HandshakeStatus(const std::string& endpoint,
                                          const std::string& who) const {
  if (events_.auth_failures > 0) {
    return UnauthenticatedError("the coordinator at " + endpoint + " refused " + who +
                                " (ask its operator to add the public key to the coordinator's "
                                "allow-list)");
  }
  if (events_.protocol_failures > 0 && events_.handshakes == 0) {
    return UnauthenticatedError(
        "the security handshake with the coordinator at " + endpoint +
        " failed: one side uses --plain and the other CURVE, or --server-key is not the "
        "coordinator's public key");
  }
  return OkStatus();
}

}  // namespace dnd::protocol
