// `dnd submit`'s job flags and their translation into a protocol::JobSpec: expert:concept pairs,
// strategy, layout masks, fairness notions, utility and the sampler's numbers. Everything that can
// be checked without the coordinator is checked here (InvalidArgument, exit code 64); what needs
// the registry (unknown expert or concept, latent spaces) is the coordinator's to say.
#ifndef DND_TOOLS_JOB_SPEC_FLAGS_H_
#define DND_TOOLS_JOB_SPEC_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/messages.h"
#include "protocol/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace dnd::tools {

// The raw flag values of `dnd submit`. Unset optionals mean "the coordinator's default".
struct JobSpecFlags {
  std::vector<std::string> experts;   // "EXPERT:CONCEPT", one per --expert
  std::string strategy = "dnd";       // dnd | averaging | composable | multidiffusion
  std::vector<std::string> layout;    // "strips" or one grayscale PNG mask per expert
  std::vector<std::string> fairness;  // proportional | envy-free | equitable | none (a list)
  std::optional<std::string> utility;  // score | attention; unset: see DefaultUtility
  std::optional<double> rho;
  std::optional<double> epsilon;
  std::optional<int64_t> steps;
  std::optional<uint64_t> seed;
  std::optional<double> cfg;
  std::optional<double> eta;
  std::optional<double> beta;
  std::optional<double> gamma;
  std::optional<double> guidance_outside;      // [0, 1]
  std::optional<std::string> guidance_region;  // own | everywhere: guidance_outside 0 | 1
};

// Adds --expert, --strategy, --layout, --fairness, --rho, --epsilon, --utility, --steps, --seed,
// --cfg, --eta, --beta, --gamma, --guidance-outside, --guidance-region to `command`, writing into
// `flags` (which must outlive parsing).
void AddJobSpecFlags(CLI::App& command, JobSpecFlags& flags);

// "footwear:sneaker" -> {expert "footwear", concept "sneaker", weight 1}. InvalidArgument when the
// colon is missing or either side is empty.
StatusOr<protocol::ExpertRef> ParseExpertRef(std::string_view text);

// "dnd", "averaging", "composable", "multidiffusion" (also "multi-diffusion").
StatusOr<protocol::Strategy> ParseStrategy(std::string_view text);
// "score", "attention".
StatusOr<protocol::UtilityKind> ParseUtility(std::string_view text);

// The notions named in `names` (each may itself be a comma-separated list); "none" alone means no
// constraint; an empty list means the default, proportional. rho (share of 1/n, in (0, 1]) and
// epsilon (equitable tolerance, in [0, 1]) are checked when given; unset rho = the coordinator's
// default. InvalidArgument for an unknown name, "none" mixed with others, or a number out of range.
StatusOr<protocol::Fairness> ParseFairness(const std::vector<std::string>& names,
                                           std::optional<double> rho,
                                           std::optional<double> epsilon);

// Reads a grayscale (or colour, converted) 8-bit PNG as an (H, W) float32 mask with values in
// [0, 1] (pixel / 255). NotFound for a missing file, InvalidArgument for a file that is not a PNG.
StatusOr<protocol::Tensor> ReadLayoutMask(const std::string& path);

// The utility a job gets when --utility is not given: attention when every expert the spec names
// is listed in `registry` (the coordinator's `dnd experts` list) as reporting it, else score
// (the one every CFG expert can report). Attention is the better map wherever the experts have it
// (docs/results.md: 46% against 5% of correct pair images on the trained experts).
protocol::UtilityKind DefaultUtility(const protocol::JobSpec& spec,
                                     const std::vector<protocol::ExpertInfo>& registry);

// The whole JobSpec. Fields left unset get the protocol's "use the default" values (steps 0,
// cfg 0, beta 0, rho 0, eta -1, gamma -1); an unset utility is score here (`dnd submit` replaces
// it with DefaultUtility, which needs the coordinator's expert list). Errors
// (InvalidArgument, NotFound for a layout file): no expert; a bad EXPERT:CONCEPT; the same expert
// twice; steps <= 0 or > 1000; a non-finite number; cfg <= 0; eta outside [0, 1]; beta <= 0; gamma
// < 0; a layout with another strategy than multidiffusion or with a mask count other than the
// number of experts.
StatusOr<protocol::JobSpec> BuildJobSpec(const JobSpecFlags& flags);

}  // namespace dnd::tools

#endif  // DND_TOOLS_JOB_SPEC_FLAGS_H_
