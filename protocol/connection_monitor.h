// Watches a DEALER's connection with a ZeroMQ socket monitor, so that a client or a worker can tell
// "the coordinator refused my key" (a CURVE handshake failed in its ZAP handler) from "nothing is
// listening" — ZeroMQ itself only ever says "no reply yet". Used by the dnd CLI's client and by
// dnd-worker. Use only from the thread that owns the DEALER.
#ifndef DND_PROTOCOL_CONNECTION_MONITOR_H_
#define DND_PROTOCOL_CONNECTION_MONITOR_H_

#include <memory>
#include <string>

#include <zmq.hpp>

#include "protocol/status.h"
#include "protocol/transport.h"

namespace dnd::protocol {

// What the monitor has reported so far (counts since Attach).
struct ConnectionEvents {
  int connect_refused = 0;    // ZMQ_EVENT_CONNECT_RETRIED (nothing listening, or unreachable)
  int connected = 0;          // ZMQ_EVENT_CONNECTED (TCP up)
  int handshakes = 0;         // ZMQ_EVENT_HANDSHAKE_SUCCEEDED
  int disconnects = 0;        // ZMQ_EVENT_DISCONNECTED
  int auth_failures = 0;      // ZMQ_EVENT_HANDSHAKE_FAILED_AUTH (the ZAP handler refused our key)
  int protocol_failures = 0;  // ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL / _NO_DETAIL (plain vs CURVE,
                              // or a wrong server key)
};

class ConnectionMonitor {
 public:
  // Starts monitoring `dealer`, which must outlive the monitor. Internal when ZeroMQ refuses.
  static StatusOr<std::unique_ptr<ConnectionMonitor>> Attach(TransportContext& context,
                                                             DealerSocket& dealer);
  ~ConnectionMonitor();  // stops monitoring
  ConnectionMonitor(const ConnectionMonitor&) = delete;
  ConnectionMonitor& operator=(const ConnectionMonitor&) = delete;

  // Reads every pending event without blocking; returns the totals.
  const ConnectionEvents& Drain();
  const ConnectionEvents& events() const { return events_; }
  // Unauthenticated when the coordinator at `endpoint` refused our key (naming `who`, e.g. "this
  // worker's key"), or when handshakes failed for another reason and none succeeded; Ok
  // otherwise. Call after Drain().
  Status HandshakeStatus(const std::string& endpoint, const std::string& who) const;
  // For zmq::poll beside the DEALER: readable when events are pending.
  zmq::socket_t& socket() { return pair_; }

 private:
  ConnectionMonitor(void* dealer_handle, zmq::socket_t pair)
      : dealer_handle_(dealer_handle), pair_(std::move(pair)) {}
  void* dealer_handle_;
  zmq::socket_t pair_;  // PAIR connected to the DEALER's monitor endpoint
  ConnectionEvents events_;
};

}  // namespace dnd::protocol

#endif  // DND_PROTOCOL_CONNECTION_MONITOR_H_
