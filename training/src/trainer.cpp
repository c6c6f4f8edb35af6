#include "xgrad/training/trainer.h"

#include <array>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/training/progress_bar.h"

namespace xgrad::training {
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

// A run stops after a time budget (counting earlier segments of a resumed run) or a number
// of optimizer steps, whichever comes first; 0 means no limit.
class StopCondition {
 public:
  StopCondition(double budget_minutes, std::size_t max_steps, double seconds_before)
      : budget_seconds_(budget_minutes * 60.0), max_steps_(max_steps), seconds_before_(seconds_before) {}

  // Training time including earlier segments.
  double seconds() const {
    return seconds_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  bool reached(std::size_t steps) const {
    return (max_steps_ != 0 && steps >= max_steps_) || (budget_seconds_ > 0 && seconds() >= budget_seconds_);
  }
  // Why reached() is true, for the report.
  std::string reason(std::size_t steps) const {
    if (max_steps_ != 0 && steps >= max_steps_) return detail::message("reached the limit of ", max_steps_, " steps");
    char text[64];
    std::snprintf(text, sizeof text, "reached the time budget of %.1f minutes", budget_seconds_ / 60.0);
    return text;
  }

 private:
  double budget_seconds_;
  std::size_t max_steps_;
  double seconds_before_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// The name a lost write gives the report stream: the user knows std::cout and std::cerr by these.
std::string stream_name(const std::ostream* out) {
  if (out == &std::cout) return "standard output";
  if (out == &std::cerr) return "standard error";
  return "the trainer's report stream";
}

// Epoch summaries and stops go to the report stream, when there is one. A summary that cannot
// be written stops the run before the epoch's checkpoint (the run can resume from the one
// before): output sent to a full disk or a closed pipe must not vanish silently.
template <class... Parts>
void report(std::ostream* out, Parts&&... parts) {
  if (out == nullptr) return;
  errno = 0;
  (*out << ... << parts) << std::endl;
  const int reason = errno;
  if (*out) return;
  throw file_error(detail::message(stream_name(out), ": writing failed (",
                                   reason != 0 ? std::strerror(reason) : "an earlier write", "); output was lost"));
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

}  // namespace

Trainer::Trainer(nn::Module<float>& model, optim::Optimizer<float>& optimizer, TrainerOptions options)
    : model_(model), optimizer_(optimizer), options_(std::move(options)) {
  if (!leader()) {  // rank 0 writes for the job; the checkpoint path stays, for resuming
    options_.best_weights.clear();
    options_.log.clear();
    options_.keep_epochs = 0;
    options_.report = nullptr;
    options_.progress = nullptr;
  }
  if (options_.epochs == 0) throw std::invalid_argument("Trainer: epochs must be at least 1");
  if (options_.accumulate == 0) throw std::invalid_argument("Trainer: accumulate must be at least 1 micro-batch per step");
  if (options_.max_bad_steps == 0) throw std::invalid_argument("Trainer: max_bad_steps must be at least 1");
  if (!(options_.clip_norm >= 0)) throw std::invalid_argument(detail::message("Trainer: clip_norm must be >= 0, not ", options_.clip_norm));
  if (options_.checkpoint.empty() && (options_.resume || options_.checkpoint_every != 0)) {
    throw std::invalid_argument("Trainer: resume and checkpoint_every need a checkpoint path");
  }
  if (options_.keep_epochs != 0 && options_.epoch_weights.empty()) {
    throw std::invalid_argument("Trainer: keep_epochs needs an epoch_weights directory");
  }
}

double Trainer::share_of_mean(std::size_t mean_over) const {
  double total = static_cast<double>(mean_over);
  options_.group->sum(std::span<double>(&total, 1));
  return total > 0 ? static_cast<double>(mean_over) / total : 1.0 / options_.group->size();
}

bool Trainer::on_any_rank(bool mine) const {
  if (options_.group == nullptr) return mine;
  double count = mine ? 1.0 : 0.0;
  options_.group->sum(std::span<double>(&count, 1));
  return count > 0;
}

void Trainer::keep_epoch_weights(std::size_t epoch) const {
  if (options_.keep_epochs == 0) return;
  std::error_code error;
  std::filesystem::create_directories(options_.epoch_weights, error);
  if (error) {
    throw file_error(options_.epoch_weights.string() + ": cannot create the directory of the epochs' weights (" +
                     error.message() + ")");
  }
  nn::save_state_dict(model_, epoch_weights_file(options_.epoch_weights, epoch).string());
  // Older files go only once the new one is whole; a run resumed with a smaller keep_epochs
  // sheds the surplus the same way.
  for (const auto& [kept_epoch, file] : kept_epoch_weights(options_.epoch_weights)) {
    if (kept_epoch + options_.keep_epochs <= epoch && !std::filesystem::remove(file, error) && error) {
      throw file_error(file.string() + ": cannot remove the weights of an epoch no longer kept (" + error.message() + ")");
    }
  }
}

Trainer& Trainer::add_scheduler(optim::Scheduler& scheduler, ScheduleAt when, std::function<void(double)> step) {
  scheduled_.push_back({&scheduler, when, std::move(step)});
  return *this;
}

Trainer& Trainer::validation(std::vector<std::string> columns, std::function<Validation()> validate) {
  validation_columns_ = std::move(columns);
  validate_ = std::move(validate);
  return *this;
}

Trainer& Trainer::on_step(std::function<void(const StepReport&)> hook) {
  step_hooks_.push_back(std::move(hook));
  return *this;
}

Trainer& Trainer::on_epoch(std::function<void(const EpochReport&)> hook) {
  epoch_hooks_.push_back(std::move(hook));
  return *this;
}

void Trainer::refuse_unregistered_parameters(const Tensor<float>& loss) const {
  const std::vector<nn::UnregisteredParameter<float>> unregistered = nn::unregistered_parameters(model_, loss);
  if (unregistered.empty()) return;
  std::string listed;
  for (const nn::UnregisteredParameter<float>& p : unregistered) listed += (listed.empty() ? "" : "; ") + p.description;
  throw graph_error(detail::message(
      "Trainer: the loss depends on ", unregistered.size(), " tensor(s) that require grad but are not parameters of the model (",
      listed, "), so checkpoints would not save them; register the layer that holds them (register_module) or keep "
      "them out of the graph (requires_grad false)"));
}

std::vector<const optim::Scheduler*> Trainer::schedulers() const {
  std::vector<const optim::Scheduler*> all;
  for (const Scheduled& s : scheduled_) all.push_back(s.scheduler);
  return all;
}

void Trainer::step_schedulers(ScheduleAt when, double score) {
  for (Scheduled& s : scheduled_) {
    if (s.when == when) s.step(score);
  }
}

RunEnd Trainer::run(const std::function<std::size_t(Generator&)>& begin_epoch,
                    const std::function<StepOutput(std::size_t)>& step) {
  Generator data_order(options_.seed);
  if (options_.resume) {
    std::vector<optim::Scheduler*> restored;
    for (Scheduled& s : scheduled_) restored.push_back(s.scheduler);
    progress_ = load_checkpoint(options_.checkpoint, model_, optimizer_, restored);
  } else {
    progress_ = TrainingProgress{};
    progress_.data_order = data_order.state();
  }
  std::optional<distributed::GradientReducer> reducer;
  if (options_.group != nullptr) {
    distributed::broadcast_state(model_, *options_.group);
    std::vector<Tensor<float>> parameters;
    for (const auto& entry : optimizer_.parameters()) parameters.push_back(entry.second);
    reducer.emplace(std::move(parameters), *options_.group,
                    distributed::GradientReducer::Options{.bucket_bytes = options_.bucket_bytes,
                                                          .overlap = options_.overlap_allreduce});
  }
  const StopCondition stop(options_.time_budget_minutes, options_.max_steps, progress_.seconds);
  std::vector<std::string> columns{"epoch", "step", "train_loss"};
  columns.insert(columns.end(), validation_columns_.begin(), validation_columns_.end());
  columns.insert(columns.end(), {"tokens_per_second", "seconds", "skipped_steps"});
  std::optional<CsvLog> log;
  if (!options_.log.empty()) log.emplace(options_.log.string(), columns);
  const InterruptCatcher interrupt;
  auto checkpoint = [&] {
    progress_.seconds = stop.seconds();
    if (!options_.checkpoint.empty() && leader()) {
      save_checkpoint(options_.checkpoint, model_, optimizer_, schedulers(), progress_);
    }
  };
  const std::string continue_hint =
      options_.checkpoint.empty() ? "" : "; the checkpoint " + options_.checkpoint.string() + " continues the run";
  // Without clipping the norm is still measured (the largest finite limit never scales).
  const double max_norm = options_.clip_norm > 0 ? options_.clip_norm : std::numeric_limits<double>::max();
  std::size_t bad_in_a_row = 0;
  const std::size_t steps_at_start = progress_.steps;
  while (progress_.epoch <= options_.epochs) {
    // The limit is tested before every step, so that a run resumed at its limit adds none.
    if (on_any_rank(stop.reached(progress_.steps))) {
      report(options_.report, "stopping: ", stop.reason(progress_.steps), continue_hint);
      return RunEnd::limit_reached;
    }
    data_order.set_state(progress_.data_order);
    const std::size_t batches = begin_epoch(data_order);
    if (progress_.batches_done > batches) {
      throw resume_error(detail::message("resume: the checkpoint ", options_.checkpoint.string(), " was saved after batch ",
                                         progress_.batches_done, " of epoch ", progress_.epoch,
                                         ", but the training data now gives only ", batches,
                                         " batches per epoch; resume with the run's data and batch size"));
    }
    std::optional<ProgressBar> bar;
    if (options_.progress != nullptr) {
      bar.emplace(ProgressOptions{.label = detail::message("epoch ", progress_.epoch, "/", options_.epochs),
                                  .total_steps = batches,
                                  .first_step = progress_.batches_done,
                                  .out = options_.progress});
    }
    double loss_sum = 0;
    std::size_t tokens = 0, good_steps = 0;
    const double epoch_start = stop.seconds();
    RunEnd end = RunEnd::finished;
    while (progress_.batches_done < batches) {
      if (on_any_rank(stop.reached(progress_.steps))) {
        end = RunEnd::limit_reached;
        break;
      }
      const double learning_rate = optimizer_.learning_rate();
      // One optimizer step over `group` micro-batches; their gradients are averaged, so each
      // loss is scaled before its backward (not at all for a single batch, whose bits stay).
      const std::size_t group = std::min(options_.accumulate, batches - progress_.batches_done);
      double step_loss = 0;
      std::size_t step_tokens = 0;
      for (std::size_t micro = 0; micro < group; ++micro) {
        StepOutput output = step(progress_.batches_done + micro);
        if (output.loss.size() != 1) {
          throw shape_error(detail::message("Trainer: the step function's loss must be a scalar, not ", output.loss.shape()));
        }
        if (progress_.steps == steps_at_start && micro == 0) refuse_unregistered_parameters(output.loss);
        double loss = output.loss.item();
        if (options_.group != nullptr) {  // this rank's share of the global batch's mean
          const double weight = share_of_mean(output.mean_over);
          loss *= weight;
          output.loss = output.loss * static_cast<float>(weight);
        }
        if (group > 1) output.loss = output.loss * (1.0f / static_cast<float>(group));
        if (reducer && micro + 1 == group) reducer->prepare_for_backward();
        output.loss.backward();
        step_loss += loss / double(group);
        step_tokens += output.tokens;
      }
      if (reducer) {  // the global batch's gradient, loss and tokens, on every rank
        reducer->sum();
        std::array<double, 2> totals{step_loss, static_cast<double>(step_tokens)};
        options_.group->sum(totals);
        step_loss = totals[0];
        step_tokens = static_cast<std::size_t>(totals[1]);
      }
      const double norm = optim::clip_grad_norm(optimizer_.parameters(), max_norm);  // what the step updates
      const bool finite = std::isfinite(step_loss) && std::isfinite(norm);
      if (finite) {
        optimizer_.step();
        bad_in_a_row = 0;
        loss_sum += step_loss;
        ++good_steps;
      } else {
        ++progress_.skipped_steps;
        ++bad_in_a_row;
        if (leader()) {
          std::cerr << "\nwarning: step " << progress_.steps + 1 << ": loss " << step_loss << ", gradient norm " << norm
                    << " are not both finite; the update is skipped (" << progress_.skipped_steps << " skipped so far)\n";
        }
        if (bad_in_a_row >= options_.max_bad_steps) {
          throw std::runtime_error(detail::message(
              bad_in_a_row, " steps in a row had a loss or gradient that is not finite; stopping. The last good checkpoint ",
              options_.checkpoint.string(), " is unchanged; try a lower learning rate or gradient clipping"));
        }
      }
      optimizer_.zero_grad();
      tokens += step_tokens;
      progress_.batches_done += group;
      ++progress_.steps;
      step_schedulers(ScheduleAt::every_step, 0);
      if (bar) bar->update(progress_.batches_done, good_steps ? loss_sum / double(good_steps) : 0.0, step_tokens);
      for (const auto& hook : step_hooks_) {
        hook({.epoch = progress_.epoch, .step = progress_.steps, .batches_done = progress_.batches_done,
              .batches = batches, .loss = step_loss, .gradient_norm = norm, .learning_rate = learning_rate,
              .tokens = step_tokens, .skipped = !finite});
      }
      if (on_any_rank(interrupt.caught())) {
        end = RunEnd::interrupted;
        break;
      }
      if (options_.checkpoint_every != 0 && progress_.steps % options_.checkpoint_every == 0) checkpoint();
    }
    if (bar) bar->finish();
    if (end == RunEnd::interrupted) {
      checkpoint();
      report(options_.report, "interrupted at step ", progress_.steps, continue_hint);
      return end;
    }
    const bool epoch_complete = progress_.batches_done == batches;
    const double training_seconds = stop.seconds() - epoch_start;  // the speed column leaves validation out
    const double train_loss = good_steps ? loss_sum / double(good_steps) : 0.0;
    Validation valid{.score = train_loss, .summary = "", .cells = {}};
    double kept_score = -train_loss;  // without a validation, the lowest training loss is kept
    if (validate_) {
      if (leader()) {
        model_.eval();
        valid = validate_();
        model_.train();
      }
      if (options_.group != nullptr) {  // rank 0's score; the others add nothing
        if (!leader()) valid.score = 0;
        options_.group->sum(std::span<double>(&valid.score, 1));
      }
      kept_score = options_.better == Better::higher ? valid.score : -valid.score;
    }
    report(options_.report, "epoch ", progress_.epoch, epoch_complete ? "" : " (partial)", ": train loss ",
           fixed(train_loss, 4), valid.summary.empty() ? "" : ", ", valid.summary);
    if (log) {
      std::vector<CsvCell> row{progress_.epoch, progress_.steps, train_loss};
      row.insert(row.end(), valid.cells.begin(), valid.cells.end());
      row.insert(row.end(),
                 {training_seconds > 0 ? double(tokens) / training_seconds : 0.0, stop.seconds(), progress_.skipped_steps});
      log->append(row);
    }
    const bool best = kept_score > progress_.best_score;
    if (best) {
      progress_.best_score = kept_score;
      progress_.best_epoch = progress_.epoch;
      if (!options_.best_weights.empty()) {
        nn::save_state_dict(model_, options_.best_weights.string());
        report(options_.report, "  best so far: saved ", options_.best_weights.string());
      }
    }
    for (const auto& hook : epoch_hooks_) {
      hook({.epoch = progress_.epoch, .step = progress_.steps, .complete = epoch_complete, .train_loss = train_loss,
            .validation = validate_ ? &valid : nullptr, .best = best, .seconds = stop.seconds()});
    }
    if (epoch_complete) {
      keep_epoch_weights(progress_.epoch);
      step_schedulers(ScheduleAt::every_epoch, valid.score);
      step_schedulers(ScheduleAt::validation, valid.score);
      ++progress_.epoch;
      progress_.batches_done = 0;
      progress_.data_order = data_order.state();
    }
    checkpoint();
    if (end == RunEnd::limit_reached) {
      report(options_.report, "stopping: ", stop.reason(progress_.steps), continue_hint);
      return end;
    }
  }
  return RunEnd::finished;
}

}  // namespace xgrad::training
