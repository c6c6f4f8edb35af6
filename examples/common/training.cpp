#include "training.h"

#include <cstdio>

#include <xgrad/framework/random.h>

namespace xgrad::cli {
namespace {
const char* const progress_prefix = "progress.";
}  // namespace

void save_checkpoint(const std::string& path, const nn::Module<float>& model, const optim::Optimizer<float>& optimizer,
                     const optim::Scheduler& scheduler, const TrainingProgress& progress) {
  safetensors::Writer writer;
  nn::write_state_dict(model, writer, "model.");
  optimizer.save_state(writer, "optimizer.");
  scheduler.save_state(writer, "scheduler.");
  optim::StateWriter state(writer, progress_prefix);
  state.integer("epoch", static_cast<std::int64_t>(progress.epoch));
  state.integer("batches_done", static_cast<std::int64_t>(progress.batches_done));
  state.integer("steps", static_cast<std::int64_t>(progress.steps));
  state.text("data_order", progress.data_order);
  state.real("best_score", progress.best_score);
  state.integer("best_epoch", static_cast<std::int64_t>(progress.best_epoch));
  state.real("seconds", progress.seconds);
  state.text("dropout_generator", default_generator().state());
  writer.write(path);
}

TrainingProgress load_checkpoint(const std::string& path, nn::Module<float>& model, optim::Optimizer<float>& optimizer,
                                 optim::Scheduler& scheduler) {
  const safetensors::File file = safetensors::File::read(path);
  optim::StateReader state(file, progress_prefix);
  TrainingProgress progress;
  progress.epoch = static_cast<std::size_t>(state.count("epoch"));
  progress.batches_done = static_cast<std::size_t>(state.count("batches_done"));
  progress.steps = static_cast<std::size_t>(state.count("steps"));
  progress.data_order = state.text("data_order");
  progress.best_score = state.real("best_score");
  progress.best_epoch = static_cast<std::size_t>(state.count("best_epoch"));
  progress.seconds = state.real("seconds");
  const std::string dropout_generator = state.text("dropout_generator");
  state.refuse_unread_keys();
  Generator check;  // both generator states must parse before anything changes
  state.validate([&] {
    check.set_state(progress.data_order);
    check.set_state(dropout_generator);
  });
  nn::load_state_dict(model, file, "model.");
  optimizer.load_state(file, "optimizer.");
  scheduler.load_state(file, "scheduler.");
  default_generator().set_state(dropout_generator);
  return progress;
}

StopCondition::StopCondition(double budget_minutes, std::size_t max_steps, double seconds_before)
    : budget_seconds_(budget_minutes * 60.0), max_steps_(max_steps), seconds_before_(seconds_before) {}

double StopCondition::seconds() const {
  return seconds_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

bool StopCondition::reached(std::size_t steps) const {
  return (max_steps_ != 0 && steps >= max_steps_) || (budget_seconds_ > 0 && seconds() >= budget_seconds_);
}

std::string StopCondition::reason(std::size_t steps) const {
  if (max_steps_ != 0 && steps >= max_steps_) return "reached --max-steps " + std::to_string(max_steps_);
  char text[64];
  std::snprintf(text, sizeof text, "reached the time budget of %.1f minutes", budget_seconds_ / 60.0);
  return text;
}

}  // namespace xgrad::cli
