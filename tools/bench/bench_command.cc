// `dnd bench experts|compose` (bench_command.h): flags -> options -> the real experts, decoder and
// judge -> the run -> table on stdout, JSON and grids on request.
#include "tools/bench/bench_command.h"

#include <algorithm>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "tools/bench/bench_images.h"
#include "tools/bench/experts_bench.h"
#include "tools/bench/judge.h"
#include "tools/command_support.h"
#include "tools/exit_codes.h"
#include "worker/experts/fashion_mnist.h"
#include "worker/models/autoencoder.h"
#include "worker/models/unet_expert.h"
#include "worker/service/shipped_models.h"

namespace dnd::bench {
namespace {

const std::vector<std::string> kOrganisations = {"footwear", "tops", "rest"};

// Flags both subcommands share.
struct CommonFlags {
  std::string domain = "neural";
  std::string models_dir = DefaultModelsDir();
  std::string detector;  // empty = <models_dir>/detector.pt
  std::string data_dir = std::string(experts::kDefaultFashionMnistDir);
  std::string json_path;
  std::string grid_dir;
  bool verbose = false;
};

void AddCommonFlags(CLI::App& cmd, CommonFlags& flags) {
  cmd.add_option("--domain", flags.domain,
                 "neural (trained 4x16x16 latent experts) or exact (closed-form pixel-space "
                 "experts)")
      ->check(CLI::IsMember({"neural", "exact"}))
      ->capture_default_str();
  cmd.add_option("--models-dir", flags.models_dir,
                 "where autoencoder.pt, detector.pt and the experts' .pt files are")
      ->capture_default_str();
  cmd.add_option("--detector", flags.detector,
                 "the judge's model file (default MODELS_DIR/detector.pt)");
  cmd.add_option("--data-dir", flags.data_dir, "Fashion-MNIST directory")->capture_default_str();
  cmd.add_option("--json", flags.json_path, "write every number as JSON into this file");
  cmd.add_option("--grid-dir", flags.grid_dir, "write image grids (PNG) into this directory");
  cmd.add_flag("--verbose", flags.verbose, "show the coordinator's and workers' logs (stderr)");
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return InternalError("cannot write " + path);
  return OkStatus();
}

template <typename T>
T OrExit(const char* command, StatusOr<T> value) {
  if (!value.ok()) tools::ExitWithStatus(command, value.status());
  return std::move(value).value();
}

std::unique_ptr<Judge> LoadJudge(const char* command, const CommonFlags& flags) {
  const std::string path =
      flags.detector.empty() ? flags.models_dir + "/detector.pt" : flags.detector;
  return OrExit(command, LoadDetectorJudge(path));
}

void RunExpertsCommand(const CommonFlags& flags, ExpertsBenchOptions options,
                       const std::vector<std::string>& names) {
  constexpr const char* kCommand = "bench experts";
  options.domain = flags.domain;
  options.data_dir = flags.data_dir;
  options.progress = &std::cerr;
  auto experts =
      OrExit(kCommand, CreateDomainExperts(flags.domain, names, flags.models_dir, flags.data_dir));
  auto decode = OrExit(kCommand, CreateDomainDecoder(flags.domain, flags.models_dir,
                                                     experts.front()->Describe().latent.id));
  auto judge = LoadJudge(kCommand, flags);
  std::vector<experts::Expert*> raw;
  for (auto& e : experts) raw.push_back(e.get());
  ExpertsReport report = OrExit(kCommand, RunExpertsBench(options, raw, decode, *judge));
  std::cout << ExpertsReportMarkdown(report) << "\nJudge: " << report.judge << ". "
            << options.samples << " samples per concept, " << options.steps << " DDIM steps, cfg "
            << options.cfg << ", eta " << options.eta << ", seed " << options.seed << ". Wall time "
            << report.wall_seconds << " s.\n";
  if (!flags.json_path.empty()) {
    Status s = WriteText(flags.json_path, ExpertsReportJson(report).dump(1) + "\n");
    if (!s.ok()) tools::ExitWithStatus(kCommand, s);
  }
  if (!flags.grid_dir.empty()) {
    for (const std::string& f : OrExit(kCommand, WriteExpertsGrids(report, flags.grid_dir))) {
      std::cerr << "bench experts: wrote " << f << "\n";
    }
  }
}

// "NAME=W" items of --expert-guidance-scale over the domain's owners' scales. InvalidArgument for
// a malformed item, an expert the suite file does not name, or W outside [0, 100].
StatusOr<std::map<std::string, double>> GuidanceScales(const std::string& domain,
                                                       const std::vector<std::string>& items,
                                                       const SuiteFile& file) {
  DND_ASSIGN_OR_RETURN(auto scales, DomainGuidanceScales(domain));
  for (const std::string& item : items) {
    const size_t eq = item.find('=');
    double scale = -1;
    const std::string name = item.substr(0, eq);
    if (eq == std::string::npos || !CLI::detail::lexical_cast(item.substr(eq + 1), scale) ||
        !(scale >= 0 && scale <= 100)) {
      return InvalidArgumentError("--expert-guidance-scale wants NAME=W with W in [0, 100] (0 = "
                                  "the coordinator's default), not '" + item + "'");
    }
    if (std::find(file.expert_order.begin(), file.expert_order.end(), name) ==
        file.expert_order.end()) {
      return InvalidArgumentError("--expert-guidance-scale names expert '" + name +
                                  "', which the suite file does not use");
    }
    scales[name] = scale;
  }
  return scales;
}

void RunComposeCommand(const CommonFlags& flags, ComposeBenchOptions options,
                       const std::string& suite_path, const std::string& markdown_path,
                       const std::vector<std::string>& guidance_scale_items) {
  constexpr const char* kCommand = "bench compose";
  options.domain = flags.domain;
  options.data_dir = flags.data_dir;
  options.progress = &std::cerr;
  SuiteFile file = OrExit(kCommand, LoadSuiteFile(suite_path));
  options.guidance_scales =
      OrExit(kCommand, GuidanceScales(flags.domain, guidance_scale_items, file));
  auto experts = OrExit(kCommand, CreateDomainExperts(flags.domain, file.expert_order,
                                                      flags.models_dir, flags.data_dir));
  auto decode = OrExit(kCommand, CreateDomainDecoder(flags.domain, flags.models_dir,
                                                     experts.front()->Describe().latent.id));
  auto judge = LoadJudge(kCommand, flags);
  ComposeReport report =
      OrExit(kCommand, RunComposeBench(options, file, std::move(experts), decode, *judge));
  report.suite_file = suite_path;
  const std::string markdown = ComposeReportMarkdown(report);
  std::cout << markdown;
  if (!markdown_path.empty()) {
    Status s = WriteText(markdown_path, markdown);
    if (!s.ok()) tools::ExitWithStatus(kCommand, s);
  }
  if (!flags.json_path.empty()) {
    nlohmann::json j = ComposeReportJson(report);
    j["suite_file"] = suite_path;
    Status s = WriteText(flags.json_path, j.dump(1) + "\n");
    if (!s.ok()) tools::ExitWithStatus(kCommand, s);
  }
  if (!flags.grid_dir.empty()) {
    for (const std::string& f : OrExit(kCommand, WriteComposeGrids(report, flags.grid_dir))) {
      std::cerr << "bench compose: wrote " << f << "\n";
    }
  }
}

void QuietLogs(bool verbose) {
  // The embedded services log through spdlog's default logger: keep stdout for the table.
  spdlog::set_default_logger(spdlog::stderr_color_mt("dnd-bench"));
  spdlog::set_level(verbose ? spdlog::level::info : spdlog::level::warn);
}

}  // namespace

std::string DefaultModelsDir() { return worker::ShippedModelsDir().string(); }
std::string DefaultSuiteFile() {
  return std::string(DND_SOURCE_DIR) + "/tools/bench/compose_suite.json";
}

StatusOr<std::vector<std::unique_ptr<experts::Expert>>> CreateDomainExperts(
    const std::string& domain, const std::vector<std::string>& names, const std::string& models_dir,
    const std::string& data_dir) {
  std::vector<std::unique_ptr<experts::Expert>> out;
  for (const std::string& name : names) {
    experts::ExpertConfig config;
    config.name = name;
    if (domain == "neural") {
      config.backend = "neural";
      config.model_path = models_dir + "/" + name + ".pt";
    } else if (domain == "exact") {
      config.backend = "exact";
      config.model_path = data_dir;
      DND_ASSIGN_OR_RETURN(config.concepts, experts::FashionMnistOrganisation(name));
    } else {
      return InvalidArgumentError("unknown domain '" + domain + "' (neural or exact)");
    }
    auto expert = models::CreateAnyExpert(config);
    if (!expert.ok()) return expert.status().WithContext("loading expert " + name);
    out.push_back(std::move(expert).value());
  }
  return out;
}

StatusOr<std::map<std::string, double>> DomainGuidanceScales(const std::string& domain) {
  if (domain == "neural") return std::map<std::string, double>{{"tops", 10.0}};
  if (domain == "exact") return std::map<std::string, double>{};
  return InvalidArgumentError("unknown domain '" + domain + "' (neural or exact)");
}

StatusOr<LatentDecoder> CreateDomainDecoder(const std::string& domain,
                                            const std::string& models_dir,
                                            const std::string& latent_space_id) {
  if (domain == "exact") {
    return LatentDecoder([](std::span<const float> latents) -> StatusOr<std::vector<float>> {
      return PixelLatentToCanvas(latents);
    });
  }
  if (domain != "neural") {
    return InvalidArgumentError("unknown domain '" + domain + "' (neural or exact)");
  }
  const std::string path = models_dir + "/autoencoder.pt";
  DND_ASSIGN_OR_RETURN(std::unique_ptr<models::Autoencoder> autoencoder,
                       models::Autoencoder::Load(path));
  if (!latent_space_id.empty() && autoencoder->latent_space_id() != latent_space_id) {
    return FailedPreconditionError("the experts' latent space is " + latent_space_id + " but " +
                                   path + " decodes " + autoencoder->latent_space_id());
  }
  std::shared_ptr<models::Autoencoder> shared = std::move(autoencoder);
  return LatentDecoder(
      [shared](std::span<const float> latents) { return shared->Decode(latents); });
}

void RegisterBenchCommand(CLI::App& app) {
  CLI::App* bench = app.add_subcommand(
      "bench", "Benchmarks: the experts' quality gate and the composition benchmark");
  bench->require_subcommand(1);

  // dnd bench experts
  {
    auto flags = std::make_shared<CommonFlags>();
    auto options = std::make_shared<ExpertsBenchOptions>();
    auto names = std::make_shared<std::vector<std::string>>(kOrganisations);
    CLI::App* cmd = bench->add_subcommand(
        "experts",
        "Sample every concept of every expert (DDIM + CFG, straight through the expert), judge "
        "the samples with the presence detector, and print the quality gate of issue 6");
    AddCommonFlags(*cmd, *flags);
    cmd->add_option("--samples", options->samples, "samples per concept")->capture_default_str();
    cmd->add_option("--steps", options->steps, "DDIM steps")->capture_default_str();
    cmd->add_option("--cfg", options->cfg, "classifier-free guidance scale")->capture_default_str();
    cmd->add_option("--eta", options->eta, "DDIM stochasticity")->capture_default_str();
    cmd->add_option("--seed", options->seed, "seed of the samples' noise")->capture_default_str();
    cmd->add_option("--batch", options->batch, "samples per expert call")->capture_default_str();
    cmd->add_option("--experts", *names, "which organisations' experts")
        ->delimiter(',')
        ->capture_default_str();
    cmd->callback([flags, options, names] {
      QuietLogs(flags->verbose);
      RunExpertsCommand(*flags, *options, *names);
    });
  }

  // dnd bench compose
  {
    auto flags = std::make_shared<CommonFlags>();
    auto options = std::make_shared<ComposeBenchOptions>();
    auto suite_path = std::make_shared<std::string>(DefaultSuiteFile());
    auto markdown_path = std::make_shared<std::string>();
    auto steps = std::make_shared<int>(0);
    auto cfg = std::make_shared<double>(0.0);
    auto guidance_scales = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = bench->add_subcommand(
        "compose",
        "Run the composition benchmark (issue 7): every prompt of the suites with averaging, "
        "composable, multidiffusion, dnd, dnd-score, dnd-nofair, dnd-noguide and dnd-literal "
        "through an embedded coordinator and workers; GenEval's metrics beside the judge's "
        "ceiling");
    AddCommonFlags(*cmd, *flags);
    cmd->add_option("--suite-file", *suite_path, "the prompt suites")->capture_default_str();
    cmd->add_option("--suites", options->suites, "which suites (default: all of the file)")
        ->delimiter(',');
    cmd->add_option("--strategies", options->strategies, "which strategies (default: all eight)")
        ->delimiter(',');
    cmd->add_flag("--quick", options->quick,
                  "the file's small subset with fewer steps (a smoke run: minutes, not scores)");
    cmd->add_flag("--sweep", options->sweep, "also sweep beta x gamma on the tuning subset");
    cmd->add_flag("--sweep-only", options->sweep_only, "only the sweep");
    cmd->add_option("--sweep-beta", options->sweep_betas,
                    "betas of the sweep (default: 1/3, 1 and 3 times 0.0003)")
        ->delimiter(',');
    cmd->add_option("--sweep-gamma", options->sweep_gammas,
                    "gammas of the sweep (default: 0, 0.01, 0.02, 0.03)")
        ->delimiter(',');
    cmd->add_option("--sweep-guidance-outside", options->sweep_outsides,
                    "weights of guidance outside each expert's region, a third axis of the sweep "
                    "(default: the coordinator's only)")
        ->delimiter(',')
        ->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--steps", *steps, "denoising steps (default: the coordinator's, 50)");
    cmd->add_option("--cfg", *cfg,
                    "classifier-free guidance scale of every expert (default: each expert's "
                    "owner's, else the coordinator's)");
    cmd->add_option("--expert-guidance-scale", *guidance_scales,
                    "NAME=W: expert NAME's owner serves it with guidance scale W (its worker's "
                    "--guidance-scale; 0 = none). Default: the domain's, neural tops=10")
        ->delimiter(',');
    cmd->add_option("--utility-smoothing", options->utility_smoothing,
                    "blur of the utility maps in latent positions (default: the coordinator's, 2)")
        ->check(CLI::Range(0.0, 64.0));
    cmd->add_option("--view-gain", options->view_gain,
                    "region-centred views' gain, 0 = off (default: the coordinator's, 1)")
        ->check(CLI::Range(0.0, 8.0));
    cmd->add_option("--view-max-shift", options->view_max_shift,
                    "the views' largest shift in latent positions (default: the coordinator's)")
        ->check(CLI::Range(0, 1024));
    cmd->add_option("--view-min-separation", options->view_min_separation,
                    "least distance between two experts' view centres in latent positions, 0 = "
                    "not separated (default: the coordinator's, 6)")
        ->check(CLI::Range(0.0, 1024.0));
    cmd->add_option("--view-reference-size", options->view_reference_size,
                    "the frame size the views' settings are given for, scaled to the latent; 0 = "
                    "not scaled (default: the coordinator's, 16)")
        ->check(CLI::Range(0, 65536));
    cmd->add_option("--fairness", options->fairness,
                    "fairness of the dnd strategies other than dnd-nofair: proportional, "
                    "envy-free, equitable (a list), default the coordinator's (proportional)")
        ->delimiter(',')
        ->check(CLI::IsMember({"proportional", "envy-free", "equitable"}));
    cmd->add_option("--rho", options->rho,
                    "proportional share of the dnd strategies, in (0, 1] (default: the "
                    "coordinator's, 1)")
        ->check(CLI::Validator(
            [](const std::string& text) {
              double v = 0;
              return CLI::detail::lexical_cast(text, v) && v > 0 && v <= 1
                         ? std::string()
                         : "must be in (0, 1], not " + text;
            },
            "in (0, 1]"));
    cmd->add_option("--jobs", options->jobs_in_flight, "jobs in flight (workers batch them)")
        ->capture_default_str();
    cmd->add_option("--max-batch", options->max_batch, "worker batch limit")->capture_default_str();
    cmd->add_option("--markdown", *markdown_path, "also write the tables into this file");
    auto ceiling_layout = std::make_shared<std::string>("side-by-side");
    cmd->add_option("--ceiling-layout", *ceiling_layout,
                    "where the ceiling's real items go: side-by-side (the issue's ceiling), "
                    "apart:PX (in a row, centres PX apart) or prior:PX (each at the experts' "
                    "Gaussian position prior of std PX; they train with 7)")
        ->capture_default_str();
    cmd->add_flag("--ceiling-only", options->ceiling_only,
                  "judge the ceiling's real items only (no coordinator, no jobs; seconds)");
    cmd->callback([flags, options, suite_path, markdown_path, steps, cfg, ceiling_layout,
                   guidance_scales] {
      QuietLogs(flags->verbose);
      ComposeBenchOptions run = *options;
      auto layout = ParseCeilingLayout(*ceiling_layout);
      if (!layout.ok()) tools::ExitWithStatus("bench compose", layout.status());
      run.ceiling_layout = *layout;
      if (*steps > 0) run.steps = *steps;
      if (*cfg > 0) run.cfg = *cfg;
      RunComposeCommand(*flags, run, *suite_path, *markdown_path, *guidance_scales);
    });
  }
}

}  // namespace dnd::bench
