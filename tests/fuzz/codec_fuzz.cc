// libFuzzer target for the protocol decoders (protocol/codec.h): every input is decoded as each of
// the four directions. Properties: no crash, no sanitizer report, no exception escaping, errors
// only with the documented codes, and an accepted message re-encodes to one that decodes equal.
// Seeds: an empty corpus directory (or $DND_FUZZ_SEED_DIR) receives 13 valid messages first.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "protocol/codec.h"
#include "protocol/messages.h"

namespace dnd::protocol {
namespace {

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "codec_fuzz: property violated: %s\n", what);
    std::abort();
  }
}

bool DocumentedCode(StatusCode c) {
  return c == StatusCode::kDataLoss || c == StatusCode::kInvalidArgument ||
         c == StatusCode::kResourceExhausted || c == StatusCode::kFailedPrecondition;
}

template <typename Variant, typename DecodeFn>
void Check(std::span<const uint8_t> bytes, DecodeFn decode) {
  auto decoded = decode(bytes);
  if (!decoded.ok()) {
    Require(DocumentedCode(decoded.status().code()), "undocumented error code");
    return;
  }
  const std::string again = Encode(*decoded);
  auto redecoded = decode(AsBytes(again));
  Require(redecoded.ok(), "re-encoded message does not decode");
  Require(*redecoded == *decoded, "re-encoded message decodes to another value");
}

void WriteSeeds(const std::string& dir) {
  Tensor latent = MakeFloatTensor({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor map = MakeFloatTensor({2, 2}, {0.25f, 0.25f, 0.25f, 0.25f});
  StepRequest request;
  request.job_id = "j";
  request.latent = latent;
  StepReply reply{"j", 1, 0, latent, latent, map, 5};
  WorkerHello hello;
  hello.expert_name = "e";
  hello.latent_shape = {2, 2, 2};
  hello.utilities = {UtilityKind::kScore};
  SubmitJob submit;
  submit.spec.experts = {{"e", "c", 1.0f}};
  submit.spec.layout = {map};
  std::vector<std::string> seeds = {
      Encode(WorkerToCoordinator(hello)),
      Encode(WorkerToCoordinator(reply)),
      Encode(WorkerToCoordinator(GuidanceReply{"j", 0, 0, latent, 1})),
      Encode(WorkerToCoordinator(ErrorReply{StatusCode::kInternal, "m", "j", 1, 2})),
      Encode(CoordinatorToWorker(request)),
      Encode(CoordinatorToWorker(GuidanceRequest{"j", 0, 0, map})),
      Encode(CoordinatorToWorker(HelloAck{true, "", 1000})),
      Encode(ClientToCoordinator(submit)),
      Encode(ClientToCoordinator(Watch{"j"})),
      Encode(CoordinatorToClient(
          StatusReply{{JobStatus{"j", JobState::kRunning, "", 1, 2, 3, 4, 5, 6}}})),
      Encode(CoordinatorToClient(ProgressEvent{"j", JobState::kRunning, 1, 2, {0.5, 0.5}, "m"})),
      Encode(CoordinatorToClient(ResultFiles{"j", {ResultFile{"a.png", {1, 2, 3}}}})),
      Encode(CoordinatorToClient(ExpertList{{ExpertInfo{"e",
                                                        "o",
                                                        "s",
                                                        {2, 2, 2},
                                                        {"c"},
                                                        {UtilityKind::kScore},
                                                        PredictionType::kEpsilon,
                                                        true,
                                                        1}}})),
  };
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream(dir + "/seed_" + std::to_string(i), std::ios::binary) << seeds[i];
  }
}

}  // namespace
}  // namespace dnd::protocol

// Seeds the corpus: into $DND_FUZZ_SEED_DIR when set, else into every corpus directory on the
// command line that is still empty (so `make fuzz` starts from valid messages).
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (const char* dir = std::getenv("DND_FUZZ_SEED_DIR")) {
    dnd::protocol::WriteSeeds(dir);
    return 0;
  }
  for (int i = 1; i < *argc; ++i) {
    const std::filesystem::path arg((*argv)[i]);
    std::error_code ec;
    if ((*argv)[i][0] != '-' && std::filesystem::is_directory(arg, ec) &&
        std::filesystem::is_empty(arg, ec)) {
      dnd::protocol::WriteSeeds(arg.string());
    }
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dnd::protocol;
  const std::span<const uint8_t> bytes(data, size);
  Check<WorkerToCoordinator>(bytes, DecodeWorkerToCoordinator);
  Check<CoordinatorToWorker>(bytes, DecodeCoordinatorToWorker);
  Check<ClientToCoordinator>(bytes, DecodeClientToCoordinator);
  Check<CoordinatorToClient>(bytes, DecodeCoordinatorToClient);
  return 0;
}
