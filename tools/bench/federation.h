// An embedded federation for the benchmarks: a real coordinator and one real worker per expert on
// threads of this process, talking over loopback TCP through the same sockets and code paths as a
// deployment (like `dnd demo`), plus a client that submits many jobs at once so that the workers
// batch, waits for them, and reads back each job's final latent and allocation shares.
#ifndef DND_TOOLS_BENCH_FEDERATION_H_
#define DND_TOOLS_BENCH_FEDERATION_H_

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol/messages.h"
#include "protocol/status.h"
#include "worker/experts/expert.h"

namespace dnd::bench {

struct FederationOptions {
  int max_concurrent_jobs = 32;             // jobs the coordinator runs at once (the rest queue)
  size_t max_batch = 32;                    // worker batch limit
  int batch_wait_ms = 2;                    // worker batch delay
  int step_deadline_ms = 600000;            // generous: a loaded 2-core machine is slow, not broken
  std::optional<double> utility_smoothing;  // unset = the coordinator's default
  std::optional<double> view_gain;          // region-centred views; unset = the default
  std::optional<int> view_max_shift;        // unset = the coordinator's default
  std::optional<double> view_min_separation;  // unset = the coordinator's default
  std::optional<int> view_reference_size;     // unset = the coordinator's default
  // Each expert's owner's guidance scale (its worker's --guidance-scale), by expert name; an
  // expert not listed declares none.
  std::map<std::string, double> guidance_scales;
};

// What came out of one job. Value type.
struct JobOutcome {
  std::string job_id;
  bool succeeded = false;
  std::string reason;                  // why it failed
  std::vector<uint32_t> latent_shape;  // (C, H, W)
  std::vector<float> latent;           // the final latent x_0
  // Final step's share (mean_j Q_ij) of each expert of the spec, by expert name.
  std::map<std::string, double> shares;
  double wall_ms = 0;  // the job's own wall time (record.json)
};

// Thread rule: create, use and destroy on one thread (it owns the client socket); the coordinator
// and the workers run on threads of their own, joined on destruction.
class EmbeddedFederation {
 public:
  // Starts the coordinator on 127.0.0.1 (plain sockets, temporary data directory) and a worker
  // per expert (the expert's Describe().name is its organisation), and waits until all are
  // registered. DeadlineExceeded when they do not register within 60 s; InvalidArgument for no
  // experts.
  static StatusOr<std::unique_ptr<EmbeddedFederation>> Start(
      std::vector<std::unique_ptr<experts::Expert>> experts, const FederationOptions& options);
  ~EmbeddedFederation();
  EmbeddedFederation(const EmbeddedFederation&) = delete;
  EmbeddedFederation& operator=(const EmbeddedFederation&) = delete;

  // Submits every spec, waits until all are finished, and returns their outcomes in spec order.
  // `progress(done, total)` is called as jobs finish. A failed job is an outcome with succeeded
  // false (the run goes on); errors are the client's (Unavailable: the coordinator stopped
  // answering) and InvalidArgument for a spec the coordinator refuses. Results are read from the
  // coordinator's data directory: latent.npy, or for a 1-channel latent space without it,
  // image.png (8-bit, so quantised to 1/255).
  StatusOr<std::vector<JobOutcome>> RunJobs(const std::vector<protocol::JobSpec>& specs,
                                            const std::function<void(int, int)>& progress);

  struct State;

 private:
  explicit EmbeddedFederation(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace dnd::bench

#endif  // DND_TOOLS_BENCH_FEDERATION_H_
