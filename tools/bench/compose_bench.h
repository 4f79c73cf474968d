// `dnd bench compose` (issue 7): the composition benchmark. Runs every prompt of the suites
// (bench_suite.h) with every strategy (averaging, composable, multidiffusion, dnd with attention
// utility, dnd-score, dnd-nofair, dnd-noguide, dnd-literal) through a real coordinator and real
// workers (federation.h), decodes the final latents, judges them (judge.h), and counts GenEval's
// metrics (bench_metrics.h) beside the judge's ceiling on real items placed side by side. Also the
// beta/gamma sweep on the tuning subset. No LibTorch: the experts, the decoder and the judge are
// given by the caller (bench_command.cc builds the real ones).
#ifndef DND_TOOLS_BENCH_COMPOSE_BENCH_H_
#define DND_TOOLS_BENCH_COMPOSE_BENCH_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/messages.h"
#include "protocol/status.h"
#include "tools/bench/bench_metrics.h"
#include "tools/bench/bench_suite.h"
#include "tools/bench/judge.h"
#include "worker/experts/expert.h"
#include "worker/models/canvases.h"

namespace dnd::bench {

// N final latents (N * C*H*W floats) -> N canvases (N * 4096 floats in [0, 1]).
using LatentDecoder = std::function<StatusOr<std::vector<float>>(std::span<const float> latents)>;

// One of the strategies (issue 7's seven, then dnd-literal): a name and how its job spec
// differs from the default.
struct StrategySpec {
  std::string name;  // "averaging", ..., "dnd-noguide"
  protocol::Strategy strategy = protocol::Strategy::kDnd;
  protocol::UtilityKind utility = protocol::UtilityKind::kAttention;
  bool fairness_none = false;        // dnd-nofair
  std::optional<double> gamma;       // dnd-noguide: 0
  bool guidance_everywhere = false;  // dnd-literal: METHOD.md's unconfined guidance
};
// The eight, in the table's order.
const std::vector<StrategySpec>& AllStrategies();
// Looks one up by name; InvalidArgument listing the names otherwise.
StatusOr<StrategySpec> FindStrategy(const std::string& name);

// What a run (its flags) or a sweep point overrides in the specs; unset = the coordinator's.
struct SpecOverrides {
  std::optional<int> steps;
  std::optional<double> cfg;
  std::optional<double> beta;
  std::optional<double> gamma;
  std::optional<double> guidance_outside;
  std::vector<std::string> fairness;  // of the dnd strategies except dnd-nofair; empty = default
  std::optional<double> rho;          // likewise
};

// The job spec of one image: the prompt's classes on their experts, the strategy's differences
// from the default, then the overrides, and the seed.
StatusOr<protocol::JobSpec> BuildComposeSpec(const SuiteFile& file, const Prompt& prompt,
                                             uint64_t seed, const StrategySpec& strategy,
                                             const SpecOverrides& overrides);

// Where the ceiling row places its real items (`dnd bench compose --ceiling-layout`). The default
// is the ceiling; the others say how much of it survives when the items are not far apart
// (docs/results.md, "What the judge needs").
struct CeilingLayout {
  enum class Kind {
    kSideBySide,  // models::SideBySideOffsets: apart, without overlap
    kApart,       // in a row across the middle, neighbouring centres px apart (may overlap)
    kPrior,       // each item at models::SampleCentredOffset(px), independently
  };
  Kind kind = Kind::kSideBySide;
  double px = 0;
  std::string Describe() const;  // "side-by-side", "apart:14", "prior:7"
};
// "side-by-side", "apart:PX" (PX >= 0) or "prior:PX" (PX > 0: the experts' own training prior is
// 7). InvalidArgument otherwise.
StatusOr<CeilingLayout> ParseCeilingLayout(std::string_view text);
// The offsets of `count` items on one canvas; rng is used by kPrior only. InvalidArgument when
// kApart's row does not fit the canvas (centres more than 36 px from end to end) or kSideBySide
// has no layout for `count` (1 to 3).
StatusOr<std::vector<models::Offset>> CeilingOffsets(const CeilingLayout& layout, int count,
                                                     std::mt19937_64& rng);

struct ComposeBenchOptions {
  std::string domain = "neural";            // recorded in the report ("neural" or "exact")
  std::vector<std::string> suites;          // empty = every suite of the file
  std::vector<std::string> strategies;      // empty = all eight
  bool quick = false;                       // the file's quick subset and quick steps
  bool sweep = false;                       // run the beta/gamma sweep (on the tuning subset) too
  bool sweep_only = false;                  // only the sweep
  std::vector<double> sweep_betas;          // empty = {1/3, 1, 3} x the coordinator's default
  std::vector<double> sweep_gammas;         // empty = {0, 0.01, 0.02, 0.03}
  std::vector<double> sweep_outsides;       // guidance outside the region; empty = the default
  double default_beta_attention = 0.0003;   // what the sweep's beta multipliers scale
  std::optional<int> steps;                 // unset = the coordinator's default (quick: the file's)
  std::optional<double> cfg;                // unset = the coordinator's default
  std::optional<double> utility_smoothing;  // unset = the coordinator's default
  std::optional<double> view_gain;          // region-centred views; unset = the default
  std::optional<int> view_max_shift;        // unset = the coordinator's default
  std::optional<double> view_min_separation;  // unset = the coordinator's default
  std::optional<int> view_reference_size;     // unset = the coordinator's default
  std::vector<std::string> fairness;          // dnd strategies' notions; empty = the default
  std::optional<double> rho;                  // proportional share; unset = the default
  // Each expert's owner's guidance scale (its worker's --guidance-scale; docs/method.md decision
  // 16), by expert name; jobs set no scale, so these experts sample with them. Unlisted: none.
  std::map<std::string, double> guidance_scales;
  int jobs_in_flight = 32;                    // coordinator's concurrent jobs (workers batch them)
  int max_batch = 32;                         // worker batch limit
  std::string data_dir;                       // Fashion-MNIST (the ceiling's real items)
  CeilingLayout ceiling_layout;               // where the ceiling's items go
  bool ceiling_only = false;                  // judge the ceiling alone: no federation, no jobs
  std::string grid_dir;                       // empty = no grids
  std::ostream* progress = nullptr;           // progress lines; null = silent
};

// One strategy (or the ceiling) on one suite. Value type.
struct StrategyRun {
  std::string name;
  Tally tally;
  std::vector<JudgedImage> images;           // in prompt, then seed order
  std::vector<std::vector<float>> canvases;  // the decoded images, same order (empty if failed)
};

struct SuiteReport {
  std::string name;
  std::vector<std::string> prompt_names;
  std::vector<int> grid_prompts;  // prompts shown in the grid (file's grid_prompts, or the first)
  std::vector<StrategyRun> strategies;
  StrategyRun ceiling;
};

struct SweepPoint {
  double beta = 0;
  double gamma = 0;
  std::optional<double> guidance_outside;             // unset = the coordinator's default
  std::vector<std::pair<std::string, Tally>> suites;  // tuning suite -> counts
  Tally total;                                        // all tuning images together
};

struct ComposeReport {
  std::string domain;
  std::string judge;
  std::string suite_file;
  int steps = 0;                              // 0 = the coordinator's default
  std::optional<double> view_gain;            // unset = the coordinator's default
  std::optional<int> view_max_shift;          // unset = the coordinator's default
  std::optional<double> view_min_separation;  // unset = the coordinator's default
  std::optional<int> view_reference_size;     // unset = the coordinator's default
  std::vector<std::string> fairness;          // empty = the coordinator's default
  std::optional<double> rho;                  // unset = the coordinator's default
  std::optional<double> cfg;                  // the jobs' scale; unset = the experts' own
  std::map<std::string, double> guidance_scales;  // the owners' scales the workers declared
  bool quick = false;
  std::vector<std::string> experts;  // expert order of the file (the share columns)
  std::vector<SuiteReport> suites;
  std::vector<SweepPoint> sweep;
  std::string ceiling_layout = "side-by-side";  // CeilingLayout::Describe()
  double wall_seconds = 0;                      // the whole run, federation start-up included
};

// Runs the benchmark. `experts` are moved into the federation's workers (one per expert, named by
// Describe().name, which must match the suite file's expert names). Errors: InvalidArgument (an
// unknown suite or strategy, an expert the file names but `experts` lacks), the federation's,
// the judge's and the decoder's errors, NotFound for missing Fashion-MNIST data (ceiling).
// A job that fails does not stop the run: it counts as an image with every class missing.
StatusOr<ComposeReport> RunComposeBench(const ComposeBenchOptions& options, const SuiteFile& file,
                                        std::vector<std::unique_ptr<experts::Expert>> experts,
                                        const LatentDecoder& decode, Judge& judge);

// {"domain", "judge", "steps", "wall_seconds", "suites": {NAME: {"strategies": {STRATEGY:
// TallyJson + "images_detail"}, "ceiling": TallyJson + detail, "prompts": [...]}}, "sweep": [...]}.
// The ceiling is also listed under "strategies" as "ceiling" (a row of the table).
nlohmann::json ComposeReportJson(const ComposeReport& report);
// The markdown tables: one per suite (strategies, then the ceiling), then the sweep.
std::string ComposeReportMarkdown(const ComposeReport& report);
// Per suite: SUITE_grid.png (rows = grid prompts at their first seed, columns = the strategies in
// order, then the ceiling) and SUITE_failures_STRATEGY.png for dnd (up to 16 incorrect images).
// Returns the files written.
StatusOr<std::vector<std::string>> WriteComposeGrids(const ComposeReport& report,
                                                     const std::string& dir);

}  // namespace dnd::bench

#endif  // DND_TOOLS_BENCH_COMPOSE_BENCH_H_
