#pragma once
// What the training programs share around their loops: where a run stands, one checkpoint
// file that holds everything a resumed run needs, and when to stop.

#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <xgrad/framework/optim.h>
#include <xgrad/framework/random.h>
#include <xgrad/framework/schedulers.h>
#include <xgrad/layers/module.h>
#include <xgrad/models/batching.h>

#include "csv_log.h"

namespace xgrad::cli {

// The file of a run's --out directory that holds everything --resume needs.
inline constexpr const char* checkpoint_file_name = "checkpoint.safetensors";

// Where a training run stands. Saved with every checkpoint, so that --resume continues
// with the same remaining batches in the same order and the same dropout masks.
struct TrainingProgress {
  std::size_t epoch = 1;         // the epoch under way, from 1
  std::size_t batches_done = 0;  // batches of that epoch already trained on
  std::size_t steps = 0;         // optimizer steps over all epochs
  std::string data_order;        // the data generator's state when the epoch began
  double best_score = -std::numeric_limits<double>::infinity();  // best validation score, higher is better
  std::size_t best_epoch = 0;
  double seconds = 0;              // training time of the earlier segments of the run
  std::size_t skipped_steps = 0;   // steps skipped because the loss or a gradient was not finite
};

// Writes, in one file and atomically, the model's weights ("model."), the optimizer's and the
// scheduler's state, the progress and the state of the default generator (dropout masks):
// a crash leaves the previous checkpoint or this one, never a mix of the two.
void save_checkpoint(const std::string& path, const nn::Module<float>& model, const optim::Optimizer<float>& optimizer,
                     const optim::Scheduler& scheduler, const TrainingProgress& progress);
// Restores everything save_checkpoint wrote (file_error naming the file and key otherwise)
// and returns the progress.
TrainingProgress load_checkpoint(const std::string& path, nn::Module<float>& model, optim::Optimizer<float>& optimizer,
                                 optim::Scheduler& scheduler);

// Where a run starts: a fresh run's progress, with the data order as `data_order` is seeded,
// or with `resuming` everything load_checkpoint restores from `checkpoint_path`.
TrainingProgress starting_progress(bool resuming, const Generator& data_order, const std::string& checkpoint_path,
                                   nn::Module<float>& model, optim::Optimizer<float>& optimizer,
                                   optim::Scheduler& scheduler);

// A run stops after a time budget (counting earlier segments of a resumed run) or a number
// of optimizer steps, whichever comes first; 0 means no limit.
class StopCondition {
 public:
  StopCondition(double budget_minutes, std::size_t max_steps, double seconds_before);
  bool reached(std::size_t steps) const;
  // Training time including earlier segments.
  double seconds() const;
  // Why reached() is true, for the log.
  std::string reason(std::size_t steps) const;

 private:
  double budget_seconds_;
  std::size_t max_steps_;
  double seconds_before_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// One epoch's validation, as the program measured it.
struct Validation {
  double score = 0;             // higher is better: chooses the kept weights and drives the scheduler
  std::string summary;          // printed after the epoch
  std::vector<CsvCell> cells;   // the program's columns of the CSV log
};

// The outcome of one batch's forward and backward pass (gradients are in the parameters).
struct StepOutcome {
  double loss = 0;
  std::size_t tokens = 0;
};

// A training run's loop over epochs, shared by the programs. Each epoch draws its batches
// from `sampler` in the order the data generator gives; each step runs forward_backward,
// clips the gradients and updates, but skips the update (with a warning, counted in the
// progress) when the loss or the gradient norm is not finite, and stops with an error after
// max_bad_steps such steps in a row without touching the last good checkpoint. After each
// epoch (and when a limit stops the run) it validates, keeps the best weights, logs a CSV
// row and writes the checkpoint; it also checkpoints every checkpoint_every steps. Ctrl-C
// (SIGINT) and SIGTERM save the checkpoint and end the run. Resuming at a batch past the
// end of the sampler's epoch (smaller data, a larger batch) is a UsageError naming the
// checkpoint and both numbers.
struct TrainingLoop {
  nn::Module<float>& model;
  optim::Optimizer<float>& optimizer;
  optim::ReduceLROnPlateau& scheduler;
  const models::BucketBatchSampler& sampler;
  std::string checkpoint_path;
  std::string weights_path;
  std::string log_path;
  std::vector<std::string> validation_columns;  // the CSV columns the validation fills
  std::size_t epochs = 1;
  double clip = 0;                 // maximum gradient norm; 0: no clipping
  std::size_t checkpoint_every = 0;  // steps between checkpoints; 0: at the end of epochs only
  std::size_t max_bad_steps = 10;
  std::function<StepOutcome(const models::Batch&)> forward_backward;
  std::function<Validation()> validate;
};

enum class RunEnd { finished, limit_reached, interrupted };

// Trains from `progress` (a fresh run's, or one load_checkpoint returned) until the epochs
// are done or `stop` is reached. `data_order` must be seeded as the run began.
RunEnd run_training(const TrainingLoop& loop, Generator& data_order, TrainingProgress& progress, const StopCondition& stop);

}  // namespace xgrad::cli
