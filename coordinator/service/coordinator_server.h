// The coordinator service: binds the worker and client endpoints, keeps the registry of connected
// experts, and runs Divide-and-Denoise jobs (and the baselines) across the experts' workers: the
// per-step loop of METHOD.md (fan out x_t, gather predictions and utilities within a deadline,
// allocate, optional guidance round, combine, sample). Results go under the data directory.
// One thread (the one calling Run) owns both sockets and every job: jobs are event-driven state
// machines, so no job state is shared between threads (docs/coordinator.md).
#ifndef DND_COORDINATOR_SERVICE_COORDINATOR_SERVER_H_
#define DND_COORDINATOR_SERVICE_COORDINATOR_SERVER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/service/latent_decoder.h"
#include "protocol/messages.h"
#include "protocol/status.h"
#include "protocol/transport.h"

namespace dnd::coordinator {

// Values a job gets for what its spec leaves unset (0 / empty). See docs/coordinator.md.
struct JobDefaults {
  uint32_t steps = 50;
  // Classifier-free guidance scale: 5 since the C=48 tops expert (docs/benchmarks/experts.md: at 3
  // the trained tops miss the quality gate, at 5 every concept passes; composition re-measured at
  // 5, docs/results.md).
  float cfg_scale = 5.0f;
  double eta = 0.015;        // the paper's DDIM stochasticity
  double beta_score = 0.01;  // KL weight with the score utility (paper), at 4096 positions
  // KL weight with the attention utility, at 4096 positions (the paper's 0.001; 0.0003 chosen by
  // the sweep on the trained experts, docs/results.md).
  double beta_attention = 0.0003;
  // Guidance step (METHOD.md decision): 0.015, chosen with guidance_outside and the region-centred
  // views by the sweep on the tuning subset (docs/results.md; 0.02 without the views, 0.01 with
  // guidance confined to the region); METHOD.md's prototype value 0.1 was measured on pixel-space
  // experts with unconfined guidance.
  double gamma = 0.015;
  double rho = 1.0;  // proportional fairness share
  // Weight of an expert's guidance gradient outside its own region (docs/method.md decision 11):
  // 0 = only on its own region, 1 = everywhere (METHOD.md literally). 0.5 chosen by the sweep on
  // the tuning subset (docs/results.md: 53% of its images against 29% at 0 and 12% at 1).
  double guidance_outside = 0.5;
  // Gaussian blur (standard deviation in latent positions) of every utility map before the
  // allocation (docs/method.md decision 12); 0 = none. A coordinator setting, not per job.
  double utility_smoothing = 2.0;
  // Region-centred views (docs/method.md decision 13): the gain on the offset of each expert's
  // region from the frame's centre (0 = off), the largest shift and the least distance between two
  // experts' view centres (decision 14; 0 = not separated), in latent positions. Coordinator
  // settings, not per job.
  double view_gain = 1.0;
  int view_max_shift = 3;
  double view_min_separation = 6.0;
  // The frame size (shorter side, positions) the two above are given for; they are scaled to each
  // job's latent (decision 15). 0 = in the latent's own positions.
  int view_reference_size = 16;
  std::string beta_schedule = "scaled_linear";
  std::string timestep_spacing = "leading";
};

struct CoordinatorOptions {
  std::string worker_endpoint = "tcp://0.0.0.0:5555";  // workers connect here
  std::string client_endpoint = "tcp://0.0.0.0:5556";  // the dnd CLI connects here
  protocol::SecurityOptions worker_security;           // must be set: CURVE, or Plain() explicitly
  protocol::SecurityOptions client_security;
  std::filesystem::path data_dir = "dnd-data";  // jobs/<id>/{image.png, allocation.png, ...}
  int max_concurrent_jobs = 2;                  // the rest wait in the queue
  int step_deadline_ms = 60000;                 // per round (step or guidance) of one job
  int heartbeat_interval_ms = 1000;             // told to workers in HelloAck
  int worker_liveness_ms = 3000;                // silent this long = offline
  // Finished jobs kept in memory for `dnd status` / `dnd watch` (a few tens of kilobytes each:
  // the per-step record). Beyond this many the oldest finished ones are dropped; their results
  // stay on disk and `dnd fetch` still reads them. At least 1.
  int keep_finished_jobs = 10000;
  JobDefaults defaults;
  // Decoders of image.png, at most one per latent space id (LoadAutoencoderDecoders). A job whose
  // latent space has none gets the channel-mean preview (pixel space needs none).
  std::vector<std::shared_ptr<const LatentDecoder>> decoders;
};

// The endpoints actually bound (with real ports when the options asked for port 0 / "*").
struct BoundEndpoints {
  std::string worker;
  std::string client;
};

// Thread rule: Create on any thread; Run on the thread that will own the sockets; RequestStop and
// WaitUntilBound from any thread.
class CoordinatorServer {
 public:
  // InvalidArgument for unset security, bad limits or defaults, a null decoder or two decoders of
  // one latent space; FailedPrecondition when the data directory cannot be created.
  static StatusOr<std::unique_ptr<CoordinatorServer>> Create(CoordinatorOptions options,
                                                             protocol::TransportContext& context);
  ~CoordinatorServer();
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  // Binds both endpoints and serves until RequestStop(). Unavailable when a bind fails. Running
  // jobs are cancelled ("coordinator stopping") on the way out.
  Status Run();
  void RequestStop();
  // Blocks until Run() has bound its sockets (or failed to); DeadlineExceeded after `timeout`.
  StatusOr<BoundEndpoints> WaitUntilBound(std::chrono::milliseconds timeout);

 private:
  class Loop;
  CoordinatorServer(CoordinatorOptions options, protocol::TransportContext& context);
  CoordinatorOptions options_;
  protocol::TransportContext& context_;
  std::atomic<bool> stop_{false};
  std::mutex bound_mutex_;
  std::condition_variable bound_cv_;
  std::optional<StatusOr<BoundEndpoints>> bound_;  // guarded by bound_mutex_
};

}  // namespace dnd::coordinator

#endif  // DND_COORDINATOR_SERVICE_COORDINATOR_SERVER_H_
