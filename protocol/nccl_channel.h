// Optional NCCL channel for moving large GPU tensors between a coordinator and a worker, as vLLM
// does: the control link (ZeroMQ) carries the NCCL unique id as bytes, then both sides create a
// 2-rank communicator and use point-to-point send/recv. Built only with DND_WITH_NCCL. This header
// exposes no CUDA or NCCL types; device pointers and streams travel as void*.
#ifndef DND_PROTOCOL_NCCL_CHANNEL_H_
#define DND_PROTOCOL_NCCL_CHANNEL_H_

#include <cstddef>
#include <memory>
#include <string>

#include "protocol/status.h"

namespace dnd::protocol {

struct NcclInfo {
  int nccl_version = 0;       // ncclGetVersion, e.g. 22805 for 2.28.5
  int cuda_device_count = 0;  // >= 1 when Ok
};

// Whether NCCL can be used here. Unavailable (with the CUDA error text) when no CUDA device or
// driver is usable; never crashes on a machine without a GPU. Thread-safe.
StatusOr<NcclInfo> NcclAvailable();

// A fresh NCCL unique id (NCCL_UNIQUE_ID_BYTES bytes) to send to the peer over the control link.
// Unavailable when NCCL cannot create one (e.g. no network interface).
StatusOr<std::string> NcclCreateUniqueId();

// One rank of a communicator, created non-blocking and watched with ncclCommGetAsyncError so that
// a peer that never shows up ends in DeadlineExceeded (and an abort) instead of a hang.
// Resource type; use from one thread.
class NcclCommunicator {
 public:
  // unique_id: bytes from NcclCreateUniqueId on rank 0. Selects `cuda_device` first.
  // InvalidArgument for a bad id size or rank; Unavailable on NCCL/CUDA errors;
  // DeadlineExceeded when initialisation is not done within timeout_ms (the communicator is
  // aborted).
  static StatusOr<std::unique_ptr<NcclCommunicator>> Create(const std::string& unique_id,
                                                            int num_ranks, int rank,
                                                            int cuda_device, int timeout_ms);
  ~NcclCommunicator();  // aborts if still alive
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  // Enqueues a send / receive of `bytes` bytes of device memory to / from `peer` on `stream`
  // (a cudaStream_t, nullptr = default stream). Unavailable on NCCL errors.
  Status Send(const void* device_data, size_t bytes, int peer, void* stream);
  Status Receive(void* device_data, size_t bytes, int peer, void* stream);

  // The communicator's asynchronous error state: Ok, or Unavailable naming the NCCL error.
  Status AsyncError();

  // Aborts pending work and frees the communicator; idempotent.
  void Abort();

 private:
  struct Impl;
  explicit NcclCommunicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dnd::protocol

#endif  // DND_PROTOCOL_NCCL_CHANNEL_H_
