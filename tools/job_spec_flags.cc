// `dnd submit`'s job flags -> protocol::JobSpec (job_spec_flags.h).
#include "tools/job_spec_flags.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>
#include <png.h>

namespace dnd::tools {
namespace {

std::string Num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Ok when `value` is finite and within the bounds (open or closed as named).
Status CheckNumber(const char* flag, double value, double lo, bool lo_open, double hi) {
  const bool ok = std::isfinite(value) && (lo_open ? value > lo : value >= lo) && value <= hi;
  if (ok) return OkStatus();
  const std::string range = std::string(lo_open ? "(" : "[") + Num(lo) + ", " + Num(hi) + "]";
  return InvalidArgumentError(std::string(flag) + " " + Num(value) + " is not a finite number in " +
                              range);
}

std::vector<std::string> SplitCommas(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& item : items) {
    std::stringstream in(item);
    std::string part;
    while (std::getline(in, part, ',')) {
      if (!part.empty()) out.push_back(part);
    }
  }
  return out;
}

}  // namespace

void AddJobSpecFlags(CLI::App& command, JobSpecFlags& flags) {
  command
      .add_option("--expert", flags.experts,
                  "EXPERT:CONCEPT, once per expert (e.g. --expert footwear:sneaker --expert "
                  "rest:bag); see `dnd experts`")
      ->required()
      ->allow_extra_args(false);
  command.add_option("--strategy", flags.strategy, "dnd | averaging | composable | multidiffusion")
      ->capture_default_str();
  command.add_option("--layout", flags.layout,
                     "multidiffusion only: 'strips' (equal vertical strips, the default) or one "
                     "grayscale PNG mask per expert, in --expert order");
  command
      .add_option("--fairness", flags.fairness,
                  "proportional | envy-free | equitable | none, comma-separated "
                  "(default proportional)")
      ->delimiter(',');
  command.add_option("--rho", flags.rho, "proportional share: each expert gets >= rho/n, (0, 1]");
  command.add_option("--epsilon", flags.epsilon, "equitable tolerance, [0, 1]");
  command.add_option("--utility", flags.utility,
                     "score | attention (default: attention when every named expert reports it, "
                     "else score)");
  command.add_option("--steps", flags.steps, "denoising steps (default 50)");
  command.add_option("--seed", flags.seed, "seed of the initial noise (default 0)");
  command.add_option("--cfg", flags.cfg, "classifier-free guidance scale (default: the coordinator's, 5)");
  command.add_option("--eta", flags.eta, "DDIM stochasticity in [0, 1] (default 0.015)");
  command.add_option("--beta", flags.beta,
                     "KL weight of the allocation (default by utility: score 0.01, attention "
                     "0.0003)");
  command.add_option("--gamma", flags.gamma, "guidance step, >= 0 (default 0.015)");
  command.add_option("--guidance-outside", flags.guidance_outside,
                     "weight in [0, 1] of each expert's guidance gradient outside its own region "
                     "(0: only its region, 1: everywhere; default: the coordinator's, 0.5)");
  command.add_option("--guidance-region", flags.guidance_region,
                     "shorthand: 'own' = --guidance-outside 0, 'everywhere' = 1 (METHOD.md's "
                     "formula literally)");
}

StatusOr<protocol::ExpertRef> ParseExpertRef(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size() ||
      text.find(':', colon + 1) != std::string_view::npos) {
    return InvalidArgumentError("--expert '" + std::string(text) +
                                "' is not EXPERT:CONCEPT (e.g. footwear:sneaker; see `dnd "
                                "experts` for the names)");
  }
  protocol::ExpertRef ref;
  ref.expert_name = std::string(text.substr(0, colon));
  ref.concept_name = std::string(text.substr(colon + 1));
  ref.weight = 1.0f;
  return ref;
}

StatusOr<protocol::Strategy> ParseStrategy(std::string_view text) {
  if (text == "dnd") return protocol::Strategy::kDnd;
  if (text == "averaging") return protocol::Strategy::kAveraging;
  if (text == "composable") return protocol::Strategy::kComposable;
  if (text == "multidiffusion" || text == "multi-diffusion") {
    return protocol::Strategy::kMultiDiffusion;
  }
  return InvalidArgumentError("--strategy '" + std::string(text) +
                              "' is unknown; expected dnd, averaging, composable or "
                              "multidiffusion");
}

StatusOr<protocol::UtilityKind> ParseUtility(std::string_view text) {
  if (text == "score") return protocol::UtilityKind::kScore;
  if (text == "attention") return protocol::UtilityKind::kAttention;
  return InvalidArgumentError("--utility '" + std::string(text) +
                              "' is unknown; expected score or attention");
}

protocol::UtilityKind DefaultUtility(const protocol::JobSpec& spec,
                                     const std::vector<protocol::ExpertInfo>& registry) {
  for (const protocol::ExpertRef& ref : spec.experts) {
    const auto listed = std::find_if(registry.begin(), registry.end(), [&](const auto& info) {
      return info.expert_name == ref.expert_name;
    });
    if (listed == registry.end() ||
        std::find(listed->utilities.begin(), listed->utilities.end(),
                  protocol::UtilityKind::kAttention) == listed->utilities.end()) {
      return protocol::UtilityKind::kScore;
    }
  }
  return spec.experts.empty() ? protocol::UtilityKind::kScore : protocol::UtilityKind::kAttention;
}

StatusOr<protocol::Fairness> ParseFairness(const std::vector<std::string>& names,
                                           std::optional<double> rho,
                                           std::optional<double> epsilon) {
  protocol::Fairness fairness;
  const std::vector<std::string> parts = SplitCommas(names);
  bool none = false;
  for (const std::string& name : parts) {
    if (name == "proportional") {
      fairness.proportional = true;
    } else if (name == "envy-free" || name == "envy_free" || name == "envyfree") {
      fairness.envy_free = true;
    } else if (name == "equitable") {
      fairness.equitable = true;
    } else if (name == "none") {
      none = true;
    } else {
      return InvalidArgumentError("--fairness '" + name +
                                  "' is unknown; expected proportional, envy-free, equitable or "
                                  "none");
    }
  }
  if (none && parts.size() > 1) {
    return InvalidArgumentError("--fairness none cannot be combined with other notions");
  }
  if (parts.empty()) fairness.proportional = true;
  if (rho) {
    DND_RETURN_IF_ERROR(CheckNumber("--rho", *rho, 0, /*lo_open=*/true, 1));
    fairness.rho = *rho;
  }
  if (epsilon) {
    DND_RETURN_IF_ERROR(CheckNumber("--epsilon", *epsilon, 0, /*lo_open=*/false, 1));
    fairness.epsilon = *epsilon;
  }
  return fairness;
}

StatusOr<protocol::Tensor> ReadLayoutMask(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    return NotFoundError("layout mask '" + path + "' does not exist");
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    return InvalidArgumentError("layout mask '" + path +
                                "' is not a readable PNG: " + image.message);
  }
  image.format = PNG_FORMAT_GRAY;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) {
    const std::string message = image.message;
    png_image_free(&image);
    return InvalidArgumentError("layout mask '" + path + "' could not be decoded: " + message);
  }
  std::vector<float> values(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) values[i] = static_cast<float>(pixels[i]) / 255.0f;
  return protocol::MakeFloatTensor({image.height, image.width}, std::move(values));
}

StatusOr<protocol::JobSpec> BuildJobSpec(const JobSpecFlags& flags) {
  protocol::JobSpec spec;
  if (flags.experts.empty()) {
    return InvalidArgumentError("name at least one expert: --expert EXPERT:CONCEPT");
  }
  std::set<std::string> seen;
  for (const std::string& text : flags.experts) {
    DND_ASSIGN_OR_RETURN(protocol::ExpertRef ref, ParseExpertRef(text));
    if (!seen.insert(ref.expert_name).second) {
      return InvalidArgumentError("expert '" + ref.expert_name +
                                  "' is named twice; each expert draws one concept per job");
    }
    spec.experts.push_back(std::move(ref));
  }
  DND_ASSIGN_OR_RETURN(spec.strategy, ParseStrategy(flags.strategy));
  DND_ASSIGN_OR_RETURN(spec.utility, ParseUtility(flags.utility.value_or("score")));
  DND_ASSIGN_OR_RETURN(spec.fairness, ParseFairness(flags.fairness, flags.rho, flags.epsilon));

  // Unset = the coordinator's default: 0 for steps, cfg, beta, rho; negative for eta and gamma
  // (0 is a meaningful value of both).
  spec.steps = 0;
  spec.cfg_scale = 0.0f;
  spec.beta = 0.0;
  spec.eta = -1.0;
  spec.gamma = -1.0;
  spec.seed = flags.seed.value_or(0);
  if (flags.steps) {
    if (*flags.steps <= 0 || *flags.steps > 1000) {
      return InvalidArgumentError("--steps " + std::to_string(*flags.steps) +
                                  " is out of range; expected 1 to 1000");
    }
    spec.steps = static_cast<uint32_t>(*flags.steps);
  }
  if (flags.cfg) {
    DND_RETURN_IF_ERROR(CheckNumber("--cfg", *flags.cfg, 0, /*lo_open=*/true, 100));
    spec.cfg_scale = static_cast<float>(*flags.cfg);
  }
  if (flags.eta) {
    DND_RETURN_IF_ERROR(CheckNumber("--eta", *flags.eta, 0, /*lo_open=*/false, 1));
    spec.eta = *flags.eta;
  }
  if (flags.beta) {
    DND_RETURN_IF_ERROR(CheckNumber("--beta", *flags.beta, 0, /*lo_open=*/true, 1e6));
    spec.beta = *flags.beta;
  }
  if (flags.gamma) {
    DND_RETURN_IF_ERROR(CheckNumber("--gamma", *flags.gamma, 0, /*lo_open=*/false, 10));
    spec.gamma = *flags.gamma;
  }
  if (flags.guidance_outside && flags.guidance_region) {
    return InvalidArgumentError(
        "--guidance-outside and --guidance-region set the same thing; give one of them");
  }
  if (flags.guidance_outside) {
    DND_RETURN_IF_ERROR(
        CheckNumber("--guidance-outside", *flags.guidance_outside, 0, /*lo_open=*/false, 1));
    spec.guidance_outside = *flags.guidance_outside;
  }
  if (flags.guidance_region) {
    if (*flags.guidance_region == "own") {
      spec.guidance_outside = 0.0;
    } else if (*flags.guidance_region == "everywhere") {
      spec.guidance_outside = 1.0;
    } else {
      return InvalidArgumentError("--guidance-region '" + *flags.guidance_region +
                                  "' is not one of: own, everywhere");
    }
  }

  const bool strips = flags.layout.size() == 1 && flags.layout[0] == "strips";
  if (!flags.layout.empty()) {
    if (spec.strategy != protocol::Strategy::kMultiDiffusion) {
      return InvalidArgumentError("--layout is only used by --strategy multidiffusion");
    }
    if (!strips) {
      if (flags.layout.size() != spec.experts.size()) {
        return InvalidArgumentError("--layout has " + std::to_string(flags.layout.size()) +
                                    " masks for " + std::to_string(spec.experts.size()) +
                                    " experts; give one PNG per --expert, or 'strips'");
      }
      for (const std::string& path : flags.layout) {
        DND_ASSIGN_OR_RETURN(protocol::Tensor mask, ReadLayoutMask(path));
        spec.layout.push_back(std::move(mask));
      }
    }
  }
  return spec;
}

}  // namespace dnd::tools
