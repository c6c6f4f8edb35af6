#pragma once
// What the training programs share around their loops: where a run stands, one checkpoint
// file that holds everything a resumed run needs, and when to stop.

#include <chrono>
#include <cstddef>
#include <limits>
#include <string>

#include <xgrad/framework/optim.h>
#include <xgrad/framework/schedulers.h>
#include <xgrad/layers/module.h>

namespace xgrad::cli {

// Where a training run stands. Saved with every checkpoint, so that --resume continues
// with the same remaining batches in the same order and the same dropout masks.
struct TrainingProgress {
  std::size_t epoch = 1;         // the epoch under way, from 1
  std::size_t batches_done = 0;  // batches of that epoch already trained on
  std::size_t steps = 0;         // optimizer steps over all epochs
  std::string data_order;        // the data generator's state when the epoch began
  double best_score = -std::numeric_limits<double>::infinity();  // best validation score, higher is better
  std::size_t best_epoch = 0;
  double seconds = 0;  // training time of the earlier segments of the run
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

}  // namespace xgrad::cli
