#pragma once
// A training run's checkpoint: one safetensors file, written atomically, that holds
// everything a resumed run needs to continue exactly as if it had not stopped:
//   "model."        the model's state_dict
//   "optimizer."    the optimizer's state (moments, step counts, learning rate)
//   "scheduler."    the first scheduler's state, "scheduler_2." the second's, ...
//   "progress."     where the run stands (TrainingProgress) and the state of the default
//                   generator, which draws dropout masks
// A crash leaves the previous checkpoint or the new one, never a mix of the two.

#include <cstddef>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/framework/optim.h"
#include "xgrad/framework/schedulers.h"
#include "xgrad/layers/module.h"

namespace xgrad::training {

// Where a run stands. Saved with every checkpoint, so that a resumed run continues with the
// same remaining batches in the same order and the same dropout masks.
struct TrainingProgress {
  std::size_t epoch = 1;         // the epoch under way, from 1
  std::size_t batches_done = 0;  // batches of that epoch already trained on
  std::size_t steps = 0;         // optimizer steps over all epochs
  std::string data_order;        // the data generator's state when the epoch began
  // The best validation score so far, negated when lower is better (TrainerOptions::better)
  // and the negated training loss without a validation: the kept weights have the highest.
  double best_score = -std::numeric_limits<double>::infinity();
  std::size_t best_epoch = 0;
  double seconds = 0;             // training time of the earlier segments of the run
  std::size_t skipped_steps = 0;  // steps skipped because the loss or a gradient was not finite
};

// The prefix of the i-th scheduler's state in a checkpoint ("scheduler.", "scheduler_2.", ...):
// none is a prefix of another, as a shared file requires.
std::string scheduler_prefix(std::size_t index);

void save_checkpoint(const std::filesystem::path& path, const nn::Module<float>& model,
                     const optim::Optimizer<float>& optimizer, const std::vector<const optim::Scheduler*>& schedulers,
                     const TrainingProgress& progress);

// Restores everything save_checkpoint wrote into the objects given and returns the progress.
// A missing or damaged file, a missing or unknown key (a scheduler more than `schedulers`
// among them), or state of another shape is a file_error naming the file and the key; everything is checked before anything changes
// but the model, optimizer and schedulers, which each check their own part first.
TrainingProgress load_checkpoint(const std::filesystem::path& path, nn::Module<float>& model,
                                 optim::Optimizer<float>& optimizer, const std::vector<optim::Scheduler*>& schedulers);

// The file of the weights kept after epoch `epoch` (TrainerOptions::keep_epochs) in `directory`:
// "epoch-<epoch>.safetensors", a model's state_dict as nn::save_state_dict writes it.
std::filesystem::path epoch_weights_file(const std::filesystem::path& directory, std::size_t epoch);

// The epochs whose weights `directory` keeps, with their files, oldest first; none when the
// directory does not exist. Other files are ignored. file_error when it cannot be read.
std::vector<std::pair<std::size_t, std::filesystem::path>> kept_epoch_weights(const std::filesystem::path& directory);

}  // namespace xgrad::training
