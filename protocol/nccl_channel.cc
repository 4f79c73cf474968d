// NCCL channel (nccl_channel.h). CUDA and NCCL types stay in this file.
#include "protocol/nccl_channel.h"

#include <chrono>
#include <cstring>
#include <thread>

#include <cuda_runtime_api.h>
#include <nccl.h>

namespace dnd::protocol {
namespace {

Status NcclError(ncclResult_t r, const std::string& what) {
  return UnavailableError(what + ": " + ncclGetErrorString(r));
}

}  // namespace

StatusOr<NcclInfo> NcclAvailable() {
  NcclInfo info;
  ncclResult_t r = ncclGetVersion(&info.nccl_version);
  if (r != ncclSuccess) return NcclError(r, "ncclGetVersion");
  cudaError_t e = cudaGetDeviceCount(&info.cuda_device_count);
  if (e != cudaSuccess) {
    return UnavailableError("NCCL " + std::to_string(info.nccl_version) +
                            " present but no usable CUDA device: " + cudaGetErrorString(e));
  }
  if (info.cuda_device_count < 1) {
    return UnavailableError("NCCL " + std::to_string(info.nccl_version) + ": no CUDA device");
  }
  return info;
}

StatusOr<std::string> NcclCreateUniqueId() {
  ncclUniqueId id;
  ncclResult_t r = ncclGetUniqueId(&id);
  if (r != ncclSuccess) return NcclError(r, "ncclGetUniqueId");
  return std::string(id.internal, sizeof(id.internal));
}

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
};

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NcclCommunicator::~NcclCommunicator() { Abort(); }

StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(const std::string& unique_id,
                                                                     int num_ranks, int rank,
                                                                     int cuda_device,
                                                                     int timeout_ms) {
  if (unique_id.size() != NCCL_UNIQUE_ID_BYTES) {
    return InvalidArgumentError("NCCL unique id has " + std::to_string(unique_id.size()) +
                                " bytes, expected " + std::to_string(NCCL_UNIQUE_ID_BYTES));
  }
  if (num_ranks < 1 || rank < 0 || rank >= num_ranks) {
    return InvalidArgumentError("NCCL rank " + std::to_string(rank) + " of " +
                                std::to_string(num_ranks));
  }
  cudaError_t e = cudaSetDevice(cuda_device);
  if (e != cudaSuccess) {
    return UnavailableError("cudaSetDevice(" + std::to_string(cuda_device) +
                            "): " + cudaGetErrorString(e));
  }
  ncclUniqueId id;
  std::memcpy(id.internal, unique_id.data(), NCCL_UNIQUE_ID_BYTES);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  auto impl = std::make_unique<Impl>();
  ncclResult_t r = ncclCommInitRankConfig(&impl->comm, num_ranks, id, rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) return NcclError(r, "ncclCommInitRankConfig");
  auto communicator = std::unique_ptr<NcclCommunicator>(new NcclCommunicator(std::move(impl)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    ncclResult_t state = ncclSuccess;
    r = ncclCommGetAsyncError(communicator->impl_->comm, &state);
    if (r != ncclSuccess) return NcclError(r, "ncclCommGetAsyncError");
    if (state == ncclSuccess) return communicator;
    if (state != ncclInProgress) return NcclError(state, "NCCL communicator initialisation");
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceededError("NCCL communicator not ready within " +
                                   std::to_string(timeout_ms) + " ms (aborted)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

Status NcclCommunicator::Send(const void* device_data, size_t bytes, int peer, void* stream) {
  if (!impl_->comm) return FailedPreconditionError("NCCL communicator was aborted");
  ncclResult_t r =
      ncclSend(device_data, bytes, ncclUint8, peer, impl_->comm, static_cast<cudaStream_t>(stream));
  if (r != ncclSuccess && r != ncclInProgress) return NcclError(r, "ncclSend");
  return OkStatus();
}

Status NcclCommunicator::Receive(void* device_data, size_t bytes, int peer, void* stream) {
  if (!impl_->comm) return FailedPreconditionError("NCCL communicator was aborted");
  ncclResult_t r =
      ncclRecv(device_data, bytes, ncclUint8, peer, impl_->comm, static_cast<cudaStream_t>(stream));
  if (r != ncclSuccess && r != ncclInProgress) return NcclError(r, "ncclRecv");
  return OkStatus();
}

Status NcclCommunicator::AsyncError() {
  if (!impl_->comm) return FailedPreconditionError("NCCL communicator was aborted");
  ncclResult_t state = ncclSuccess;
  ncclResult_t r = ncclCommGetAsyncError(impl_->comm, &state);
  if (r != ncclSuccess) return NcclError(r, "ncclCommGetAsyncError");
  if (state != ncclSuccess && state != ncclInProgress) return NcclError(state, "NCCL async error");
  return OkStatus();
}

void NcclCommunicator::Abort() {
  if (impl_ && impl_->comm) {
    ncclCommAbort(impl_->comm);
    impl_->comm = nullptr;
  }
}

}  // namespace dnd::protocol
