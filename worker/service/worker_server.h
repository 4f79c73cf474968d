// The worker's serving loop: connects out to the coordinator (DEALER), registers its expert,
// heart-beats, and answers step and guidance requests from many concurrent jobs, batching them into
// one forward pass (docs/worker.md). It is the only code of an organisation that touches its
// expert; nothing but predictions, utility maps and gradients leaves it.
#ifndef DND_WORKER_SERVICE_WORKER_SERVER_H_
#define DND_WORKER_SERVICE_WORKER_SERVER_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "protocol/messages.h"
#include "protocol/status.h"
#include "protocol/transport.h"
#include "worker/experts/expert.h"

namespace dnd::worker {

struct WorkerOptions {
  std::string coordinator_endpoint;  // e.g. "tcp://coordinator.example:5555"
  protocol::SecurityOptions security;
  std::string organisation;
  // Batching of requests from concurrent jobs: a batch is run when it holds max_batch items or its
  // oldest item has waited batch_wait_ms.
  size_t max_batch = 8;
  int batch_wait_ms = 2;
  // Until the coordinator's HelloAck says otherwise.
  int heartbeat_interval_ms = 1000;
  // Registration is re-sent this often until acknowledged, and after the coordinator has been
  // silent for 3 heartbeat intervals (it may have restarted).
  int hello_retry_ms = 1000;
  // Step inputs kept for the guidance request of the same step: the latest step of each job, for
  // at most this many jobs (least recently used evicted).
  size_t guidance_cache_jobs = 256;
  // The owner's classifier-free guidance scale for this expert, announced in WorkerHello: jobs that
  // set no scale sample this expert with it (docs/method.md decision 16). 0 = no preference (the
  // coordinator's default); otherwise finite and in (0, 100].
  double guidance_scale = 0.0;
};

// Thread rule: Create on any thread; Run on the thread that will own the socket (it creates it).
// RequestStop() is thread-safe.
class WorkerServer {
 public:
  // InvalidArgument for an empty endpoint, max_batch 0, negative waits, a guidance scale outside
  // [0, 100], or unset security.
  static StatusOr<std::unique_ptr<WorkerServer>> Create(WorkerOptions options,
                                                        std::unique_ptr<experts::Expert> expert,
                                                        protocol::TransportContext& context);
  ~WorkerServer();
  WorkerServer(const WorkerServer&) = delete;
  WorkerServer& operator=(const WorkerServer&) = delete;

  // Serves until RequestStop(), a Goodbye from the coordinator, or a refused registration
  // (FailedPrecondition with the coordinator's reason). Unavailable when the socket cannot be made.
  Status Run();
  void RequestStop() { stop_.store(true); }

 private:
  class Loop;
  WorkerServer(WorkerOptions options, std::unique_ptr<experts::Expert> expert,
               protocol::TransportContext& context);
  WorkerOptions options_;
  std::unique_ptr<experts::Expert> expert_;
  protocol::TransportContext& context_;
  std::atomic<bool> stop_{false};
};

// Conversions between the wire and the expert interface (exposed for tests).
experts::UtilityKind ToExpertUtility(protocol::UtilityKind kind);
protocol::UtilityKind ToWireUtility(experts::UtilityKind kind);
protocol::PredictionType ToWirePrediction(experts::PredictionType type);
// The registration message describing `info`.
protocol::WorkerHello MakeHello(const experts::ExpertInfo& info, const std::string& organisation,
                                size_t max_batch, double guidance_scale = 0.0);
// InvalidArgument when the request's latent is not exactly the expert's (C, H, W) float32 tensor.
Status CheckLatentShape(const experts::ExpertInfo& info, const protocol::Tensor& latent);

}  // namespace dnd::worker

#endif  // DND_WORKER_SERVICE_WORKER_SERVER_H_
