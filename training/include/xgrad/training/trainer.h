#pragma once
// Trains any nn::Module with a step function of the user's: epochs of batches in a seeded,
// resumable order; any optimizer and schedulers; gradient clipping and accumulation over
// micro-batches; a time budget, a step limit and an epoch count; validation that chooses the
// kept weights; atomic checkpoints that a run continues from exactly; Ctrl-C and SIGTERM; the
// skipping of steps whose loss or gradient is not finite; a progress bar; a CSV log; hooks.
//
//   training::Trainer trainer(model, optimizer, {.epochs = 10, .clip_norm = 1.0,
//                                             .checkpoint = "run/checkpoint.safetensors",
//                                             .best_weights = "run/model.safetensors", .log = "run/log.csv"});
//   trainer.add_scheduler(plateau, training::ScheduleAt::validation);
//   trainer.validation({"valid_loss"}, [&] { double l = ...; return training::Validation{-l, "valid loss ...", {l}}; });
//   trainer.fit([&](Generator& order) { return shuffled_batches(order); },
//               [&](const MyBatch& batch) { return training::StepOutput{model.loss(batch), batch.size()}; });
//
// docs/training.md walks through a complete example.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "xgrad/framework/optim.h"
#include "xgrad/framework/random.h"
#include "xgrad/framework/schedulers.h"
#include "xgrad/framework/tensor.h"
#include "xgrad/layers/module.h"
#include "xgrad/training/checkpoint.h"
#include "xgrad/training/csv_log.h"
#include "xgrad/training/distributed.h"

namespace xgrad::training {

// What the step function returns for one (micro-)batch.
struct StepOutput {
  Tensor<float> loss;      // a scalar of the graph just recorded: the trainer runs its backward
  std::size_t tokens = 0;  // what the speed column counts (tokens, sentences, images)
  // Data parallelism (TrainerOptions::group): how many items (examples, target tokens) `loss`
  // is the mean over. Each rank's loss is weighted by its share of their sum over the ranks,
  // so that the summed gradient is the global batch's mean; 0 on every rank: equal weights.
  std::size_t mean_over = 0;
};

// One validation, as the user's callback measured it.
struct Validation {
  double score = 0;            // chooses the kept weights (TrainerOptions::better) and drives plateau schedulers
  std::string summary;         // printed after the epoch
  std::vector<CsvCell> cells;  // the values of the validation columns of the CSV log
};

// Whether a higher or a lower validation score is the better one (accuracy, BLEU / a loss).
enum class Better { higher, lower };

// When the trainer steps a scheduler: after every optimizer step, after every complete epoch,
// or after every complete epoch with the validation score (ReduceLROnPlateau).
enum class ScheduleAt { every_step, every_epoch, validation };

// Passed to the on_step hooks after every optimizer step.
struct StepReport {
  std::size_t epoch = 0;
  std::size_t step = 0;          // optimizer steps over the run
  std::size_t batches_done = 0;  // of this epoch
  std::size_t batches = 0;       // in this epoch
  double loss = 0;               // mean over the step's micro-batches
  double gradient_norm = 0;      // before clipping
  double learning_rate = 0;      // of the optimizer's first group, as the step used it
  std::size_t tokens = 0;
  bool skipped = false;          // the loss or the gradient was not finite: no update
};

// Passed to the on_epoch hooks after every validation.
struct EpochReport {
  std::size_t epoch = 0;
  std::size_t step = 0;
  bool complete = true;  // false when a limit ended the epoch early
  double train_loss = 0;
  const Validation* validation = nullptr;
  bool best = false;     // the weights were kept as the best so far
  double seconds = 0;    // training time of the run so far
};

struct TrainerOptions {
  std::size_t epochs = 1;
  std::size_t max_steps = 0;         // optimizer steps; 0: no limit
  double time_budget_minutes = 0;    // training time, earlier segments of a resumed run included; 0: no limit
  double clip_norm = 0;              // largest global gradient norm; 0: no clipping (the norm is still measured)
  std::size_t accumulate = 1;        // micro-batches per optimizer step; their gradients are averaged
  std::filesystem::path checkpoint{};  // everything resume needs, written atomically; empty: no checkpoints
  std::size_t checkpoint_every = 0;  // optimizer steps between checkpoints; 0: after every epoch only
  std::filesystem::path best_weights{};  // the model's state_dict with the best validation score; empty: not kept
  // The model's state_dict after each of the last `keep_epochs` complete epochs, in this
  // directory (epoch_weights_file), for checkpoint averaging; each new one removes those of
  // epochs `keep_epochs` or more before it. 0: none kept.
  std::filesystem::path epoch_weights{};
  std::size_t keep_epochs = 0;
  std::filesystem::path log{};  // the CSV log; empty: none
  Better better = Better::higher;
  bool resume = false;                // continue from `checkpoint` instead of starting anew
  std::uint64_t seed = 1;             // of the data order
  std::size_t max_bad_steps = 10;     // non-finite steps in a row that stop the run
  // Epoch summaries and stops; nullptr: silent. A summary that cannot be written is a file_error
  // naming the stream ("standard output"), raised before that epoch's checkpoint.
  std::ostream* report = &std::cout;
  std::ostream* progress = &std::cerr;  // the progress bar (redrawn on a terminal, plain lines otherwise); nullptr: none
  // Data parallelism (distributed.h); nullptr: this process alone. Every rank runs fit with
  // the same options, data and seed: the same global batches reach every rank's step
  // function, which returns the mean loss of its own share of the batch and the count it is
  // a mean over (StepOutput::mean_over), by which the trainer weights it. The trainer starts every rank
  // from rank 0's weights (also when resuming: every rank reads the checkpoint, so it must be
  // readable where each rank runs), sums the gradients and the losses across ranks before
  // clipping and stepping, and stops all ranks together at a limit or when any rank is
  // interrupted. Rank 0 alone validates (the others take its score), and alone writes the
  // checkpoint, the kept weights, the epochs' weights, the log, the report and the progress.
  distributed::ProcessGroup* group = nullptr;
  std::size_t bucket_bytes = distributed::GradientReducer::default_bucket_bytes;  // of the gradient allreduce
  bool overlap_allreduce = true;  // with the last backward of each step (GradientReducer::Options)
};

enum class RunEnd { finished, limit_reached, interrupted };

// A checkpoint that cannot continue with the data given: it was saved in the middle of an
// epoch of more batches than this run's data gives.
class resume_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Trainer {
 public:
  // The model and optimizer must outlive the trainer. std::invalid_argument for options that
  // cannot work (accumulate 0, epochs 0, a checkpoint_every or resume without a checkpoint path).
  Trainer(nn::Module<float>& model, optim::Optimizer<float>& optimizer, TrainerOptions options);

  // Steps `scheduler` as `when` says and saves it in every checkpoint. Its type needs step(),
  // or step(double metric) for ScheduleAt::validation.
  template <class S>
  Trainer& add_scheduler(S& scheduler, ScheduleAt when) {
    if constexpr (requires { scheduler.step(0.0); }) {
      return add_scheduler(scheduler, when, [&scheduler](double score) { scheduler.step(score); });
    } else {
      return add_scheduler(scheduler, when, [&scheduler](double) { scheduler.step(); });
    }
  }
  Trainer& add_scheduler(optim::Scheduler& scheduler, ScheduleAt when, std::function<void(double score)> step);

  // Runs after every epoch (and when a limit or Ctrl-C stops one), in evaluation mode. Without
  // a validation the epoch's training loss, lower being better, chooses the kept weights.
  Trainer& validation(std::vector<std::string> columns, std::function<Validation()> validate);
  // The user's own logging.
  Trainer& on_step(std::function<void(const StepReport&)> hook);
  Trainer& on_epoch(std::function<void(const EpochReport&)> hook);

  // Trains from the start, or from the checkpoint with TrainerOptions::resume, until the
  // epochs are done or a limit or a signal stops the run (with a checkpoint).
  // `epoch_batches(order)` gives an epoch's batches (any type) in the order the generator
  // draws; `step(batch)` records the loss of one batch. Each optimizer step runs backward on
  // `accumulate` batches' losses, clips, and updates, or skips the update with a warning when
  // the loss or the gradient norm is not finite (a std::runtime_error after max_bad_steps
  // such steps in a row, leaving the last checkpoint as it was). A checkpoint past the end of
  // the data's epoch is a resume_error naming it and both numbers. The first step's loss must
  // train nothing but the model's parameters (a graph_error naming the others otherwise).
  template <class EpochBatches, class Step>
  RunEnd fit(EpochBatches&& epoch_batches, Step&& step) {
    using Batch = typename std::invoke_result_t<EpochBatches&, Generator&>::value_type;
    std::vector<Batch> batches;
    return run(
        [&](Generator& order) {
          batches = epoch_batches(order);
          return batches.size();
        },
        [&](std::size_t index) -> StepOutput { return step(batches[index]); });
  }

  // Where the run stands: after fit, its best score and epoch among others.
  const TrainingProgress& progress() const noexcept { return progress_; }

 private:
  struct Scheduled {
    optim::Scheduler* scheduler;
    ScheduleAt when;
    std::function<void(double)> step;
  };
  RunEnd run(const std::function<std::size_t(Generator&)>& begin_epoch,
             const std::function<StepOutput(std::size_t)>& step);
  // A graph_error naming every tensor the loss trains that the model does not hold: a
  // sub-layer that was never registered is neither saved nor, usually, trained.
  void refuse_unregistered_parameters(const Tensor<float>& loss) const;
  std::vector<const optim::Scheduler*> schedulers() const;
  void step_schedulers(ScheduleAt when, double score);
  // Saves the weights after `epoch` when TrainerOptions::keep_epochs asks, and removes the ones
  // that are no longer among the last keep_epochs.
  void keep_epoch_weights(std::size_t epoch) const;
  // Whether this process writes the run's files and output: rank 0, or a process alone.
  bool leader() const noexcept { return options_.group == nullptr || options_.group->rank() == 0; }
  // The weight of this rank's loss, a mean over `mean_over` items, in the global batch's mean.
  double share_of_mean(std::size_t mean_over) const;
  // True on every rank when `mine` is true on any (a limit, an interrupt), so that all stop together.
  bool on_any_rank(bool mine) const;

  nn::Module<float>& model_;
  optim::Optimizer<float>& optimizer_;
  TrainerOptions options_;
  std::vector<Scheduled> scheduled_;
  std::vector<std::string> validation_columns_;
  std::function<Validation()> validate_;
  std::vector<std::function<void(const StepReport&)>> step_hooks_;
  std::vector<std::function<void(const EpochReport&)>> epoch_hooks_;
  TrainingProgress progress_;
};

}  // namespace xgrad::training
