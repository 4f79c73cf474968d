// Turns a client's JobSpec into what a Job runs: fills in the coordinator's defaults, checks every
// number, and resolves each expert against the registry (alive, knows the concept, one latent
// space for all). Errors are InvalidArgument / NotFound / Unavailable with a message that says
// what is wrong and what is available. Call only from the coordinator's serving thread.
#ifndef DND_COORDINATOR_SERVICE_JOB_SPEC_H_
#define DND_COORDINATOR_SERVICE_JOB_SPEC_H_

#include <string>
#include <vector>

#include "coordinator/method/strategy.h"
#include "coordinator/service/coordinator_server.h"
#include "coordinator/service/job.h"
#include "coordinator/service/worker_registry.h"
#include "protocol/messages.h"
#include "protocol/status.h"

namespace dnd::coordinator {

struct ResolvedJob {
  ResolvedSpec resolved;
  std::vector<JobExpert> experts;
  method::LatentShape shape;
  std::string latent_space_id;
};

// The spec with every unset field (see protocol::JobSpec) replaced by `defaults`.
protocol::JobSpec ApplyDefaults(protocol::JobSpec spec, const JobDefaults& defaults);

// ApplyDefaults, then validation and resolution. Errors:
//   InvalidArgument  no experts, a number out of range (named with its value and the valid range),
//                    a concept the expert does not know (its concepts listed), experts of different
//                    latent spaces, a utility an expert does not support, a bad layout;
//   NotFound         an expert that never registered (the connected ones listed);
//   Unavailable      an expert that is registered but offline.
StatusOr<ResolvedJob> ResolveJob(const protocol::JobSpec& spec, const JobDefaults& defaults,
                                 const WorkerRegistry& registry);

}  // namespace dnd::coordinator

#endif  // DND_COORDINATOR_SERVICE_JOB_SPEC_H_
