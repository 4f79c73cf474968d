// The composition benchmark's run, report and grids (compose_bench.h).
#include "tools/bench/compose_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "tools/bench/bench_images.h"
#include "tools/bench/federation.h"
#include "tools/job_spec_flags.h"
#include "worker/experts/fashion_mnist.h"
#include "worker/models/canvases.h"

namespace dnd::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string Fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, v);
  return buffer;
}

void Say(const ComposeBenchOptions& options, const std::string& line) {
  if (options.progress != nullptr) *options.progress << "bench compose: " << line << std::endl;
}

const char* WireStrategyName(protocol::Strategy s) {
  switch (s) {
    case protocol::Strategy::kDnd:
      return "dnd";
    case protocol::Strategy::kAveraging:
      return "averaging";
    case protocol::Strategy::kComposable:
      return "composable";
    case protocol::Strategy::kMultiDiffusion:
      return "multidiffusion";
  }
  return "dnd";
}

StatusOr<std::vector<int>> Labels(const Prompt& prompt) {
  std::vector<int> labels;
  for (const std::string& c : prompt.classes) {
    DND_ASSIGN_OR_RETURN(int label, experts::FashionMnistLabel(c));
    labels.push_back(label);
  }
  return labels;
}

// One strategy on one suite with its overrides: a cell of a batch of jobs.
struct Cell {
  const Suite* suite = nullptr;
  StrategySpec strategy;
  SpecOverrides overrides;
  std::string label;  // for progress lines
};

// Runs every cell's jobs (every prompt and seed of its suite) together, so that the coordinator
// has many jobs in flight and the workers batch; then decodes and judges each cell's images.
// Returns one run per cell, in order. Tally::wall_seconds is the whole batch's wall time;
// Tally::mean_job_seconds each cell's mean job wall time (record.json).
StatusOr<std::vector<StrategyRun>> RunCells(const ComposeBenchOptions& options,
                                            const SuiteFile& file, const std::vector<Cell>& cells,
                                            EmbeddedFederation& federation,
                                            const LatentDecoder& decode, Judge& judge,
                                            const std::string& label) {
  std::vector<StrategyRun> runs(cells.size());
  std::vector<protocol::JobSpec> specs;
  std::vector<std::pair<size_t, size_t>> owner;  // spec -> (cell, image)
  for (size_t c = 0; c < cells.size(); ++c) {
    const Suite& suite = *cells[c].suite;
    runs[c].name = cells[c].strategy.name;
    for (size_t p = 0; p < suite.prompts.size(); ++p) {
      DND_ASSIGN_OR_RETURN(std::vector<int> labels, Labels(suite.prompts[p]));
      for (uint64_t seed : suite.prompts[p].seeds) {
        DND_ASSIGN_OR_RETURN(
            protocol::JobSpec spec,
            BuildComposeSpec(file, suite.prompts[p], seed, cells[c].strategy, cells[c].overrides));
        specs.push_back(std::move(spec));
        owner.emplace_back(c, runs[c].images.size());
        JudgedImage image;
        image.prompt = static_cast<int>(p);
        image.seed = seed;
        image.requested = labels;
        runs[c].images.push_back(std::move(image));
      }
    }
  }
  // Interleave the cells (job k of every cell, then job k + 1): every strategy progresses at
  // the same pace, and a run stopped early has comparable partial results.
  std::vector<size_t> order(specs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return owner[a].second < owner[b].second; });
  std::vector<protocol::JobSpec> ordered;
  for (size_t i : order) ordered.push_back(specs[i]);

  const auto start = Clock::now();
  auto last_report = start;
  DND_ASSIGN_OR_RETURN(std::vector<JobOutcome> ordered_outcomes,
                       federation.RunJobs(ordered, [&](int done, int total) {
                         if (done == total || SecondsSince(last_report) >= 15) {
                           last_report = Clock::now();
                           Say(options, label + ": " + std::to_string(done) + "/" +
                                            std::to_string(total) + " jobs, " +
                                            Fixed(SecondsSince(start), 1) + " s");
                         }
                       }));
  const double wall = SecondsSince(start);
  std::vector<JobOutcome> outcomes(specs.size());
  for (size_t k = 0; k < order.size(); ++k) outcomes[order[k]] = std::move(ordered_outcomes[k]);

  std::vector<std::vector<const JobOutcome*>> cell_outcomes(cells.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    auto& list = cell_outcomes[owner[i].first];
    list.resize(runs[owner[i].first].images.size(), nullptr);
    list[owner[i].second] = &outcomes[i];
  }
  for (size_t c = 0; c < cells.size(); ++c) {
    StrategyRun& run = runs[c];
    // Decode the successful latents together, then judge them together.
    std::vector<float> latents;
    std::vector<size_t> decoded;
    size_t latent_size = 0;
    double job_ms = 0;
    for (size_t i = 0; i < run.images.size(); ++i) {
      const JobOutcome& outcome = *cell_outcomes[c][i];
      JudgedImage& image = run.images[i];
      image.job_id = outcome.job_id;
      image.shares = outcome.shares;
      job_ms += outcome.wall_ms;
      if (!outcome.succeeded) {
        image.failed = true;
        image.error = outcome.reason;
        continue;
      }
      if (latent_size == 0) latent_size = outcome.latent.size();
      if (outcome.latent.size() != latent_size || latent_size == 0) {
        image.failed = true;
        image.error = "final latent of " + std::to_string(outcome.latent.size()) + " values";
        continue;
      }
      latents.insert(latents.end(), outcome.latent.begin(), outcome.latent.end());
      decoded.push_back(i);
    }
    run.canvases.assign(run.images.size(), {});
    if (!decoded.empty()) {
      DND_ASSIGN_OR_RETURN(std::vector<float> canvases, decode(latents));
      if (canvases.size() != decoded.size() * models::kCanvasPixels) {
        return InternalError("the decoder returned " + std::to_string(canvases.size()) +
                             " values for " + std::to_string(decoded.size()) + " latents");
      }
      DND_ASSIGN_OR_RETURN(auto detected, judge.Detect(canvases));
      for (size_t k = 0; k < decoded.size(); ++k) {
        const size_t i = decoded[k];
        run.images[i].detected = detected[k];
        run.canvases[i].assign(canvases.begin() + k * models::kCanvasPixels,
                               canvases.begin() + (k + 1) * models::kCanvasPixels);
      }
    }
    run.tally = Count(run.images);
    run.tally.wall_seconds = wall;
    run.tally.mean_job_seconds =
        run.images.empty() ? 0.0 : job_ms / 1000.0 / static_cast<double>(run.images.size());
    Say(options, cells[c].label + ": " + Fixed(run.tally.PercentImages(), 1) + "% images, " +
                     Fixed(run.tally.PercentPrompts(), 1) + "% prompts" +
                     (run.tally.failed_images > 0
                          ? ", " + std::to_string(run.tally.failed_images) + " jobs failed"
                          : std::string()));
  }
  return runs;
}

// The judge's ceiling: real test-split items of the requested classes placed by `layout` (by
// default side by side without overlap), one canvas per prompt and seed (the seed picks the items;
// the same items whatever the layout).
StatusOr<StrategyRun> RunCeiling(const Suite& suite, const models::FashionMnistSplit& test,
                                 const CeilingLayout& layout, Judge& judge) {
  StrategyRun run;
  run.name = "ceiling";
  std::vector<float> canvases;
  for (size_t p = 0; p < suite.prompts.size(); ++p) {
    const Prompt& prompt = suite.prompts[p];
    DND_ASSIGN_OR_RETURN(std::vector<int> labels, Labels(prompt));
    for (uint64_t seed : prompt.seeds) {
      std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + p);
      std::mt19937_64 layout_rng(seed * 0xC2B2AE3D27D4EB4Full + p);
      DND_ASSIGN_OR_RETURN(std::vector<models::Offset> offsets,
                           CeilingOffsets(layout, static_cast<int>(labels.size()), layout_rng));
      std::vector<float> canvas(models::kCanvasPixels, 0.0f);
      for (size_t k = 0; k < labels.size(); ++k) {
        const int wanted[] = {labels[k]};
        const std::vector<size_t> indices = test.IndicesOf(wanted);
        if (indices.empty()) return NotFoundError("no test item of class " + prompt.classes[k]);
        std::uniform_int_distribution<size_t> pick(0, indices.size() - 1);
        models::PasteItem(test.Item(indices[pick(rng)]), offsets[k], canvas);
      }
      canvases.insert(canvases.end(), canvas.begin(), canvas.end());
      run.canvases.push_back(std::move(canvas));
      JudgedImage image;
      image.prompt = static_cast<int>(p);
      image.seed = seed;
      image.requested = labels;
      run.images.push_back(std::move(image));
    }
  }
  DND_ASSIGN_OR_RETURN(auto detected, judge.Detect(canvases));
  for (size_t i = 0; i < run.images.size(); ++i) run.images[i].detected = detected[i];
  run.tally = Count(run.images);
  return run;
}

json RunJson(const StrategyRun& run, const std::vector<std::string>& prompt_names) {
  json j = TallyJson(run.tally);
  j["images_detail"] = ImagesJson(run.images, prompt_names);
  return j;
}

std::vector<std::string> PromptNames(const Suite& suite) {
  std::vector<std::string> names;
  for (const Prompt& p : suite.prompts) names.push_back(p.Name());
  return names;
}

}  // namespace

std::string CeilingLayout::Describe() const {
  switch (kind) {
    case Kind::kSideBySide:
      return "side-by-side";
    case Kind::kApart:
      return "apart:" + Fixed(px, px == std::round(px) ? 0 : 1);
    case Kind::kPrior:
      return "prior:" + Fixed(px, px == std::round(px) ? 0 : 1);
  }
  return "side-by-side";
}

StatusOr<CeilingLayout> ParseCeilingLayout(std::string_view text) {
  CeilingLayout layout;
  if (text == "side-by-side") return layout;
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  if (colon != std::string_view::npos && (kind == "apart" || kind == "prior")) {
    const std::string number(text.substr(colon + 1));
    char* end = nullptr;
    const double px = std::strtod(number.c_str(), &end);
    const bool parsed = !number.empty() && end == number.c_str() + number.size();
    if (parsed && std::isfinite(px) && (kind == "apart" ? px >= 0 : px > 0)) {
      layout.kind = kind == "apart" ? CeilingLayout::Kind::kApart : CeilingLayout::Kind::kPrior;
      layout.px = px;
      return layout;
    }
  }
  return InvalidArgumentError("--ceiling-layout '" + std::string(text) +
                              "' is unknown; expected side-by-side, apart:PX (PX >= 0) or "
                              "prior:PX (PX > 0)");
}

StatusOr<std::vector<models::Offset>> CeilingOffsets(const CeilingLayout& layout, int count,
                                                     std::mt19937_64& rng) {
  switch (layout.kind) {
    case CeilingLayout::Kind::kSideBySide:
      return models::SideBySideOffsets(count);
    case CeilingLayout::Kind::kApart: {
      if (count < 1) return InvalidArgumentError("a layout needs at least one item");
      const double span = layout.px * (count - 1);
      if (span > models::kMaxOffset) {
        return InvalidArgumentError(layout.Describe() + " does not fit " + std::to_string(count) +
                                    " items on the canvas (their centres may span at most " +
                                    std::to_string(models::kMaxOffset) + " px)");
      }
      std::vector<models::Offset> offsets;
      const double centre = models::kMaxOffset / 2.0;  // the centred item's corner
      for (int k = 0; k < count; ++k) {
        const double x = centre + (k - (count - 1) / 2.0) * layout.px;
        offsets.push_back({static_cast<int>(std::lround(x)), models::kMaxOffset / 2});
      }
      return offsets;
    }
    case CeilingLayout::Kind::kPrior: {
      std::vector<models::Offset> offsets;
      for (int k = 0; k < count; ++k)
        offsets.push_back(models::SampleCentredOffset(rng, layout.px));
      return offsets;
    }
  }
  return InternalError("unknown ceiling layout");
}

StatusOr<protocol::JobSpec> BuildComposeSpec(const SuiteFile& file, const Prompt& prompt,
                                             uint64_t seed, const StrategySpec& strategy,
                                             const SpecOverrides& overrides) {
  tools::JobSpecFlags flags;
  for (const std::string& c : prompt.classes) {
    DND_ASSIGN_OR_RETURN(std::string expert, file.ExpertOf(c));
    flags.experts.push_back(expert + ":" + c);
  }
  flags.strategy = WireStrategyName(strategy.strategy);
  flags.utility = strategy.utility == protocol::UtilityKind::kAttention ? "attention" : "score";
  if (strategy.fairness_none) {
    flags.fairness = {"none"};
  } else if (strategy.strategy == protocol::Strategy::kDnd) {
    flags.fairness = overrides.fairness;
    flags.rho = overrides.rho;
  }
  if (strategy.guidance_everywhere) {
    flags.guidance_region = "everywhere";
  } else if (overrides.guidance_outside) {
    flags.guidance_outside = overrides.guidance_outside;
  }
  flags.gamma = overrides.gamma ? overrides.gamma : strategy.gamma;
  flags.beta = overrides.beta;
  if (overrides.steps) flags.steps = *overrides.steps;
  flags.cfg = overrides.cfg;
  flags.seed = seed;
  return tools::BuildJobSpec(flags);
}

const std::vector<StrategySpec>& AllStrategies() {
  using protocol::Strategy;
  using protocol::UtilityKind;
  // The baselines ignore utilities: they ask for the cheaper score map.
  static const std::vector<StrategySpec> all = {
      {"averaging", Strategy::kAveraging, UtilityKind::kScore, false, std::nullopt},
      {"composable", Strategy::kComposable, UtilityKind::kScore, false, std::nullopt},
      {"multidiffusion", Strategy::kMultiDiffusion, UtilityKind::kScore, false, std::nullopt},
      {"dnd", Strategy::kDnd, UtilityKind::kAttention, false, std::nullopt},
      {"dnd-score", Strategy::kDnd, UtilityKind::kScore, false, std::nullopt},
      {"dnd-nofair", Strategy::kDnd, UtilityKind::kAttention, true, std::nullopt},
      {"dnd-noguide", Strategy::kDnd, UtilityKind::kAttention, false, 0.0},
      // METHOD.md's guidance taken literally: every expert's gradient acts on the whole latent.
      {"dnd-literal", Strategy::kDnd, UtilityKind::kAttention, false, std::nullopt, true},
  };
  return all;
}

StatusOr<StrategySpec> FindStrategy(const std::string& name) {
  std::string known;
  for (const StrategySpec& s : AllStrategies()) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  return InvalidArgumentError("unknown strategy '" + name + "' (known: " + known + ")");
}

StatusOr<ComposeReport> RunComposeBench(const ComposeBenchOptions& options, const SuiteFile& file,
                                        std::vector<std::unique_ptr<experts::Expert>> experts,
                                        const LatentDecoder& decode, Judge& judge) {
  const auto start = Clock::now();
  ComposeReport report;
  report.domain = options.domain;
  report.judge = judge.Describe();
  report.quick = options.quick;
  report.experts = file.expert_order;
  report.ceiling_layout = options.ceiling_layout.Describe();
  if (options.ceiling_only && (options.sweep || options.sweep_only)) {
    return InvalidArgumentError("--ceiling-only judges real items only; it has no sweep");
  }

  std::vector<Suite> suites;
  if (!options.sweep_only) {
    if (options.suites.empty()) {
      suites = file.suites;
    } else {
      for (const std::string& name : options.suites) {
        DND_ASSIGN_OR_RETURN(Suite s, file.FindSuite(name));
        suites.push_back(std::move(s));
      }
    }
    if (options.quick) {
      for (Suite& s : suites) s = QuickSubset(file, s);
    }
  }
  std::vector<StrategySpec> strategies;
  if (options.strategies.empty()) {
    strategies = AllStrategies();
  } else {
    for (const std::string& name : options.strategies) {
      DND_ASSIGN_OR_RETURN(StrategySpec s, FindStrategy(name));
      strategies.push_back(std::move(s));
    }
  }
  SpecOverrides overrides;
  overrides.steps = options.steps;
  if (!overrides.steps && options.quick) overrides.steps = file.quick_steps;
  overrides.cfg = options.cfg;
  overrides.fairness = options.fairness;
  overrides.rho = options.rho;
  report.fairness = options.fairness;
  report.rho = options.rho;
  report.cfg = options.cfg;
  report.guidance_scales = options.guidance_scales;
  report.steps = overrides.steps.value_or(0);
  report.view_gain = options.view_gain;
  report.view_max_shift = options.view_max_shift;
  report.view_min_separation = options.view_min_separation;
  report.view_reference_size = options.view_reference_size;

  // Every expert the suites need must be served.
  std::set<std::string> served;
  for (const auto& e : experts) served.insert(e->Describe().name);
  for (const std::string& name : file.expert_order) {
    if (!served.count(name)) {
      return InvalidArgumentError("the suite file names expert '" + name +
                                  "', which the benchmark was not given");
    }
  }

  // The judge's ceiling needs no federation: do it first (cheap, and fails fast on missing data).
  DND_ASSIGN_OR_RETURN(models::FashionMnistSplit test,
                       models::LoadFashionMnistSplit(options.data_dir, "t10k"));

  std::unique_ptr<EmbeddedFederation> federation;
  if (!options.ceiling_only) {
    FederationOptions federation_options;
    federation_options.max_concurrent_jobs = options.jobs_in_flight;
    federation_options.max_batch = static_cast<size_t>(options.max_batch);
    federation_options.utility_smoothing = options.utility_smoothing;
    federation_options.view_gain = options.view_gain;
    federation_options.view_max_shift = options.view_max_shift;
    federation_options.view_min_separation = options.view_min_separation;
    federation_options.view_reference_size = options.view_reference_size;
    federation_options.guidance_scales = options.guidance_scales;
    Say(options, "starting a coordinator and " + std::to_string(experts.size()) + " workers (" +
                     options.domain + " experts), " + std::to_string(options.jobs_in_flight) +
                     " jobs in flight");
    DND_ASSIGN_OR_RETURN(federation,
                         EmbeddedFederation::Start(std::move(experts), federation_options));
  }

  for (const Suite& suite : suites) {
    SuiteReport suite_report;
    suite_report.name = suite.name;
    suite_report.prompt_names = PromptNames(suite);
    auto grid = file.grid_prompts.find(suite.name);
    if (!options.quick && grid != file.grid_prompts.end()) {
      suite_report.grid_prompts = grid->second;
    } else {
      for (int p = 0; p < static_cast<int>(suite.prompts.size()) && p < 6; ++p) {
        suite_report.grid_prompts.push_back(p);
      }
    }
    DND_ASSIGN_OR_RETURN(suite_report.ceiling,
                         RunCeiling(suite, test, options.ceiling_layout, judge));
    Say(options, suite.name + " / ceiling (" + report.ceiling_layout +
                     "): " + Fixed(suite_report.ceiling.tally.PercentImages(), 1) + "% images");
    if (options.ceiling_only) {
      report.suites.push_back(std::move(suite_report));
      continue;
    }
    std::vector<Cell> cells;
    for (const StrategySpec& strategy : strategies) {
      cells.push_back({&suite, strategy, overrides, suite.name + " / " + strategy.name});
    }
    DND_ASSIGN_OR_RETURN(suite_report.strategies,
                         RunCells(options, file, cells, *federation, decode, judge, suite.name));
    report.suites.push_back(std::move(suite_report));
  }

  if (options.sweep || options.sweep_only) {
    std::vector<double> betas = options.sweep_betas;
    if (betas.empty()) {
      for (double m : {1.0 / 3, 1.0, 3.0}) betas.push_back(m * options.default_beta_attention);
    }
    std::vector<double> gammas = options.sweep_gammas;
    if (gammas.empty()) gammas = {0.0, 0.01, 0.02, 0.03};
    std::vector<std::optional<double>> outsides(options.sweep_outsides.begin(),
                                                options.sweep_outsides.end());
    if (outsides.empty()) outsides = {std::nullopt};
    DND_ASSIGN_OR_RETURN(StrategySpec dnd, FindStrategy("dnd"));
    std::vector<Cell> cells;
    std::vector<SweepPoint> points;
    for (double beta : betas) {
      for (double gamma : gammas) {
        for (const std::optional<double>& outside : outsides) {
          SpecOverrides o = overrides;
          o.beta = beta;
          o.gamma = gamma;
          o.guidance_outside = outside;
          for (const Suite& tuning : file.tuning) {
            cells.push_back({&tuning, dnd, o,
                             "sweep beta " + Fixed(beta, 5) + " gamma " + Fixed(gamma, 3) +
                                 (outside ? " outside " + Fixed(*outside, 2) : std::string()) +
                                 " / " + tuning.name});
          }
          SweepPoint point;
          point.beta = beta;
          point.gamma = gamma;
          point.guidance_outside = outside;
          points.push_back(std::move(point));
        }
      }
    }
    DND_ASSIGN_OR_RETURN(std::vector<StrategyRun> runs,
                         RunCells(options, file, cells, *federation, decode, judge, "sweep"));
    size_t c = 0;
    for (SweepPoint& point : points) {
      std::vector<JudgedImage> all;
      for (const Suite& tuning : file.tuning) {
        StrategyRun& run = runs[c++];
        // Prompt indices of different suites must not collide in the total.
        for (JudgedImage image : run.images) {
          image.prompt += static_cast<int>(point.suites.size()) * 100000;
          all.push_back(std::move(image));
        }
        point.suites.emplace_back(tuning.name, run.tally);
      }
      point.total = Count(all);
      point.total.wall_seconds = runs.empty() ? 0.0 : runs.front().tally.wall_seconds;
      report.sweep.push_back(std::move(point));
    }
  }
  report.wall_seconds = SecondsSince(start);
  return report;
}

json ComposeReportJson(const ComposeReport& report) {
  json suites = json::object();
  for (const SuiteReport& suite : report.suites) {
    json strategies = json::object();
    for (const StrategyRun& run : suite.strategies) {
      strategies[run.name] = RunJson(run, suite.prompt_names);
    }
    json ceiling = RunJson(suite.ceiling, suite.prompt_names);
    ceiling["what"] =
        report.ceiling_layout == "side-by-side"
            ? "real test-split items of the requested classes placed side by side without overlap"
            : "real test-split items of the requested classes placed by the layout " +
                  report.ceiling_layout;
    ceiling["layout"] = report.ceiling_layout;
    strategies["ceiling"] = ceiling;
    suites[suite.name] = {
        {"prompts", suite.prompt_names}, {"strategies", strategies}, {"ceiling", ceiling}};
  }
  json sweep = json::array();
  for (const SweepPoint& point : report.sweep) {
    json per_suite = json::object();
    for (const auto& [name, tally] : point.suites) per_suite[name] = TallyJson(tally);
    sweep.push_back({{"strategy", "dnd"},
                     {"beta", point.beta},
                     {"gamma", point.gamma},
                     {"guidance_outside",
                      point.guidance_outside ? json(*point.guidance_outside) : json("default")},
                     {"suites", per_suite},
                     {"total", TallyJson(point.total)}});
  }
  return {
      {"benchmark", "dnd bench compose"},
      {"domain", report.domain},
      {"judge", report.judge},
      {"steps", report.steps},
      {"view_gain", report.view_gain ? json(*report.view_gain) : json("default")},
      {"view_max_shift", report.view_max_shift ? json(*report.view_max_shift) : json("default")},
      {"view_min_separation",
       report.view_min_separation ? json(*report.view_min_separation) : json("default")},
      {"view_reference_size",
       report.view_reference_size ? json(*report.view_reference_size) : json("default")},
      {"fairness", report.fairness.empty() ? json("default") : json(report.fairness)},
      {"rho", report.rho ? json(*report.rho) : json("default")},
      {"cfg", report.cfg ? json(*report.cfg) : json("default")},
      {"guidance_scales", report.guidance_scales},
      {"quick", report.quick},
      {"experts", report.experts},
      {"wall_seconds", report.wall_seconds},
      {"suites", suites},
      {"sweep", sweep}};
}

namespace {

// "5 (every expert)", or the owners' scales and the default for the rest.
std::string GuidanceScalesText(const ComposeReport& report) {
  if (report.cfg) return Fixed(*report.cfg, 1) + " (every expert: --cfg)";
  std::string out;
  for (const auto& [name, scale] : report.guidance_scales) {
    if (scale > 0) out += (out.empty() ? "" : ", ") + name + " " + Fixed(scale, 1);
  }
  return out.empty() ? std::string("the coordinator's default")
                     : out + " (the owners' scales), the coordinator's default for the others";
}

}  // namespace

std::string ComposeReportMarkdown(const ComposeReport& report) {
  std::string out;
  for (const SuiteReport& suite : report.suites) {
    std::vector<TableRow> rows;
    for (const StrategyRun& run : suite.strategies) rows.push_back({run.name, run.tally});
    rows.push_back({report.ceiling_layout == "side-by-side"
                        ? std::string("ceiling (real items)")
                        : "ceiling (real items, " + report.ceiling_layout + ")",
                    suite.ceiling.tally});
    out += "### " + suite.name + " (" + report.domain + " experts, " +
           std::to_string(suite.prompt_names.size()) + " prompts)\n\n";
    out += MarkdownTable(rows, report.experts);
    if (!suite.strategies.empty()) {
      out += "\nAll " + std::to_string(suite.strategies.size()) + " strategies' " +
             std::to_string(suite.strategies.size() * suite.strategies.front().tally.images) +
             " jobs ran together in " + Fixed(suite.strategies.front().tally.wall_seconds, 1) +
             " s.\n";
    }
    out += "\n";
  }
  if (!report.sweep.empty()) {
    out += "### sweep (dnd, attention utility, tuning subset)\n\n| beta | gamma | outside |";
    std::string rule = "|---|---|---|";
    for (const auto& [name, tally] : report.sweep.front().suites) {
      out += " %images " + name + " |";
      rule += "---|";
    }
    out += " %images all | %prompts all | mean job (s) |\n" + rule + "---|---|---|\n";
    for (const SweepPoint& p : report.sweep) {
      out += "| " + Fixed(p.beta, 5) + " | " + Fixed(p.gamma, 3) + " | " +
             (p.guidance_outside ? Fixed(*p.guidance_outside, 2) : std::string("default")) + " |";
      for (const auto& [name, tally] : p.suites) {
        out += " " + Fixed(tally.PercentImages(), 1) + " (" + std::to_string(tally.correct_images) +
               "/" + std::to_string(tally.images) + ") |";
      }
      out += " " + Fixed(p.total.PercentImages(), 1) + " | " + Fixed(p.total.PercentPrompts(), 1) +
             " | " + Fixed(p.suites.empty() ? 0.0 : p.suites.front().second.mean_job_seconds, 1) +
             " |\n";
    }
    out += "\n";
  }
  char wall[64];
  std::snprintf(wall, sizeof(wall), "%.1f", report.wall_seconds);
  out += "Judge: " + report.judge + ". Steps: " +
         (report.steps > 0 ? std::to_string(report.steps) : std::string("coordinator default")) +
         ". Guidance scale: " + GuidanceScalesText(report) + ". Wall time of the whole run: " +
         wall + " s.\n";
  return out;
}

StatusOr<std::vector<std::string>> WriteComposeGrids(const ComposeReport& report,
                                                     const std::string& dir) {
  std::vector<std::string> written;
  const std::vector<float> empty_cell(models::kCanvasPixels, -1.0f);
  for (const SuiteReport& suite : report.suites) {
    if (suite.strategies.empty()) continue;
    // The first image of each prompt: images are in prompt, then seed order.
    std::map<int, size_t> first_image;
    const StrategyRun& any = suite.strategies.front();
    for (size_t i = 0; i < any.images.size(); ++i) first_image.try_emplace(any.images[i].prompt, i);
    std::vector<std::vector<float>> cells;
    int rows = 0;
    const int columns = static_cast<int>(suite.strategies.size()) + 1;
    for (int p : suite.grid_prompts) {
      auto it = first_image.find(p);
      if (it == first_image.end()) continue;
      ++rows;
      for (const StrategyRun& run : suite.strategies) {
        const auto& c = run.canvases[it->second];
        cells.push_back(c.empty() ? empty_cell : c);
      }
      cells.push_back(suite.ceiling.canvases[it->second]);
    }
    if (rows > 0) {
      const std::string file =
          (std::filesystem::path(dir) / ("bench_" + report.domain + "_" + suite.name + "_grid.png"))
              .string();
      DND_RETURN_IF_ERROR(WriteCanvasGrid(cells, rows, columns, 2, file));
      written.push_back(file);
    }
    for (const StrategyRun& run : suite.strategies) {
      if (run.name != "dnd") continue;
      std::vector<std::vector<float>> failures;
      for (size_t i = 0; i < run.images.size() && failures.size() < 16; ++i) {
        if (!run.images[i].Correct()) {
          failures.push_back(run.canvases[i].empty() ? empty_cell : run.canvases[i]);
        }
      }
      if (failures.empty()) continue;
      const int fail_columns = std::min<int>(8, static_cast<int>(failures.size()));
      const int fail_rows = (static_cast<int>(failures.size()) + fail_columns - 1) / fail_columns;
      failures.resize(static_cast<size_t>(fail_rows * fail_columns), empty_cell);
      const std::string file = (std::filesystem::path(dir) /
                                ("bench_" + report.domain + "_" + suite.name + "_failures_dnd.png"))
                                   .string();
      DND_RETURN_IF_ERROR(WriteCanvasGrid(failures, fail_rows, fail_columns, 2, file));
      written.push_back(file);
    }
  }
  return written;
}

}  // namespace dnd::bench
