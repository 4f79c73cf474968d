// The progress bar of `dnd submit --wait` and `dnd watch`: step k/N, percent, elapsed time and an
// ETA from the rate observed so far. On a terminal one line is redrawn in place; otherwise (logs,
// pipes) one line is printed per ~10% so the output stays readable. Formatting is exposed as pure
// functions for tests.
#ifndef DND_TOOLS_PROGRESS_BAR_H_
#define DND_TOOLS_PROGRESS_BAR_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace dnd::tools {

// Remaining seconds at `step` of `total_steps`, from the rate between the first observation
// (first_step at first_seconds) and now (step at now_seconds):
//   (now - first) / (step - first_step) * (total_steps - step).
// nullopt while no step has completed since the first observation (the rate is unknown) or when
// the clock did not advance; 0 once step >= total_steps.
std::optional<double> EstimateRemainingSeconds(uint32_t first_step, double first_seconds,
                                               uint32_t step, double now_seconds,
                                               uint32_t total_steps);

// "0:07", "12:34", "1:02:03" (rounded down to whole seconds); "--:--" for nullopt or a negative or
// non-finite value.
std::string FormatDuration(std::optional<double> seconds);

// "[###########-------------------]  12/50  24%  elapsed 0:03  ETA 0:10": a bar of `bar_width`
// cells, '#' for the completed fraction (rounded down). total_steps 0 shows 0%.
std::string FormatProgressLine(uint32_t step, uint32_t total_steps, double elapsed_seconds,
                               std::optional<double> eta_seconds, int bar_width = 30);

// Draws progress to `out` (stderr in the CLI). Not thread-safe; one per watched job.
class ProgressBar {
 public:
  // `interactive`: redraw one line with '\r' (a terminal); else print a line per ~10%.
  ProgressBar(std::ostream& out, bool interactive);

  // Records that `step` of `total_steps` were done `elapsed_seconds` after the watch began, and
  // draws when there is something new to show.
  void Update(uint32_t step, uint32_t total_steps, double elapsed_seconds);
  // Ends the bar's line (interactive mode) so what follows starts on a fresh line.
  void Finish();

 private:
  std::ostream& out_;
  bool interactive_;
  std::optional<uint32_t> first_step_;
  double first_seconds_ = 0;
  int last_decile_ = -1;    // non-interactive: the last 10% bucket printed
  size_t last_length_ = 0;  // interactive: length of the line drawn, to blank leftovers
  bool drawn_ = false;
};

}  // namespace dnd::tools

#endif  // DND_TOOLS_PROGRESS_BAR_H_
