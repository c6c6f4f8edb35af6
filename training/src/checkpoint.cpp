#include "xgrad/training/checkpoint.h"

#include <cstdint>

#include "xgrad/framework/random.h"
#include "xgrad/framework/safetensors.h"

namespace xgrad::training {
namespace {
const char* const progress_prefix = "progress.";
}  // namespace

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
