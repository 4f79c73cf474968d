// `dnd bench experts` and `dnd bench compose`: the command-line faces of experts_bench.h and
// compose_bench.h. This file's .cc builds the real experts (neural: the shipped weights through
// models::CreateAnyExpert; exact: the closed-form Fashion-MNIST experts), the shared autoencoder
// as the neural domain's decoder, and the trained presence detector as the judge.
#ifndef DND_TOOLS_BENCH_BENCH_COMMAND_H_
#define DND_TOOLS_BENCH_BENCH_COMMAND_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "protocol/status.h"
#include "tools/bench/compose_bench.h"
#include "worker/experts/expert.h"

namespace CLI {
class App;
}  // namespace CLI

namespace dnd::bench {

// Where the shipped model files are: $DND_MODELS_DIR, else the source tree's worker/models/weights
// (worker::ShippedModelsDir).
std::string DefaultModelsDir();
// <source dir>/tools/bench/compose_suite.json.
std::string DefaultSuiteFile();

// The experts of a domain, one per organisation in `names` ("footwear", "tops", "rest"):
// "neural": <models_dir>/<name>.pt (backend "neural", every concept of the file); "exact": the
// closed-form experts over the organisation's classes read from `data_dir`. InvalidArgument for
// another domain; the backends' errors (NotFound for a missing file).
StatusOr<std::vector<std::unique_ptr<experts::Expert>>> CreateDomainExperts(
    const std::string& domain, const std::vector<std::string>& names, const std::string& models_dir,
    const std::string& data_dir);

// The guidance scales the owners of a domain's experts serve them with (dnd-worker
// --guidance-scale; docs/method.md decision 16), by expert name: "neural": tops 10 (its quality
// gate is best there, docs/benchmarks/experts.md); footwear and rest, and every exact expert,
// declare none (the coordinator's default, 5). InvalidArgument for another domain.
StatusOr<std::map<std::string, double>> DomainGuidanceScales(const std::string& domain);

// The decoder of a domain: "neural" = <models_dir>/autoencoder.pt (FailedPrecondition when its
// latent space id differs from `latent_space_id`, unless that is empty); "exact" = (x + 1) / 2.
StatusOr<LatentDecoder> CreateDomainDecoder(const std::string& domain,
                                            const std::string& models_dir,
                                            const std::string& latent_space_id);

// Adds `dnd bench experts ...` and `dnd bench compose ...`.
void RegisterBenchCommand(CLI::App& app);

}  // namespace dnd::bench

#endif  // DND_TOOLS_BENCH_BENCH_COMMAND_H_
