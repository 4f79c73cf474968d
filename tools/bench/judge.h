// The benchmarks' judge: says which Fashion-MNIST classes a 64x64 canvas shows. The real one wraps
// the trained presence detector (worker/models/detector.h); tests may pass a stand-in, so that the
// benchmark's plumbing is tested without trained weights. No LibTorch.
#ifndef DND_TOOLS_BENCH_JUDGE_H_
#define DND_TOOLS_BENCH_JUDGE_H_

#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"

namespace dnd::bench {

inline constexpr int kJudgeClasses = 10;

// Thread rule: call from one thread at a time.
class Judge {
 public:
  virtual ~Judge() = default;
  // N canvases (N * 4096 floats in [0, 1]) -> the labels judged present in each, increasing.
  // InvalidArgument for a size that is not a multiple of 4096.
  virtual StatusOr<std::vector<std::vector<int>>> Detect(std::span<const float> canvases) = 0;
  // The judge's recall on single real test-split items of each class (index = label): the
  // `real_recall` beside the experts gate. Unimplemented for a judge that cannot say.
  virtual StatusOr<std::array<double, kJudgeClasses>> RealRecall(const std::string& data_dir) = 0;
  // One line for reports: what judges (model file, threshold).
  virtual std::string Describe() const = 0;
};

// The trained presence detector at `model_path` (models::Detector). NotFound / DataLoss from
// loading it. RealRecall uses models::SingleItemRecall with `recall_items_per_class` items.
StatusOr<std::unique_ptr<Judge>> LoadDetectorJudge(const std::string& model_path,
                                                   int recall_items_per_class = 500);

}  // namespace dnd::bench

#endif  // DND_TOOLS_BENCH_JUDGE_H_
