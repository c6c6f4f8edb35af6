#pragma once
// A per-epoch progress display: steps done of the total, the loss, tokens per second and the
// time left. On a terminal it redraws one line in place; in a log (CI, a file) it prints a
// plain line at most every few seconds, and always a last one when the epoch ends. The clock
// and the stream are injectable, so that tests can drive it.

#include <cstddef>
#include <functional>
#include <iostream>
#include <optional>
#include <string>

namespace xgrad::training {

struct ProgressOptions {
  std::string label = "";  // e.g. "epoch 3"
  std::size_t total_steps = 0;
  // Steps finished before this display started (a run resumed mid-epoch); rates and the
  // time left count only the steps seen here.
  std::size_t first_step = 0;
  std::ostream* out = &std::cerr;
  // Redraw in place; by default, whether `out` is std::cerr or std::cout on a terminal.
  std::optional<bool> interactive = std::nullopt;
  // Without a terminal: the least time between two plain lines.
  double plain_interval_seconds = 5.0;
  // Monotonic seconds; by default std::chrono::steady_clock.
  std::function<double()> clock = {};
};

class ProgressBar {
 public:
  explicit ProgressBar(ProgressOptions options);
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  // Ends a line left open on a terminal (e.g. when training stops with an error).
  ~ProgressBar();

  // `step` steps of this epoch are done (counting first_step); `loss` is the value to show
  // (e.g. the running mean); `tokens` were processed by the steps since the last update.
  void update(std::size_t step, double loss, std::size_t tokens);
  // Prints the final line with the elapsed time (once).
  void finish();

  // The status text as it would be printed now.
  std::string status() const;

 private:
  double elapsed() const;
  void draw(const std::string& text);

  ProgressOptions options_;
  bool interactive_ = false;
  double start_ = 0.0;
  double last_draw_ = 0.0;
  bool drawn_ = false;
  bool finished_ = false;
  std::size_t line_width_ = 0;
  std::size_t step_ = 0;
  double loss_ = 0.0;
  std::size_t tokens_ = 0;
};

}  // namespace xgrad::training
