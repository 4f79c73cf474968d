// The prompt suites of `dnd bench compose` (issue 7): read from tools/bench/compose_suite.json, the
// data file that fixes every prompt and seed (pairs of classes from different experts, triples with
// one class per expert, the tuning subset of the beta/gamma sweep, and the --quick selection).
// Used by compose_bench.cc and its tests. No LibTorch.
#ifndef DND_TOOLS_BENCH_BENCH_SUITE_H_
#define DND_TOOLS_BENCH_BENCH_SUITE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "protocol/status.h"

namespace dnd::bench {

// One prompt: the requested classes (Fashion-MNIST class names, at most one per expert, in the
// file's expert order) and the seeds of its images. Value type.
struct Prompt {
  std::vector<std::string> classes;
  std::vector<uint64_t> seeds;
  // "sandal+coat".
  std::string Name() const;
};

// A named list of prompts ("pairs", "triples"). Value type.
struct Suite {
  std::string name;
  std::vector<Prompt> prompts;
  // prompts.size() * seeds: the number of images one strategy makes.
  int NumImages() const;
};

// The whole data file. Value type.
struct SuiteFile {
  std::vector<std::string> expert_order;                    // "footwear", "tops", "rest"
  std::map<std::string, std::vector<std::string>> experts;  // expert -> its classes
  std::vector<Suite> suites;                                // the reported suites, file order
  std::vector<Suite> tuning;                                // the sweep's subset (other seeds)
  std::map<std::string, std::vector<int>> quick_prompts;    // suite -> prompt indices
  int quick_seeds_per_prompt = 1;
  int quick_steps = 20;
  std::map<std::string, std::vector<int>> grid_prompts;  // suite -> prompts shown in grids

  // The expert that serves `class_name`; NotFound when none does.
  StatusOr<std::string> ExpertOf(const std::string& class_name) const;
  // The suite of that name among `suites`; NotFound listing the names otherwise.
  StatusOr<Suite> FindSuite(const std::string& name) const;
};

// Parses the data file's JSON text. InvalidArgument (with the path of the offending field) for
// malformed JSON, a missing field, an unknown class name, a class served by two experts, a prompt
// with two classes of one expert or a class no expert serves, a prompt without seeds, or an index
// in "quick"/"grid_prompts" outside its suite.
StatusOr<SuiteFile> ParseSuiteFile(const std::string& json_text);
// Reads and parses `path`. NotFound when it cannot be read; ParseSuiteFile's errors otherwise.
StatusOr<SuiteFile> LoadSuiteFile(const std::string& path);

// The --quick subset of `suite`: the prompts named in file.quick_prompts[suite.name], each with its
// first quick_seeds_per_prompt seeds. An empty suite when the file names none for it.
Suite QuickSubset(const SuiteFile& file, const Suite& suite);

}  // namespace dnd::bench

#endif  // DND_TOOLS_BENCH_BENCH_SUITE_H_
