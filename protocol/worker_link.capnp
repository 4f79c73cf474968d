# Messages between the coordinator and a worker (one expert). The worker connects out with a
# DEALER socket to the coordinator's ROUTER; each ZeroMQ message carries one envelope below.
# Evolve by appending fields with new ordinals; never renumber or change a field's type.
@0xcdaa0a74e715d19f;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("dnd::wire");

using Common = import "common.capnp";

# Registration: the first message a worker sends.
struct WorkerHello {
  protocolVersion @0 :UInt32;                   # The worker's protocol version (must equal ours).
  expertName @1 :Text;                          # Unique name of the expert, e.g. "footwear".
  organisation @2 :Text;                        # The organisation that owns and runs the expert.
  latentSpaceId @3 :Text;                       # Identifies the latent space (experts that share one can be composed).
  latentShape @4 :List(UInt32);                 # (C, H, W) of the latent the expert denoises.
  concepts @5 :List(Text);                      # Concepts (conditions) the expert knows.
  utilities @6 :List(Common.UtilityKind);       # Utilities the expert can report.
  predictionType @7 :Common.PredictionType;     # What the expert's network predicts.
  maxBatch @8 :UInt32;                          # Largest batch of step requests it serves at once (>= 1).
  # The owner's classifier-free guidance scale for this expert, used by jobs that set none (finite,
  # in [0, 100]); 0 = no preference: such jobs use the coordinator's default.
  guidanceScale @9 :Float32;
}

# The coordinator's answer to WorkerHello.
struct HelloAck {
  accepted @0 :Bool;                  # False: registration refused; see reason.
  reason @1 :Text;                    # Why it was refused (empty when accepted).
  heartbeatIntervalMillis @2 :UInt32; # How often the worker must send Heartbeat.
}

# One denoising step for one expert: predict at (timestep, latent) and report the utility map.
struct StepRequest {
  jobId @0 :Text;                     # The job the step belongs to.
  stepIndex @1 :UInt32;               # 0-based index of the step in the job's schedule.
  attempt @2 :UInt32;                 # Retry counter for this (job, step); replies echo it.
  timestep @3 :Int32;                 # Diffusion timestep t of this step.
  prevTimestep @4 :Int32;             # Timestep of the next step in the schedule (-1 after the last).
  alphaCumprod @5 :Float64;           # alphas_cumprod[timestep], in (0, 1], for closed-form experts.
  latent @6 :Common.Tensor;           # x_t, (C, H, W) float32, every element finite.
  concept @7 :Text;                   # The condition to predict for (one of WorkerHello.concepts).
  cfgScale @8 :Float32;               # Classifier-free guidance scale the job uses.
  utility @9 :Common.UtilityKind;     # Which utility map to return.
  wantGuidance @10 :Bool;             # True: keep what the GuidanceRequest of this step needs.
}

# The expert's answer to a StepRequest.
struct StepReply {
  jobId @0 :Text;                     # Echoes StepRequest.jobId.
  stepIndex @1 :UInt32;               # Echoes StepRequest.stepIndex.
  attempt @2 :UInt32;                 # Echoes StepRequest.attempt.
  predictionCond @3 :Common.Tensor;   # Conditional prediction, (C, H, W) float32, finite.
  predictionUncond @4 :Common.Tensor; # Unconditional prediction, (C, H, W) float32, finite.
  utility @5 :Common.Tensor;          # Utility map, (H, W) float32, >= 0, sums to 1.
  computeMicros @6 :UInt64;           # Time the expert spent on the step, microseconds.
}

# Second half of a step: the coordinator's allocation row Q_i for this expert.
struct GuidanceRequest {
  jobId @0 :Text;
  stepIndex @1 :UInt32;
  attempt @2 :UInt32;
  weights @3 :Common.Tensor;          # Q_i, (H, W) float32, finite.
}

# The expert's answer to a GuidanceRequest.
struct GuidanceReply {
  jobId @0 :Text;
  stepIndex @1 :UInt32;
  attempt @2 :UInt32;
  gradient @3 :Common.Tensor;         # (C, H, W) float32, finite.
  computeMicros @4 :UInt64;           # Time spent, microseconds.
}

# Liveness, both directions (ZMTP heartbeats guard the connection; this guards the process).
struct Heartbeat {
  sentUnixMillis @0 :Int64;           # Sender's wall clock when sent.
  inFlight @1 :UInt32;                # Requests the sender is working on.
}

# Orderly shutdown notice (optional).
struct Goodbye {
  reason @0 :Text;
}

# Every message a worker sends.
struct WorkerToCoordinator {
  protocolVersion @0 :UInt32;         # Must equal Common.protocolVersion.
  body :union {
    hello @1 :WorkerHello;
    stepReply @2 :StepReply;
    guidanceReply @3 :GuidanceReply;
    heartbeat @4 :Heartbeat;
    error @5 :Common.Error;
    goodbye @6 :Goodbye;
  }
}

# Every message the coordinator sends to a worker.
struct CoordinatorToWorker {
  protocolVersion @0 :UInt32;         # Must equal Common.protocolVersion.
  body :union {
    helloAck @1 :HelloAck;
    stepRequest @2 :StepRequest;
    guidanceRequest @3 :GuidanceRequest;
    heartbeat @4 :Heartbeat;
    error @5 :Common.Error;
    goodbye @6 :Goodbye;
  }
}
