// The composition benchmark's metrics (issue 7 item 3, GenEval's definitions): an image is correct
// when the judge finds every requested class; a prompt is correct when any of its images is. Also
// the rates of images with a requested class missing and with an unrequested class present, and
// the mean share of the frame each expert got. Pure functions over judged images; no LibTorch.
#ifndef DND_TOOLS_BENCH_BENCH_METRICS_H_
#define DND_TOOLS_BENCH_BENCH_METRICS_H_

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dnd::bench {

// One judged image. Value type.
struct JudgedImage {
  int prompt = 0;  // index of the prompt in its suite
  uint64_t seed = 0;
  std::vector<int> requested;  // Fashion-MNIST labels asked for
  std::vector<int> detected;   // labels the judge found (any order)
  // Final share of the frame per requested class's expert (mean_j Q_ij of the last step), keyed
  // by expert name; empty for the ceiling.
  std::map<std::string, double> shares;
  bool failed = false;  // the job failed: counted as an image with every class missing
  std::string job_id;
  std::string error;  // why it failed

  // Every requested label is detected (and the job did not fail).
  bool Correct() const;
  // Some requested label is not detected.
  bool MissingRequested() const;
  // Some detected label was not requested.
  bool ExtraDetected() const;
};

// The counts of one strategy (or the ceiling) on one suite. Value type. Invariants (tested):
// correct_images <= images, correct_prompts <= prompts, missing_images + correct_images == images.
struct Tally {
  int images = 0;
  int correct_images = 0;
  int prompts = 0;          // distinct prompts among the images
  int correct_prompts = 0;  // prompts with at least one correct image
  int missing_images = 0;   // images with a requested class missing
  int extra_images = 0;     // images with an unrequested class present
  int failed_images = 0;    // jobs that failed (also counted in images and missing_images)
  std::map<std::string, double> mean_share;  // expert -> mean final share over its images
  // Wall time of the batch of jobs these images were made in (several strategies run together
  // share one batch), and the mean wall time of one job (submission queueing excluded), in
  // seconds; 0 = not measured.
  double wall_seconds = 0;
  double mean_job_seconds = 0;

  double PercentImages() const;
  double PercentPrompts() const;
  double PercentMissing() const;
  double PercentExtra() const;
};

// Counts `images` (all of one strategy on one suite).
Tally Count(const std::vector<JudgedImage>& images);

// {"images", "correct_images", "prompts", "correct_prompts", "missing_images", "extra_images",
//  "failed_images", "pct_images", "pct_prompts", "pct_missing", "pct_extra", "mean_share",
//  "wall_seconds", "mean_job_seconds"}.
nlohmann::json TallyJson(const Tally& tally);
// Per-image detail: prompt (name), seed, requested, detected (class names), correct, shares,
// job_id, error. `prompt_names[i]` names prompt i.
nlohmann::json ImagesJson(const std::vector<JudgedImage>& images,
                          const std::vector<std::string>& prompt_names);

// A row of the markdown table.
struct TableRow {
  std::string name;
  Tally tally;
};
// The markdown table of one suite: strategy, %images (correct/images), %prompts, missing, extra,
// mean share per expert (columns in `experts` order), mean job wall time.
std::string MarkdownTable(const std::vector<TableRow>& rows,
                          const std::vector<std::string>& experts);

}  // namespace dnd::bench

#endif  // DND_TOOLS_BENCH_BENCH_METRICS_H_
