#include "xgrad/training/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace xgrad::training {
namespace {

constexpr std::size_t bar_width = 24;
// A terminal line is redrawn at most this often; more only costs time.
constexpr double redraw_seconds = 0.1;

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool on_terminal(const std::ostream* out) {
  if (out == &std::cerr) return ::isatty(STDERR_FILENO) == 1;
  if (out == &std::cout) return ::isatty(STDOUT_FILENO) == 1;
  return false;
}

// "1:05" or "2:03:07".
std::string duration_text(double seconds) {
  const long total = std::lround(std::max(0.0, seconds));
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%ld:%02ld", total / 60, total % 60);
  }
  return text;
}

}  // namespace

ProgressBar::ProgressBar(ProgressOptions options) : options_(std::move(options)) {
  if (!options_.out) throw std::invalid_argument("ProgressBar: the output stream is null");
  if (!options_.clock) options_.clock = steady_seconds;
  interactive_ = options_.interactive.value_or(on_terminal(options_.out));
  start_ = options_.clock();
  last_draw_ = start_;
  step_ = options_.first_step;
}

ProgressBar::~ProgressBar() {
  if (interactive_ && drawn_ && !finished_) *options_.out << '\n' << std::flush;
}

double ProgressBar::elapsed() const { return options_.clock() - start_; }

void ProgressBar::update(std::size_t step, double loss, std::size_t tokens) {
  step_ = step;
  loss_ = loss;
  tokens_ += tokens;
  const double now = options_.clock();
  if (interactive_) {
    if (!drawn_ || now - last_draw_ >= redraw_seconds) draw(status());
  } else if (now - last_draw_ >= options_.plain_interval_seconds) {
    *options_.out << status() << '\n' << std::flush;
  } else {
    return;
  }
  last_draw_ = now;
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (interactive_) {
    draw(status());
    *options_.out << '\n' << std::flush;
  } else {
    *options_.out << status() << '\n' << std::flush;
  }
}

std::string ProgressBar::status() const {
  const double seconds = elapsed();
  const std::size_t total = options_.total_steps;
  std::string text = options_.label.empty() ? "" : options_.label + " ";
  if (interactive_) {
    const std::size_t filled = total == 0 ? bar_width : std::min(bar_width, step_ * bar_width / total);
    text += '[';
    text.append(filled, '#');
    text.append(bar_width - filled, '.');
    text += "] ";
  } else {
    text += "step ";
  }
  char numbers[160];
  const double rate = seconds > 0.0 ? static_cast<double>(tokens_) / seconds : 0.0;
  std::snprintf(numbers, sizeof numbers, "%zu/%zu loss %.4f %.0f tok/s ", step_, total, loss_, rate);
  text += numbers;
  const std::size_t done_here = step_ - std::min(step_, options_.first_step);
  if (finished_) {
    text += "elapsed ";
    text += duration_text(seconds);
  } else if (done_here == 0) {
    text += "ETA --:--";
  } else {
    const std::size_t left = total > step_ ? total - step_ : 0;
    text += "ETA ";
    text += duration_text(seconds * static_cast<double>(left) / static_cast<double>(done_here));
  }
  return text;
}

void ProgressBar::draw(const std::string& text) {
  // Spaces cover the rest of a longer previous line.
  *options_.out << '\r' << text << std::string(line_width_ > text.size() ? line_width_ - text.size() : 0, ' ') << std::flush;
  line_width_ = std::max(line_width_, text.size());
  drawn_ = true;
}

}  // namespace xgrad::training
