// The client side of the coordinator's client link, used by every `dnd` subcommand and the demo:
// connects a DEALER (plain or CURVE), sends one request and waits for its one reply, or follows a
// Watch stream. Failures are mapped so the CLI can tell them apart: nothing answers ->
// Unavailable, the coordinator refuses our CURVE key -> Unauthenticated (seen through a ZeroMQ
// socket monitor on the DEALER), a wait past its deadline -> DeadlineExceeded.
#ifndef DND_TOOLS_COORDINATOR_CLIENT_H_
#define DND_TOOLS_COORDINATOR_CLIENT_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "protocol/connection_monitor.h"
#include "protocol/messages.h"
#include "protocol/status.h"
#include "protocol/transport.h"

namespace dnd::tools {

struct ClientOptions {
  std::string endpoint;                // the coordinator's client endpoint, e.g. tcp://host:5556
  protocol::SecurityOptions security;  // SecurityOptions::Plain() or CurveClient(...)
  // How long one request waits for its reply; also how long a Watch may go without hearing from
  // the coordinator before the client asks whether it is still there.
  int reply_timeout_ms = 10000;
};

// True for succeeded, failed and cancelled.
bool IsTerminal(protocol::JobState state);

// One client connection. Requests are sequential: one outstanding request at a time.
// Thread rule: use from the thread that created it (it owns ZeroMQ sockets).
class CoordinatorClient {
 public:
  // Starts connecting in the background (this never waits for the coordinator).
  // InvalidArgument for unset security, a bad key or a malformed endpoint.
  static StatusOr<std::unique_ptr<CoordinatorClient>> Connect(protocol::TransportContext& context,
                                                              ClientOptions options);
  ~CoordinatorClient();
  CoordinatorClient(const CoordinatorClient&) = delete;
  CoordinatorClient& operator=(const CoordinatorClient&) = delete;

  // Sends `request` and returns the first reply that is not a ProgressEvent. An ErrorReply is
  // returned as a value (the typed helpers below turn it into a Status). Errors:
  //   Unavailable      no reply within reply_timeout_ms ("cannot reach the coordinator at <ep>
  //                    within N s", with what was seen: connection refused, no answer, ...);
  //   Unauthenticated  the coordinator refused this client's key, or the security handshake
  //                    failed (plain vs CURVE, wrong --server-key);
  //   Internal         a reply that does not decode.
  StatusOr<protocol::CoordinatorToClient> Call(const protocol::ClientToCoordinator& request);

  // Typed requests. Besides Call's errors, the coordinator's ErrorReply comes back as its Status
  // (NotFound for an unknown job, InvalidArgument for a bad spec, ...), and a reply of the wrong
  // kind is Internal.
  StatusOr<std::string> Submit(const protocol::SubmitJob& request);  // the job id
  // One job, or every job when job_id is empty.
  StatusOr<std::vector<protocol::JobStatus>> GetStatus(const std::string& job_id);
  StatusOr<protocol::CancelReply> Cancel(const std::string& job_id);
  StatusOr<std::vector<protocol::ExpertInfo>> ListExperts();
  StatusOr<protocol::ResultFiles> FetchResult(const std::string& job_id);

  // Follows job `job_id`: calls `on_event` for every ProgressEvent, in order, and returns the final
  // (terminal) one. When the coordinator is silent for reply_timeout_ms the client asks for the
  // job's status; a terminal status ends the watch (returned as an event carrying the reason), no
  // answer within reply_timeout_ms is Unavailable ("lost contact ..."). DeadlineExceeded when
  // `deadline` (measured from the call) passes first; the job keeps running. NotFound for an
  // unknown job.
  StatusOr<protocol::ProgressEvent> Watch(
      const std::string& job_id,
      const std::function<void(const protocol::ProgressEvent&)>& on_event,
      std::optional<std::chrono::milliseconds> deadline = std::nullopt);

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  CoordinatorClient(ClientOptions options, std::unique_ptr<protocol::DealerSocket> dealer,
                    std::unique_ptr<protocol::ConnectionMonitor> monitor);
  // Waits up to timeout_ms for one decoded message, reading monitor events meanwhile.
  // DeadlineExceeded on timeout (callers turn it into their own message); Unauthenticated as soon
  // as the monitor reports a refused handshake; Internal for an undecodable reply.
  StatusOr<protocol::CoordinatorToClient> Receive(int timeout_ms);
  // The Unavailable / Unauthenticated status for "no reply within `waited_ms`".
  Status NoReplyError(const std::string& what, int waited_ms) const;

  ClientOptions options_;
  std::unique_ptr<protocol::DealerSocket> dealer_;
  // Declared after dealer_: destroyed first, while the DEALER it watches still exists.
  std::unique_ptr<protocol::ConnectionMonitor> monitor_;
};

}  // namespace dnd::tools

#endif  // DND_TOOLS_COORDINATOR_CLIENT_H_
