#include "xgrad/training/checkpoint.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <system_error>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/random.h"
#include "xgrad/framework/safetensors.h"

namespace xgrad::training {
namespace {
const char* const progress_prefix = "progress.";
const std::string epoch_weights_prefix = "epoch-";
const std::string epoch_weights_suffix = ".safetensors";

// The epoch a file name of epoch_weights_file's form names; nothing for any other name.
std::optional<std::size_t> epoch_of(const std::string& name) {
  if (name.size() <= epoch_weights_prefix.size() + epoch_weights_suffix.size() || !name.starts_with(epoch_weights_prefix) ||
      !name.ends_with(epoch_weights_suffix)) {
    return std::nullopt;
  }
  const std::string digits =
      name.substr(epoch_weights_prefix.size(), name.size() - epoch_weights_prefix.size() - epoch_weights_suffix.size());
  if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoul(digits);
}
}  // namespace

std::filesystem::path epoch_weights_file(const std::filesystem::path& directory, std::size_t epoch) {
  return directory / (epoch_weights_prefix + std::to_string(epoch) + epoch_weights_suffix);
}

std::vector<std::pair<std::size_t, std::filesystem::path>> kept_epoch_weights(const std::filesystem::path& directory) {
  std::vector<std::pair<std::size_t, std::filesystem::path>> kept;
  std::error_code error;
  if (!std::filesystem::exists(directory, error)) return kept;
  for (std::filesystem::directory_iterator entry(directory, error), end; !error && entry != end; entry.increment(error)) {
    if (const std::optional<std::size_t> epoch = epoch_of(entry->path().filename().string())) {
      kept.emplace_back(*epoch, entry->path());
    }
  }
  if (error) throw file_error(directory.string() + ": cannot list the kept epochs' weights (" + error.message() + ")");
  std::sort(kept.begin(), kept.end());
  return kept;
}

std::string scheduler_prefix(std::size_t index) {
  return index == 0 ? "scheduler." : "scheduler_" + std::to_string(index + 1) + ".";
}

void save_checkpoint(const std::filesystem::path& path, const nn::Module<float>& model,
                     const optim::Optimizer<float>& optimizer, const std::vector<const optim::Scheduler*>& schedulers,
                     const TrainingProgress& progress) {
  safetensors::Writer writer;
  nn::write_state_dict(model, writer, "model.");
  optimizer.save_state(writer, "optimizer.");
  for (std::size_t i = 0; i < schedulers.size(); ++i) schedulers[i]->save_state(writer, scheduler_prefix(i));
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
  writer.write(path.string());
}

TrainingProgress load_checkpoint(const std::filesystem::path& path, nn::Module<float>& model,
                                 optim::Optimizer<float>& optimizer, const std::vector<optim::Scheduler*>& schedulers) {
  const safetensors::File file = safetensors::File::read(path.string());
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
  // A scheduler more in the file than the run has would be dropped without a word.
  optim::StateReader(file, scheduler_prefix(schedulers.size())).refuse_unread_keys();
  Generator check;  // both generator states must parse before anything changes
  state.validate([&] {
    check.set_state(progress.data_order);
    check.set_state(dropout_generator);
  });
  nn::load_state_dict(model, file, "model.");
  optimizer.load_state(file, "optimizer.");
  for (std::size_t i = 0; i < schedulers.size(); ++i) schedulers[i]->load_state(file, scheduler_prefix(i));
  default_generator().set_state(dropout_generator);
  return progress;
}

}  // namespace xgrad::training
