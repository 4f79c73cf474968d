// GenEval-style counts and their JSON / markdown forms (bench_metrics.h).
#include "tools/bench/bench_metrics.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "worker/experts/fashion_mnist.h"

namespace dnd::bench {
namespace {

bool Has(const std::vector<int>& labels, int label) {
  return std::find(labels.begin(), labels.end(), label) != labels.end();
}

double Percent(int part, int whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

std::string Fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, v);
  return buffer;
}

nlohmann::json LabelNames(const std::vector<int>& labels) {
  nlohmann::json names = nlohmann::json::array();
  const auto all = experts::FashionMnistClassNames();
  for (int l : labels) {
    names.push_back(l >= 0 && l < static_cast<int>(all.size()) ? std::string(all[l])
                                                               : std::to_string(l));
  }
  return names;
}

}  // namespace

bool JudgedImage::Correct() const { return !failed && !MissingRequested(); }

bool JudgedImage::MissingRequested() const {
  if (failed) return true;
  for (int r : requested) {
    if (!Has(detected, r)) return true;
  }
  return false;
}

bool JudgedImage::ExtraDetected() const {
  if (failed) return false;
  for (int d : detected) {
    if (!Has(requested, d)) return true;
  }
  return false;
}

double Tally::PercentImages() const { return Percent(correct_images, images); }
double Tally::PercentPrompts() const { return Percent(correct_prompts, prompts); }
double Tally::PercentMissing() const { return Percent(missing_images, images); }
double Tally::PercentExtra() const { return Percent(extra_images, images); }

Tally Count(const std::vector<JudgedImage>& images) {
  Tally t;
  std::set<int> prompts;
  std::set<int> correct_prompts;
  std::map<std::string, std::pair<double, int>> shares;  // expert -> (sum, count)
  for (const JudgedImage& image : images) {
    ++t.images;
    prompts.insert(image.prompt);
    if (image.Correct()) {
      ++t.correct_images;
      correct_prompts.insert(image.prompt);
    }
    if (image.MissingRequested()) ++t.missing_images;
    if (image.ExtraDetected()) ++t.extra_images;
    if (image.failed) ++t.failed_images;
    for (const auto& [expert, share] : image.shares) {
      shares[expert].first += share;
      shares[expert].second += 1;
    }
  }
  t.prompts = static_cast<int>(prompts.size());
  t.correct_prompts = static_cast<int>(correct_prompts.size());
  for (const auto& [expert, sum_count] : shares) {
    t.mean_share[expert] = sum_count.first / sum_count.second;
  }
  return t;
}

nlohmann::json TallyJson(const Tally& t) {
  nlohmann::json shares = nlohmann::json::object();
  for (const auto& [expert, share] : t.mean_share) shares[expert] = share;
  return {{"images", t.images},
          {"correct_images", t.correct_images},
          {"prompts", t.prompts},
          {"correct_prompts", t.correct_prompts},
          {"missing_images", t.missing_images},
          {"extra_images", t.extra_images},
          {"failed_images", t.failed_images},
          {"pct_images", t.PercentImages()},
          {"pct_prompts", t.PercentPrompts()},
          {"pct_missing", t.PercentMissing()},
          {"pct_extra", t.PercentExtra()},
          {"mean_share", shares},
          {"wall_seconds", t.wall_seconds},
          {"mean_job_seconds", t.mean_job_seconds}};
}

nlohmann::json ImagesJson(const std::vector<JudgedImage>& images,
                          const std::vector<std::string>& prompt_names) {
  nlohmann::json out = nlohmann::json::array();
  for (const JudgedImage& image : images) {
    nlohmann::json item = {
        {"prompt", image.prompt >= 0 && image.prompt < static_cast<int>(prompt_names.size())
                       ? prompt_names[image.prompt]
                       : std::to_string(image.prompt)},
        {"seed", image.seed},
        {"requested", LabelNames(image.requested)},
        {"detected", LabelNames(image.detected)},
        {"correct", image.Correct()}};
    if (!image.shares.empty()) item["shares"] = image.shares;
    if (!image.job_id.empty()) item["job_id"] = image.job_id;
    if (image.failed) item["error"] = image.error;
    out.push_back(std::move(item));
  }
  return out;
}

std::string MarkdownTable(const std::vector<TableRow>& rows,
                          const std::vector<std::string>& experts) {
  std::string out = "| strategy | %images | %prompts | requested missing | unrequested present |";
  std::string rule = "|---|---|---|---|---|";
  for (const std::string& e : experts) {
    out += " share " + e + " |";
    rule += "---|";
  }
  out += " mean job (s) |\n" + rule + "---|\n";
  for (const TableRow& row : rows) {
    const Tally& t = row.tally;
    out += "| " + row.name + " | " + Fixed(t.PercentImages(), 1) + " (" +
           std::to_string(t.correct_images) + "/" + std::to_string(t.images) + ") | " +
           Fixed(t.PercentPrompts(), 1) + " (" + std::to_string(t.correct_prompts) + "/" +
           std::to_string(t.prompts) + ") | " + Fixed(t.PercentMissing(), 1) + " | " +
           Fixed(t.PercentExtra(), 1) + " |";
    for (const std::string& e : experts) {
      auto it = t.mean_share.find(e);
      out += " " + (it == t.mean_share.end() ? std::string("–") : Fixed(it->second, 3)) + " |";
    }
    out +=
        " " + (t.mean_job_seconds > 0 ? Fixed(t.mean_job_seconds, 1) : std::string("–")) + " |\n";
  }
  return out;
}

}  // namespace dnd::bench
