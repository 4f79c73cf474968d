// See worker_registry.h.
#include "coordinator/service/worker_registry.h"

#include <algorithm>

namespace dnd::coordinator {

std::optional<std::string> WorkerRegistry::Register(const std::string& peer,
                                                    const std::string& public_key,
                                                    const protocol::WorkerHello& hello,
                                                    std::chrono::steady_clock::time_point now) {
  std::optional<std::string> replaced;
  // One record per expert name and one per peer.
  std::erase_if(workers_, [&](const WorkerRecord& w) {
    if (w.hello.expert_name == hello.expert_name && w.peer != peer) replaced = w.peer;
    return w.hello.expert_name == hello.expert_name || w.peer == peer;
  });
  workers_.push_back(WorkerRecord{peer, public_key, hello, now, true});
  return replaced;
}

bool WorkerRegistry::Touch(const std::string& peer, std::chrono::steady_clock::time_point now) {
  for (WorkerRecord& w : workers_) {
    if (w.peer == peer) {
      w.last_seen = now;
      w.alive = true;
      return true;
    }
  }
  return false;
}

bool WorkerRegistry::MarkOffline(const std::string& peer) {
  for (WorkerRecord& w : workers_) {
    if (w.peer == peer) {
      w.alive = false;
      return true;
    }
  }
  return false;
}

std::vector<std::string> WorkerRegistry::ExpireSilent(std::chrono::steady_clock::time_point now) {
  std::vector<std::string> expired;
  for (WorkerRecord& w : workers_) {
    if (w.alive && now - w.last_seen > liveness_) {
      w.alive = false;
      expired.push_back(w.peer);
    }
  }
  return expired;
}

const WorkerRecord* WorkerRegistry::FindByName(const std::string& expert_name) const {
  for (const WorkerRecord& w : workers_) {
    if (w.hello.expert_name == expert_name) return &w;
  }
  return nullptr;
}

const WorkerRecord* WorkerRegistry::FindByPeer(const std::string& peer) const {
  for (const WorkerRecord& w : workers_) {
    if (w.peer == peer) return &w;
  }
  return nullptr;
}

std::vector<protocol::ExpertInfo> WorkerRegistry::List(
    std::chrono::steady_clock::time_point now) const {
  std::vector<protocol::ExpertInfo> out;
  for (const WorkerRecord& w : workers_) {
    protocol::ExpertInfo info;
    info.expert_name = w.hello.expert_name;
    info.organisation = w.hello.organisation;
    info.latent_space_id = w.hello.latent_space_id;
    info.latent_shape = w.hello.latent_shape;
    info.concepts = w.hello.concepts;
    info.utilities = w.hello.utilities;
    info.prediction_type = w.hello.prediction_type;
    info.guidance_scale = w.hello.guidance_scale;
    info.alive = w.alive;
    info.last_seen_millis_ago = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - w.last_seen).count());
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.expert_name < b.expert_name; });
  return out;
}

std::string WorkerRegistry::DescribeAlive() const {
  std::vector<std::string> parts;
  for (const WorkerRecord& w : workers_) {
    if (!w.alive) continue;
    std::string concepts;
    for (const std::string& c : w.hello.concepts) {
      if (!concepts.empty()) concepts += ", ";
      concepts += c;
    }
    parts.push_back(w.hello.expert_name + " (" + concepts + ")");
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += "; ";
    out += p;
  }
  return out.empty() ? "none" : out;
}

}  // namespace dnd::coordinator
