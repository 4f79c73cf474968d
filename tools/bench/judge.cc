// The presence detector as the benchmarks' judge (judge.h). The only file of tools/bench that
// touches the detector.
#include "tools/bench/judge.h"

#include "worker/models/detector.h"

namespace dnd::bench {
namespace {

class DetectorJudge : public Judge {
 public:
  DetectorJudge(std::unique_ptr<models::Detector> detector, std::string path, int per_class)
      : detector_(std::move(detector)), path_(std::move(path)), per_class_(per_class) {}

  StatusOr<std::vector<std::vector<int>>> Detect(std::span<const float> canvases) override {
    return detector_->Detect(canvases);
  }

  StatusOr<std::array<double, kJudgeClasses>> RealRecall(const std::string& data_dir) override {
    DND_ASSIGN_OR_RETURN(auto recall,
                         models::SingleItemRecall(*detector_, data_dir, per_class_, /*seed=*/7));
    std::array<double, kJudgeClasses> out{};
    for (int i = 0; i < kJudgeClasses; ++i) out[i] = recall[i];
    return out;
  }

  std::string Describe() const override {
    return "presence detector " + path_ + " (threshold " + std::to_string(detector_->threshold()) +
           ")";
  }

 private:
  std::unique_ptr<models::Detector> detector_;
  std::string path_;
  int per_class_;
};

}  // namespace

StatusOr<std::unique_ptr<Judge>> LoadDetectorJudge(const std::string& model_path,
                                                   int recall_items_per_class) {
  DND_ASSIGN_OR_RETURN(auto detector, models::Detector::Load(model_path));
  return std::unique_ptr<Judge>(
      new DetectorJudge(std::move(detector), model_path, recall_items_per_class));
}

}  // namespace dnd::bench
