// The progress bar (progress_bar.h).
#include "tools/progress_bar.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace dnd::tools {

std::optional<double> EstimateRemainingSeconds(uint32_t first_step, double first_seconds,
                                               uint32_t step, double now_seconds,
                                               uint32_t total_steps) {
  if (step >= total_steps) return 0.0;
  if (step <= first_step || now_seconds <= first_seconds) return std::nullopt;
  const double seconds_per_step = (now_seconds - first_seconds) / (step - first_step);
  return seconds_per_step * (total_steps - step);
}

std::string FormatDuration(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0) return "--:--";
  const auto whole = static_cast<long long>(std::floor(*seconds));
  const long long h = whole / 3600, m = (whole / 60) % 60, s = whole % 60;
  char buffer[48];
  if (h > 0) {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld", h, m, s);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld", m, s);
  }
  return buffer;
}

std::string FormatProgressLine(uint32_t step, uint32_t total_steps, double elapsed_seconds,
                               std::optional<double> eta_seconds, int bar_width) {
  const uint32_t shown = total_steps == 0 ? 0 : std::min(step, total_steps);
  const int percent = total_steps == 0 ? 0 : static_cast<int>(uint64_t{100} * shown / total_steps);
  const int filled =
      total_steps == 0 ? 0 : static_cast<int>(uint64_t(bar_width) * shown / total_steps);
  std::string line = "[" + std::string(filled, '#') + std::string(bar_width - filled, '-') + "]";
  char buffer[160];
  const int step_width = static_cast<int>(std::to_string(total_steps).size());
  std::snprintf(buffer, sizeof(buffer), "  %*u/%u  %3d%%  elapsed %s  ETA %s", step_width, shown,
                total_steps, percent, FormatDuration(elapsed_seconds).c_str(),
                FormatDuration(eta_seconds).c_str());
  return line + buffer;
}

ProgressBar::ProgressBar(std::ostream& out, bool interactive)
    : out_(out), interactive_(interactive) {}

void ProgressBar::Update(uint32_t step, uint32_t total_steps, double elapsed_seconds) {
  if (!first_step_) {
    first_step_ = step;
    first_seconds_ = elapsed_seconds;
  }
  const std::optional<double> eta =
      EstimateRemainingSeconds(*first_step_, first_seconds_, step, elapsed_seconds, total_steps);
  const std::string line = FormatProgressLine(step, total_steps, elapsed_seconds, eta);
  if (interactive_) {
    out_ << '\r' << line;
    if (line.size() < last_length_) out_ << std::string(last_length_ - line.size(), ' ');
    out_.flush();
    last_length_ = line.size();
    drawn_ = true;
    return;
  }
  const int decile = total_steps == 0 ? 0 : static_cast<int>(uint64_t{10} * step / total_steps);
  if (decile <= last_decile_) return;
  last_decile_ = decile;
  out_ << line << '\n';
  out_.flush();
}

void ProgressBar::Finish() {
  if (interactive_ && drawn_) {
    out_ << '\n';
    out_.flush();
    drawn_ = false;
  }
}

}  // namespace dnd::tools
