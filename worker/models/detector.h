// The presence detector (docs/models.md, "Detector"): a multi-label classifier that says which of
// Fashion-MNIST's 10 classes appear on a 64x64 canvas holding 0 to 3 items. It judges every
// benchmark image; its accuracy on real canvases is the ceiling of the benchmark's numbers.
// No LibTorch in this header.
#ifndef DND_WORKER_MODELS_DETECTOR_H_
#define DND_WORKER_MODELS_DETECTOR_H_

#include <array>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "protocol/status.h"
#include "worker/models/canvases.h"
#include "worker/models/training.h"

namespace dnd::models {

using ClassProbabilities = std::array<float, kNumClasses>;  // indexed by Fashion-MNIST label

class Detector {
 public:
  // Loads a model file written by TrainDetector. NotFound, or DataLoss. Runs on the CPU.
  static StatusOr<std::unique_ptr<Detector>> Load(const std::string& path);
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // N canvases (N * 4096 floats in [0, 1], black = 0) -> for each, the probability that each class
  // is present. InvalidArgument for a size that is not a multiple of 4096. Thread-safe.
  StatusOr<std::vector<ClassProbabilities>> Probabilities(std::span<const float> canvases) const;
  // The classes judged present (probability >= threshold), as labels in increasing order.
  StatusOr<std::vector<std::vector<int>>> Detect(std::span<const float> canvases) const;

  float threshold() const;  // 0.5 unless the file says otherwise
  const std::string& metadata_json() const;

  struct Impl;

 private:
  explicit Detector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct DetectorTrainConfig {
  TrainOptions train;
  double max_blur_sigma_px = 1.2;  // Gaussian blur of a random strength up to this (augmentation)
  double max_noise_std = 0.05;     // additive noise of a random strength up to this
  double empty_fraction = 0.05;    // canvases with no item
  int eval_canvases_per_count = 1000;  // test-split canvases per item count (1, 2, 3) in the report
};

// Trains the detector (resumable), writes train.out and reports per-class precision and recall
// ("precision/<class>", "recall/<class>") and the exact-set accuracy on real test-split canvases
// with 1, 2 and 3 items ("exact_set/1", ...).
StatusOr<TrainReport> TrainDetector(const DetectorTrainConfig& config, const ProgressFn& progress);

// The detector's quality on real test-split canvases: `per_count` canvases each with 1, 2 and 3
// items of distinct classes at the side-by-side offsets of SideBySideOffsets (no overlap), seeded.
struct DetectorQuality {
  std::array<double, kNumClasses> precision{};
  std::array<double, kNumClasses> recall{};
  std::map<int, double> exact_set;  // item count -> fraction of canvases whose set is exact
};
StatusOr<DetectorQuality> EvaluateDetector(const Detector& detector, const std::string& data_dir,
                                           int per_count, uint64_t seed);

// Recall of the detector on single real test-split items of each class (centred), the benchmark's
// `real_recall`: index = label.
StatusOr<std::array<double, kNumClasses>> SingleItemRecall(const Detector& detector,
                                                           const std::string& data_dir,
                                                           int per_class, uint64_t seed);

}  // namespace dnd::models

#endif  // DND_WORKER_MODELS_DETECTOR_H_
