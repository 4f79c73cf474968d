// The codec: turns the plain message types of protocol/messages.h into Cap'n Proto bytes and back.
// The only code that touches generated *.capnp.h. Decoding never throws: every malformed,
// truncated, oversized or wrong-version input becomes a Status, and every decoded message has been
// validated (shapes, byte counts, finite values, enum ranges) before it is returned.
// All functions are thread-safe (no shared state).
#ifndef DND_PROTOCOL_CODEC_H_
#define DND_PROTOCOL_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "protocol/messages.h"
#include "protocol/status.h"

namespace dnd::protocol {

// Cap'n Proto traversal limits per direction (bytes read while decoding one message; data blobs
// count). A message that needs more is refused with ResourceExhausted.
inline constexpr size_t kMaxWorkerLinkMessageBytes = size_t{8} << 20;  // either direction
inline constexpr size_t kMaxClientRequestBytes = size_t{8} << 20;      // client -> coordinator
inline constexpr size_t kMaxClientReplyBytes = size_t{256} << 20;      // coordinator -> client
inline constexpr int kMaxNestingDepth = 16;
// Limits on individual fields.
inline constexpr size_t kMaxTensorRank = 4;
inline constexpr size_t kMaxNameBytes = 256;           // names, ids, tokens, concepts
inline constexpr size_t kMaxMessageTextBytes = 16384;  // free-text messages and reasons
inline constexpr size_t kMaxListEntries = 4096;        // experts, concepts, jobs, files, shapes

// Serialises one message (Cap'n Proto flat-array format, whole 8-byte words). Never fails for a
// value that Decode* would accept; values that would be rejected on receipt (e.g. a NaN in a
// latent) are still encoded, so tests can build bad inputs.
std::string Encode(const WorkerToCoordinator& message);
std::string Encode(const CoordinatorToWorker& message);
std::string Encode(const ClientToCoordinator& message);
std::string Encode(const CoordinatorToClient& message);

// Parses and validates one message. `bytes` may be at any alignment (copied when not 8-byte
// aligned). Errors:
//   DataLoss            length not a multiple of 8, truncated, corrupt pointers, trailing bytes;
//   ResourceExhausted   over the traversal limit of this direction (see above) or nested too deep;
//   FailedPrecondition  protocol version differs from kProtocolVersion (both named);
//   InvalidArgument     a field fails validation; the message names the field and what was
//   expected,
//                       e.g. "tensor 'latent': shape 4x16x16 needs 4096 bytes, got 4000".
StatusOr<WorkerToCoordinator> DecodeWorkerToCoordinator(std::span<const uint8_t> bytes);
StatusOr<CoordinatorToWorker> DecodeCoordinatorToWorker(std::span<const uint8_t> bytes);
StatusOr<ClientToCoordinator> DecodeClientToCoordinator(std::span<const uint8_t> bytes);
StatusOr<CoordinatorToClient> DecodeCoordinatorToClient(std::span<const uint8_t> bytes);

// A view of a std::string's bytes (e.g. a received payload) to pass to Decode*.
inline std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace dnd::protocol

#endif  // DND_PROTOCOL_CODEC_H_
