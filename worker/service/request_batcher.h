// Collects requests from concurrent jobs into batches for one forward pass (issue 4,
// "Concurrency"). A batch is ready when it holds `max_batch` items, or when its oldest item has
// waited `max_wait_ms`. Pure logic over an injected clock, so it is tested without sockets or
// models. Not thread-safe: owned by the worker's serving loop.
#ifndef DND_WORKER_SERVICE_REQUEST_BATCHER_H_
#define DND_WORKER_SERVICE_REQUEST_BATCHER_H_

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "protocol/status.h"

namespace dnd::worker {

using Clock = std::chrono::steady_clock;

template <typename Request>
class RequestBatcher {
 public:
  // max_batch >= 1; max_wait_ms >= 0 (0 = a batch is ready as soon as it has one item).
  RequestBatcher(size_t max_batch, int max_wait_ms)
      : max_batch_(max_batch), max_wait_(std::chrono::milliseconds(max_wait_ms)) {
    DND_CHECK(max_batch >= 1) << "max_batch must be at least 1";
    DND_CHECK(max_wait_ms >= 0) << "max_wait_ms must not be negative";
  }

  void Add(Request request, Clock::time_point now) {
    pending_.push_back({std::move(request), now});
  }

  bool empty() const { return pending_.empty(); }
  size_t size() const { return pending_.size(); }

  // True when a full batch is waiting or the oldest item's wait window has passed.
  bool Ready(Clock::time_point now) const {
    if (pending_.empty()) return false;
    return pending_.size() >= max_batch_ || now - pending_.front().arrived >= max_wait_;
  }

  // When the oldest item's window closes; nullopt when empty. A poll loop sleeps at most until
  // then.
  std::optional<Clock::time_point> Deadline() const {
    if (pending_.empty()) return std::nullopt;
    return pending_.front().arrived + max_wait_;
  }

  // Removes and returns up to max_batch items, oldest first.
  std::vector<Request> Take() {
    const size_t n = std::min(max_batch_, pending_.size());
    std::vector<Request> batch;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(pending_.front().request));
      pending_.pop_front();
    }
    return batch;
  }

 private:
  struct Pending {
    Request request;
    Clock::time_point arrived;
  };
  size_t max_batch_;
  Clock::duration max_wait_;
  std::deque<Pending> pending_;
};

}  // namespace dnd::worker

#endif  // DND_WORKER_SERVICE_REQUEST_BATCHER_H_
