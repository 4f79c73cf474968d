# Messages between a client (the `dnd` command line, or a program) and the coordinator. The client
# connects out with a DEALER socket to the coordinator's client ROUTER.
# Evolve by appending fields with new ordinals; never renumber or change a field's type.
@0xff00d1102b1f5625;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("dnd::wire");

using Common = import "common.capnp";

# One expert taking part in a job.
struct ExpertRef {
  expertName @0 :Text;   # A registered expert (WorkerHello.expertName).
  concept @1 :Text;      # The concept it is asked for.
  weight @2 :Float32;    # Its weight in the composition (> 0, finite).
}

# How the experts' predictions are combined.
enum Strategy {
  dnd @0;             # Divide-and-Denoise: the fair allocation game (docs/method.md).
  averaging @1;       # Plain average of predictions.
  composable @2;      # Composable Diffusion (sum of conditional - unconditional).
  multidiffusion @3;  # MultiDiffusion with the given layout masks.
}

# Fairness notions imposed on the allocation; all false = none.
struct Fairness {
  proportional @0 :Bool;
  envyFree @1 :Bool;
  equitable @2 :Bool;
  rho @3 :Float64;       # Proportional share rho in (0, 1] (docs/method.md); 0 = default.
  epsilon @4 :Float64;   # Envy/equity tolerance epsilon, finite, >= 0.
}

# Everything that defines a job.
struct JobSpec {
  experts @0 :List(ExpertRef);     # At least one.
  strategy @1 :Strategy;
  fairness @2 :Fairness;
  utility @3 :Common.UtilityKind;
  steps @4 :UInt32;                # Number of denoising steps; 0 = coordinator default.
  seed @5 :UInt64;                 # Seed of the initial noise and any sampling noise.
  cfgScale @6 :Float32;            # Classifier-free guidance scale; 0 = coordinator default.
  eta @7 :Float64 = -1;            # DDIM eta (0 = deterministic); negative = coordinator default.
  beta @8 :Float64;                # KL weight beta (docs/method.md); 0 = default for the utility.
  gamma @9 :Float64 = -1;          # Guidance step gamma (0 = no guidance); negative = default.
  layout @10 :List(Common.Tensor); # Optional MultiDiffusion masks, one (H, W) float32 per expert.
  scheduleName @11 :Text;          # Optional noise schedule, e.g. "scaled_linear"; empty = default.
  timestepSpacing @12 :Text;       # Optional spacing, e.g. "leading"; empty = default.
  guidanceRegion @13 :GuidanceRegion;  # Superseded by guidanceOutside; read only when it is unset.
  # Weight w in [0, 1] of expert i's guidance gradient outside its own region: it is weighted by
  # Q_i + w (1 - Q_i) (docs/method.md decision 11). 0 = own region only, 1 = everywhere
  # (METHOD.md's sum of g_i). Negative = coordinator default.
  guidanceOutside @14 :Float64 = -1;
}

# The two ends of guidanceOutside, as sent by clients before it existed: own = 0, everywhere = 1.
enum GuidanceRegion {
  default @0;
  own @1;
  everywhere @2;
}

struct SubmitJob {
  clientToken @0 :Text;  # Idempotency key: resubmitting the same token returns the same job.
  spec @1 :JobSpec;
}

struct SubmitReply {
  jobId @0 :Text;
}

struct GetStatus {
  jobId @0 :Text;        # Empty = all jobs.
}

enum JobState {
  queued @0;
  running @1;
  succeeded @2;
  failed @3;
  cancelled @4;
}

struct JobStatus {
  jobId @0 :Text;
  state @1 :JobState;
  reason @2 :Text;                 # Why it failed or was cancelled.
  step @3 :UInt32;                 # Steps completed.
  totalSteps @4 :UInt32;
  submittedUnixMillis @5 :Int64;
  startedUnixMillis @6 :Int64;     # 0 = not started.
  finishedUnixMillis @7 :Int64;    # 0 = not finished.
  etaMillis @8 :Int64;             # Estimated time to finish, -1 = unknown.
}

struct StatusReply {
  jobs @0 :List(JobStatus);
}

# Subscribe to ProgressEvents of a job.
struct Watch {
  jobId @0 :Text;
}

struct ProgressEvent {
  jobId @0 :Text;
  state @1 :JobState;
  step @2 :UInt32;
  totalSteps @3 :UInt32;
  shares @4 :List(Float64);  # Each expert's share of the image so far, in JobSpec.experts order.
  message @5 :Text;
}

struct Cancel {
  jobId @0 :Text;
}

struct CancelReply {
  jobId @0 :Text;
  accepted @1 :Bool;     # False when the job had already finished.
  state @2 :JobState;    # The job's state after the request.
}

struct ListExperts {}

struct ExpertInfo {
  expertName @0 :Text;
  organisation @1 :Text;
  latentSpaceId @2 :Text;
  latentShape @3 :List(UInt32);
  concepts @4 :List(Text);
  utilities @5 :List(Common.UtilityKind);
  predictionType @6 :Common.PredictionType;
  alive @7 :Bool;
  lastSeenMillisAgo @8 :UInt64;
  guidanceScale @9 :Float32;       # WorkerHello.guidanceScale (0 = the coordinator's default).
}

struct ExpertList {
  experts @0 :List(ExpertInfo);
}

struct FetchResult {
  jobId @0 :Text;
}

struct ResultFile {
  name @0 :Text;   # A plain file name (no '/'), e.g. "image.png".
  data @1 :Data;
}

struct ResultFiles {
  jobId @0 :Text;
  files @1 :List(ResultFile);
}

# Every message a client sends.
struct ClientToCoordinator {
  protocolVersion @0 :UInt32;   # Must equal Common.protocolVersion.
  body :union {
    submitJob @1 :SubmitJob;
    getStatus @2 :GetStatus;
    watch @3 :Watch;
    cancel @4 :Cancel;
    listExperts @5 :ListExperts;
    fetchResult @6 :FetchResult;
  }
}

# Every message the coordinator sends to a client.
struct CoordinatorToClient {
  protocolVersion @0 :UInt32;   # Must equal Common.protocolVersion.
  body :union {
    submitReply @1 :SubmitReply;
    statusReply @2 :StatusReply;
    progressEvent @3 :ProgressEvent;
    cancelReply @4 :CancelReply;
    expertList @5 :ExpertList;
    resultFiles @6 :ResultFiles;
    error @7 :Common.Error;
  }
}
