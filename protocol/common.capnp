# Types shared by both links (coordinator <-> worker, client <-> coordinator): the protocol version,
# tensors, enums and the error reply. Decoded into plain C++ types by protocol/codec.cc only.
# Evolve by appending fields with new ordinals; never renumber or change a field's type.
@0xfbe8af8b1d3bc78d;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("dnd::wire");

# Wire protocol version. Every envelope carries it and every ZeroMQ message starts with a 4-byte
# little-endian frame holding it; a peer with another version is refused with FailedPrecondition.
const protocolVersion :UInt32 = 1;

enum DType {
  float32 @0;  # IEEE-754 binary32, little-endian, 4 bytes per element.
  uint8 @1;    # 1 byte per element.
}

# A dense row-major tensor. The codec checks product(shape) * size(dtype) == size(data).
struct Tensor {
  shape @0 :List(UInt32);  # Dimensions, outermost first, e.g. (C, H, W) for a latent.
  dtype @1 :DType;         # Element type of `data`.
  data @2 :Data;           # Raw little-endian elements.
}

# Which per-position utility an expert reports (docs/method.md, "Utilities").
enum UtilityKind {
  score @0;      # Utility from the score (noise prediction) magnitude.
  attention @1;  # Utility from cross-attention maps.
}

# What an expert's network predicts (diffusers' prediction_type).
enum PredictionType {
  epsilon @0;      # The added noise.
  sample @1;       # The clean sample x0.
  vPrediction @2;  # v = alpha_t * eps - sigma_t * x0.
}

# The reply to a request that failed, on either link.
struct Error {
  code @0 :UInt32;      # A dnd::StatusCode value (Abseil numbering), never 0 (OK).
  message @1 :Text;     # What was wrong and what was expected.
  jobId @2 :Text;       # The failed request's job, empty when not about a job.
  stepIndex @3 :UInt32; # The failed request's step, 0 when not about a step.
  attempt @4 :UInt32;   # The failed request's attempt number.
}
