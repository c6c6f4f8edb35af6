#include "training.h"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <stdexcept>

#include <xgrad/framework/errors.h>
#include <xgrad/framework/heap.h>
#include <xgrad/framework/state_io.h>

#include "cli.h"
#include "progress.h"

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
  state.integer("skipped_steps", static_cast<std::int64_t>(progress.skipped_steps));
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
  progress.skipped_steps = static_cast<std::size_t>(state.count("skipped_steps"));
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

TrainingProgress starting_progress(bool resuming, const Generator& data_order, const std::string& checkpoint_path,
                                   nn::Module<float>& model, optim::Optimizer<float>& optimizer,
                                   optim::Scheduler& scheduler) {
  if (resuming) return load_checkpoint(checkpoint_path, model, optimizer, scheduler);
  TrainingProgress progress;
  progress.data_order = data_order.state();
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

namespace {

volatile std::sig_atomic_t interrupted = 0;
extern "C" void note_interrupt(int) { interrupted = 1; }

// Routes SIGINT (Ctrl-C) and SIGTERM (kill, a scheduler's or a container's stop) to a flag
// for the loop to check between steps, for the lifetime of a run: both end it with a checkpoint.
class InterruptCatcher {
 public:
  InterruptCatcher()
      : previous_interrupt_(std::signal(SIGINT, note_interrupt)), previous_terminate_(std::signal(SIGTERM, note_interrupt)) {
    interrupted = 0;
  }
  ~InterruptCatcher() {
    std::signal(SIGINT, previous_interrupt_);
    std::signal(SIGTERM, previous_terminate_);
  }
  InterruptCatcher(const InterruptCatcher&) = delete;
  InterruptCatcher& operator=(const InterruptCatcher&) = delete;
  bool caught() const { return interrupted != 0; }

 private:
  void (*previous_interrupt_)(int);
  void (*previous_terminate_)(int);
};

// A checkpoint saved in the middle of an epoch of more batches than this run's data gives
// cannot be continued: the epoch would never end.
void refuse_position_past_the_data(const TrainingLoop& loop, const TrainingProgress& progress, std::size_t batches) {
  if (progress.batches_done <= batches) return;
  throw UsageError(detail::message("--resume: the checkpoint ", loop.checkpoint_path, " was saved after batch ",
                                   progress.batches_done, " of epoch ", progress.epoch,
                                   ", but the training data now gives only ", batches,
                                   " batches per epoch; resume with the run's data and --batch"));
}

}  // namespace

RunEnd run_training(const TrainingLoop& loop, Generator& data_order, TrainingProgress& progress, const StopCondition& stop) {
  std::vector<std::string> columns{"epoch", "step", "train_loss"};
  columns.insert(columns.end(), loop.validation_columns.begin(), loop.validation_columns.end());
  columns.insert(columns.end(), {"tokens_per_second", "seconds", "skipped_steps"});
  CsvLog log(loop.log_path, columns);
  const InterruptCatcher interrupt;
  keep_freed_heap_memory();  // every step allocates the previous step's buffers again
  auto checkpoint = [&] {
    progress.seconds = stop.seconds();
    save_checkpoint(loop.checkpoint_path, loop.model, loop.optimizer, loop.scheduler, progress);
  };
  // Without clipping the norm is still measured (the largest finite limit never scales).
  const double max_norm = loop.clip > 0 ? loop.clip : std::numeric_limits<double>::max();
  std::size_t bad_in_a_row = 0;
  while (progress.epoch <= loop.epochs) {
    // The limit is tested before every step, so that a run resumed at its limit adds none.
    if (stop.reached(progress.steps)) {
      std::printf("stopping: %s; continue with --resume\n", stop.reason(progress.steps).c_str());
      return RunEnd::limit_reached;
    }
    data_order.set_state(progress.data_order);
    const std::vector<models::Batch> batches = loop.sampler.epoch(data_order);
    refuse_position_past_the_data(loop, progress, batches.size());
    ProgressBar bar({.label = "epoch " + std::to_string(progress.epoch) + "/" + std::to_string(loop.epochs),
                     .total_steps = batches.size(),
                     .first_step = progress.batches_done});
    double loss_sum = 0;
    std::size_t tokens = 0, good_steps = 0;
    const double epoch_start = stop.seconds();
    RunEnd end = RunEnd::finished;
    for (std::size_t b = progress.batches_done; b < batches.size(); ++b) {
      if (stop.reached(progress.steps)) {
        end = RunEnd::limit_reached;
        break;
      }
      const StepOutcome outcome = loop.forward_backward(batches[b]);
      const double norm = optim::clip_grad_norm(loop.optimizer.parameters(), max_norm);  // what the step updates
      if (std::isfinite(outcome.loss) && std::isfinite(norm)) {
        loop.optimizer.step();
        bad_in_a_row = 0;
        loss_sum += outcome.loss;
        ++good_steps;
      } else {
        ++progress.skipped_steps;
        ++bad_in_a_row;
        std::cerr << "\nwarning: step " << progress.steps + 1 << ": loss " << outcome.loss << ", gradient norm " << norm
                  << " are not both finite; the update is skipped (" << progress.skipped_steps << " skipped so far)\n";
        if (bad_in_a_row >= loop.max_bad_steps) {
          throw std::runtime_error(detail::message(
              bad_in_a_row, " steps in a row had a loss or gradient that is not finite; stopping. The last good checkpoint ",
              loop.checkpoint_path, " is unchanged; try a lower --lr or --clip"));
        }
      }
      loop.optimizer.zero_grad();
      tokens += outcome.tokens;
      ++progress.batches_done;
      ++progress.steps;
      bar.update(progress.batches_done, good_steps ? loss_sum / double(good_steps) : 0.0, outcome.tokens);
      if (interrupt.caught()) {
        end = RunEnd::interrupted;
        break;
      }
      if (loop.checkpoint_every != 0 && progress.steps % loop.checkpoint_every == 0) checkpoint();
    }
    bar.finish();
    if (end == RunEnd::interrupted) {
      checkpoint();
      std::printf("interrupted at step %zu: checkpoint saved in %s; continue with --resume\n", progress.steps,
                  loop.checkpoint_path.c_str());
      return end;
    }
    const bool epoch_complete = progress.batches_done == batches.size();
    const double training_seconds = stop.seconds() - epoch_start;  // the speed column leaves validation out
    loop.model.eval();
    const Validation valid = loop.validate();
    loop.model.train();
    const double train_loss = good_steps ? loss_sum / double(good_steps) : 0.0;
    std::printf("epoch %zu%s: train loss %.4f, %s\n", progress.epoch, epoch_complete ? "" : " (partial)", train_loss,
                valid.summary.c_str());
    std::vector<CsvCell> row{progress.epoch, progress.steps, train_loss};
    row.insert(row.end(), valid.cells.begin(), valid.cells.end());
    row.insert(row.end(), {training_seconds > 0 ? double(tokens) / training_seconds : 0.0, stop.seconds(), progress.skipped_steps});
    log.append(row);
    if (valid.score > progress.best_score) {
      progress.best_score = valid.score;
      progress.best_epoch = progress.epoch;
      nn::save_state_dict(loop.model, loop.weights_path);
      std::printf("  best so far: saved %s\n", loop.weights_path.c_str());
    }
    if (epoch_complete) {
      loop.scheduler.step(valid.score);
      ++progress.epoch;
      progress.batches_done = 0;
      progress.data_order = data_order.state();
    }
    checkpoint();
    flush_standard_output();  // the epoch's report, lost to a full disk, stops the run (it can resume)
    if (end == RunEnd::limit_reached) {
      std::printf("stopping: %s; continue with --resume\n", stop.reason(progress.steps).c_str());
      return end;
    }
  }
  return RunEnd::finished;
}

}  // namespace xgrad::cli
