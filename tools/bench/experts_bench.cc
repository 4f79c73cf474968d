// The experts' quality gate (experts_bench.h): DDIM + CFG sampling through Expert::Step.
#include "tools/bench/experts_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "coordinator/method/rng.h"
#include "coordinator/method/schedule.h"
#include "tools/bench/bench_images.h"
#include "worker/experts/fashion_mnist.h"
#include "worker/models/canvases.h"

namespace dnd::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string Fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, v);
  return buffer;
}

method::PredictionType ToMethod(experts::PredictionType type) {
  switch (type) {
    case experts::PredictionType::kEpsilon:
      return method::PredictionType::kEpsilon;
    case experts::PredictionType::kSample:
      return method::PredictionType::kSample;
    case experts::PredictionType::kV:
      return method::PredictionType::kVPrediction;
  }
  return method::PredictionType::kEpsilon;
}

// Samples `count` latents of `concept_name` from `expert`, samples [first, first + count) of the
// seed's streams, with DDIM (eta) and CFG w over `schedule`.
StatusOr<std::vector<float>> SampleChunk(experts::Expert& expert, const std::string& concept_name,
                                         const method::NoiseSchedule& schedule,
                                         const std::vector<int>& timesteps,
                                         const ExpertsBenchOptions& options, int first, int count) {
  const experts::ExpertInfo& info = expert.Describe();
  const size_t numel = info.latent.NumValues();
  const method::PredictionType type = ToMethod(info.prediction_type);
  const method::NormalGenerator generator(options.seed);
  std::vector<float> x(numel * count);
  for (int s = 0; s < count; ++s) {
    generator.Fill(static_cast<uint32_t>(first + s), method::NoisePurpose::kInitialLatent, 0,
                   std::span<float>(x).subspan(numel * s, numel));
  }
  std::vector<float> guided(numel), mu(numel), z(numel);
  const int num_steps = static_cast<int>(timesteps.size());
  for (int k = 0; k < num_steps; ++k) {
    const int t = timesteps[k];
    const int t_prev = schedule.PrevTimestep(t, num_steps);
    DND_ASSIGN_OR_RETURN(method::StepCoefficients coef,
                         schedule.Step(method::SamplerKind::kDdim, t, t_prev, options.eta));
    std::vector<experts::StepInput> inputs(count);
    for (int s = 0; s < count; ++s) {
      inputs[s].latent = std::span<const float>(x).subspan(numel * s, numel);
      inputs[s].timestep = t;
      inputs[s].alpha_cumprod = schedule.AlphaCumprod(t);
      inputs[s].concept_name = concept_name;
      inputs[s].utility = experts::UtilityKind::kScore;
      inputs[s].cfg_scale = options.cfg;
    }
    std::vector<StatusOr<experts::StepOutput>> outputs = expert.Step(inputs);
    for (int s = 0; s < count; ++s) {
      if (!outputs[s].ok()) {
        return outputs[s].status().WithContext(info.name + ":" + concept_name + " step " +
                                               std::to_string(k));
      }
      const experts::StepOutput& out = *outputs[s];
      for (size_t i = 0; i < numel; ++i) {
        guided[i] =
            static_cast<float>(out.prediction_uncond[i] +
                               options.cfg * (out.prediction_cond[i] - out.prediction_uncond[i]));
      }
      std::span<float> xs = std::span<float>(x).subspan(numel * s, numel);
      DND_RETURN_IF_ERROR(method::ProposalMean(schedule.config(), type, coef, xs, guided, mu));
      if (coef.noise_std > 0) {
        generator.Fill(static_cast<uint32_t>(first + s), method::NoisePurpose::kStepNoise,
                       static_cast<uint32_t>(k), z);
        for (size_t i = 0; i < numel; ++i)
          xs[i] = mu[i] + static_cast<float>(coef.noise_std) * z[i];
      } else {
        std::copy(mu.begin(), mu.end(), xs.begin());
      }
    }
  }
  return x;
}

}  // namespace

double GateThreshold(double real_recall) {
  return real_recall < 0.90 ? std::min(0.85, real_recall - 0.05) : 0.85;
}

StatusOr<ExpertsReport> RunExpertsBench(const ExpertsBenchOptions& options,
                                        const std::vector<experts::Expert*>& experts,
                                        const LatentDecoder& decode, Judge& judge) {
  if (options.samples < 1 || options.steps < 1 || options.batch < 1) {
    return InvalidArgumentError("samples, steps and batch must be at least 1");
  }
  if (!(options.cfg >= 0) || !(options.eta >= 0)) {
    return InvalidArgumentError("cfg and eta must be non-negative");
  }
  const auto start = Clock::now();
  ExpertsReport report;
  report.domain = options.domain;
  report.judge = judge.Describe();
  report.options = options;
  using Recall = std::array<double, kJudgeClasses>;
  DND_ASSIGN_OR_RETURN(Recall recall, judge.RealRecall(options.data_dir));
  // The coordinator's default schedule (Stable Diffusion's scaled_linear, leading spacing): the
  // neural experts were trained on its timesteps; the exact experts read alpha_cumprod.
  DND_ASSIGN_OR_RETURN(method::NoiseSchedule schedule,
                       method::NoiseSchedule::Create(method::ScheduleConfig{}));
  DND_ASSIGN_OR_RETURN(std::vector<int> timesteps, schedule.Timesteps(options.steps));

  for (experts::Expert* expert : experts) {
    const experts::ExpertInfo& info = expert->Describe();
    for (const std::string& concept_name : info.concepts) {
      const auto concept_start = Clock::now();
      ConceptResult result;
      result.expert = info.name;
      result.concept_name = concept_name;
      DND_ASSIGN_OR_RETURN(result.label, experts::FashionMnistLabel(concept_name));
      result.samples = options.samples;
      std::vector<float> latents;
      for (int first = 0; first < options.samples; first += options.batch) {
        const int count = std::min(options.batch, options.samples - first);
        DND_ASSIGN_OR_RETURN(
            std::vector<float> chunk,
            SampleChunk(*expert, concept_name, schedule, timesteps, options, first, count));
        latents.insert(latents.end(), chunk.begin(), chunk.end());
      }
      DND_ASSIGN_OR_RETURN(std::vector<float> canvases, decode(latents));
      if (canvases.size() != static_cast<size_t>(options.samples) * models::kCanvasPixels) {
        return InternalError("the decoder returned " + std::to_string(canvases.size()) +
                             " values for " + std::to_string(options.samples) + " latents");
      }
      DND_ASSIGN_OR_RETURN(auto detected, judge.Detect(canvases));
      for (int s = 0; s < options.samples; ++s) {
        const std::vector<int>& d = detected[s];
        const bool has = std::find(d.begin(), d.end(), result.label) != d.end();
        result.contains += has ? 1 : 0;
        result.exact += has && d.size() == 1 ? 1 : 0;
        for (int label : d) {
          if (label >= 0 && label < kJudgeClasses) ++result.detected_counts[label];
        }
        result.canvases.emplace_back(canvases.begin() + s * models::kCanvasPixels,
                                     canvases.begin() + (s + 1) * models::kCanvasPixels);
      }
      result.real_recall = recall[result.label];
      result.required = GateThreshold(result.real_recall);
      result.passed = result.contains >= result.required * result.samples - 1e-9;
      result.seconds = std::chrono::duration<double>(Clock::now() - concept_start).count();
      if (options.progress != nullptr) {
        *options.progress << "bench experts: " << info.name << ":" << concept_name << " contains "
                          << result.contains << "/" << result.samples << " (need "
                          << Fixed(100 * result.required, 1) << "%), "
                          << (result.passed ? "PASS" : "FAIL") << ", " << Fixed(result.seconds, 1)
                          << " s" << std::endl;
      }
      report.concepts.push_back(std::move(result));
    }
  }
  report.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

nlohmann::json ExpertsReportJson(const ExpertsReport& report) {
  nlohmann::json concepts = nlohmann::json::array();
  bool all_passed = true;
  const auto names = experts::FashionMnistClassNames();
  for (const ConceptResult& c : report.concepts) {
    nlohmann::json detected = nlohmann::json::object();
    for (int l = 0; l < kJudgeClasses; ++l) {
      if (c.detected_counts[l] > 0) detected[std::string(names[l])] = c.detected_counts[l];
    }
    all_passed = all_passed && c.passed;
    concepts.push_back({{"expert", c.expert},
                        {"concept", c.concept_name},
                        {"samples", c.samples},
                        {"contains", c.contains},
                        {"exact", c.exact},
                        {"real_recall", c.real_recall},
                        {"contains_rate", c.samples > 0 ? double(c.contains) / c.samples : 0.0},
                        {"exact_rate", c.samples > 0 ? double(c.exact) / c.samples : 0.0},
                        {"required", c.required},
                        {"passed", c.passed},
                        {"detected", detected},
                        {"seconds", c.seconds}});
  }
  return {{"benchmark", "dnd bench experts"},
          {"domain", report.domain},
          {"judge", report.judge},
          {"samples", report.options.samples},
          {"steps", report.options.steps},
          {"cfg", report.options.cfg},
          {"eta", report.options.eta},
          {"seed", report.options.seed},
          {"wall_seconds", report.wall_seconds},
          {"all_passed", all_passed},
          {"concepts", concepts}};
}

std::string ExpertsReportMarkdown(const ExpertsReport& report) {
  std::string out =
      "| expert | concept | contains | exact | real recall | required | gate | most detected "
      "otherwise |\n|---|---|---|---|---|---|---|---|\n";
  const auto names = experts::FashionMnistClassNames();
  for (const ConceptResult& c : report.concepts) {
    int other = -1;
    for (int l = 0; l < kJudgeClasses; ++l) {
      if (l != c.label && c.detected_counts[l] > 0 &&
          (other < 0 || c.detected_counts[l] > c.detected_counts[other])) {
        other = l;
      }
    }
    out +=
        "| " + c.expert + " | " + c.concept_name + " | " + std::to_string(c.contains) + "/" +
        std::to_string(c.samples) + " (" + Fixed(100.0 * c.contains / c.samples, 1) + "%) | " +
        std::to_string(c.exact) + "/" + std::to_string(c.samples) + " | " +
        Fixed(100 * c.real_recall, 1) + "% | " + Fixed(100 * c.required, 1) + "% | " +
        (c.passed ? "pass" : "**miss**") + " | " +
        (other < 0 ? std::string("–")
                   : std::string(names[other]) + " " + std::to_string(c.detected_counts[other])) +
        " |\n";
  }
  return out;
}

StatusOr<std::vector<std::string>> WriteExpertsGrids(const ExpertsReport& report,
                                                     const std::string& dir, int per_row) {
  std::vector<std::string> written;
  std::vector<std::string> order;
  for (const ConceptResult& c : report.concepts) {
    if (std::find(order.begin(), order.end(), c.expert) == order.end()) order.push_back(c.expert);
  }
  const std::vector<float> empty_cell(models::kCanvasPixels, -1.0f);
  for (const std::string& expert : order) {
    std::vector<std::vector<float>> cells;
    int rows = 0;
    for (const ConceptResult& c : report.concepts) {
      if (c.expert != expert) continue;
      ++rows;
      for (int s = 0; s < per_row; ++s) {
        cells.push_back(s < static_cast<int>(c.canvases.size()) ? c.canvases[s] : empty_cell);
      }
    }
    const std::string file =
        (std::filesystem::path(dir) / ("bench_experts_" + report.domain + "_" + expert + ".png"))
            .string();
    DND_RETURN_IF_ERROR(WriteCanvasGrid(cells, rows, per_row, 1, file));
    written.push_back(file);
  }
  return written;
}

}  // namespace dnd::bench
