// `dnd bench experts` (issue 6 item 5): the quality gate of the experts. For each expert and each
// of its concepts, N samples with DDIM and classifier-free guidance straight through the Expert
// interface (all samples of a concept in one batched Expert::Step per step; the DDIM step from
// coordinator/method's schedule), decoded and judged: how many contain the requested class, how
// many hold it and nothing else, against the judge's recall on real items of that class.
// No LibTorch: experts, decoder and judge come from the caller (bench_command.cc).
#ifndef DND_TOOLS_BENCH_EXPERTS_BENCH_H_
#define DND_TOOLS_BENCH_EXPERTS_BENCH_H_

#include <array>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "protocol/status.h"
#include "tools/bench/compose_bench.h"
#include "tools/bench/judge.h"
#include "worker/experts/expert.h"

namespace dnd::bench {

struct ExpertsBenchOptions {
  std::string domain = "neural";  // recorded in the report
  int samples = 32;               // per concept
  int steps = 50;                 // DDIM steps
  double cfg = 5.0;               // classifier-free guidance scale w (the coordinator's default)
  double eta = 0.015;             // DDIM stochasticity (the coordinator's default)
  uint64_t seed = 0;              // sample s of every concept uses NormalGenerator(seed), sample s
  int batch = 32;                 // samples per Expert::Step call
  std::string data_dir;           // Fashion-MNIST (the judge's real recall)
  std::ostream* progress = nullptr;
};

// One concept's result. Value type.
struct ConceptResult {
  std::string expert;
  std::string concept_name;
  int label = 0;
  int samples = 0;
  int contains = 0;        // samples judged to contain the requested class
  int exact = 0;           // samples judged to hold that class and nothing else
  double real_recall = 0;  // the judge's recall on real single items of the class
  double required = 0;     // the gate: contains / samples >= required
  bool passed = false;
  std::array<int, 10> detected_counts{};     // how often each class was detected
  std::vector<std::vector<float>> canvases;  // the decoded samples
  double seconds = 0;                        // sampling + decoding + judging
};

struct ExpertsReport {
  std::string domain;
  std::string judge;
  ExpertsBenchOptions options;
  std::vector<ConceptResult> concepts;
  double wall_seconds = 0;
};

// The gate of issue 6 item 5: at least 0.85 of the samples contain the class, or, for a class whose
// real items the judge recognises less than 90% of the time, at least real_recall - 0.05.
double GateThreshold(double real_recall);

// Runs the gate over every concept of every expert. The experts' prediction types are converted
// with the schedule (epsilon, sample, v). Errors: InvalidArgument (samples, steps or batch < 1,
// cfg or eta negative), an expert's step error for any item, the decoder's and judge's errors.
StatusOr<ExpertsReport> RunExpertsBench(const ExpertsBenchOptions& options,
                                        const std::vector<experts::Expert*>& experts,
                                        const LatentDecoder& decode, Judge& judge);

// {"benchmark", "domain", "judge", "samples", "steps", "cfg", "eta", "seed", "wall_seconds",
//  "all_passed", "concepts": [{"expert", "concept", "samples", "contains", "exact", "real_recall",
//  "contains_rate", "exact_rate", "required", "passed", "detected": {class: count}, "seconds"}]}.
nlohmann::json ExpertsReportJson(const ExpertsReport& report);
// The gate table (markdown).
std::string ExpertsReportMarkdown(const ExpertsReport& report);
// One grid per expert: bench_experts_DOMAIN_EXPERT.png, a row per concept (its first `per_row`
// samples). Returns the files written.
StatusOr<std::vector<std::string>> WriteExpertsGrids(const ExpertsReport& report,
                                                     const std::string& dir, int per_row = 16);

}  // namespace dnd::bench

#endif  // DND_TOOLS_BENCH_EXPERTS_BENCH_H_
