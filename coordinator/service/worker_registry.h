// The registry of connected experts: who registered (expert name, organisation, latent space,
// concepts, utilities), from which peer and key, and whether they are alive by heartbeat.
// Call only from the coordinator's serving thread.
#ifndef DND_COORDINATOR_SERVICE_WORKER_REGISTRY_H_
#define DND_COORDINATOR_SERVICE_WORKER_REGISTRY_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "protocol/messages.h"

namespace dnd::coordinator {

struct WorkerRecord {
  std::string peer;        // ROUTER identity of the worker's connection
  std::string public_key;  // CURVE key it authenticated with; empty in plain mode
  protocol::WorkerHello hello;
  std::chrono::steady_clock::time_point last_seen;
  bool alive = true;
};

class WorkerRegistry {
 public:
  explicit WorkerRegistry(std::chrono::milliseconds liveness) : liveness_(liveness) {}

  // Registers (or re-registers) the expert named in `hello`. A registration of a name that another
  // peer holds replaces it (a restarted worker); the replaced peer is returned so its jobs can
  // fail.
  std::optional<std::string> Register(const std::string& peer, const std::string& public_key,
                                      const protocol::WorkerHello& hello,
                                      std::chrono::steady_clock::time_point now);
  // Records a sign of life. False when the peer is not registered.
  bool Touch(const std::string& peer, std::chrono::steady_clock::time_point now);
  // Marks the peer offline (it said goodbye). False when unknown.
  bool MarkOffline(const std::string& peer);
  // Marks every worker silent for longer than the liveness window offline; returns their peers.
  std::vector<std::string> ExpireSilent(std::chrono::steady_clock::time_point now);

  const WorkerRecord* FindByName(const std::string& expert_name) const;
  const WorkerRecord* FindByPeer(const std::string& peer) const;
  // Every known expert (alive or not), sorted by name, for `dnd experts`.
  std::vector<protocol::ExpertInfo> List(std::chrono::steady_clock::time_point now) const;
  // "footwear (sandal, sneaker, ankle_boot), rest (trouser, dress, bag)" — for error messages.
  std::string DescribeAlive() const;

 private:
  std::chrono::milliseconds liveness_;
  std::vector<WorkerRecord> workers_;
};

}  // namespace dnd::coordinator

#endif  // DND_COORDINATOR_SERVICE_WORKER_REGISTRY_H_
