#include "training_program.h"

#include <xgrad/framework/blas.h>
#include <xgrad/framework/heap.h>
#include <xgrad/framework/isa.h>
#include <xgrad/framework/optim.h>
#include <xgrad/framework/schedulers.h>
#include <xgrad/models/model_directory.h>
#include <xgrad/models/vocabulary.h>

#include "data_checks.h"

namespace xgrad::cli {

void declare_run_flags(Command& command, TrainingFlags& flags, const std::string& examples) {
  command.path("--out", flags.out, "DIR", "model directory to create (or to continue with --resume)").required();
  command.size("--epochs", flags.epochs, "N", "epochs to train").range(1, 1000);
  command.size("--batch", flags.batch, "N", examples + " per batch").range(1, 4096);
  command.real("--dropout", flags.dropout, "P", "dropout probability").range(0, 0.95);
  command.real("--lr", flags.lr, "X", "Adam learning rate (the peak, after a warm-up)").above(0, 1);
  command.real("--beta2", flags.beta2, "X", "Adam's second-moment decay").above(0, 1);
  command.choice("--schedule", flags.schedule, {"plateau", "inverse-sqrt", "cosine"},
                 "learning-rate schedule: halve on a validation plateau, or warm up then decay");
  command.size("--warmup", flags.warmup, "N", "warm-up steps of inverse-sqrt and cosine").range(1, 10000000);
  command.real("--clip", flags.clip, "X", "clip the global gradient norm to X (0: no clipping)").range(0, 1e6);
  command.real("--label-smoothing", flags.label_smoothing, "X", "label smoothing of the loss").range(0, 0.5);
  command.size("--seed", flags.seed, "N", "seed of initialisation, dropout and data order");
  command.size("--threads", flags.threads, "N", "threads for matrix products").range(1, 256);
  command.choice("--precision", flags.precision, {"float32", "bf16"},
                 "matrix products' operands; bf16: mixed precision, with float32 sums, weights and optimizer");
  command.size("--max-steps", flags.max_steps, "N", "stop after N optimizer steps (0: no limit)");
  command.real("--time-budget", flags.time_budget, "MIN", "stop after MIN minutes (0: no limit)").range(0, 1e6);
  command.size("--checkpoint-every", flags.checkpoint_every, "N", "also checkpoint every N steps (0: at epoch ends)");
  command.size("--keep-epochs", flags.keep_epochs, "N",
               "keep the weights after each of the last N epochs in DIR/epochs, for averaging (0: none)")
      .range(0, 1000);
  command.flag("--resume", flags.resume, "continue the run saved in --out (with the same data flags)");
}

void declare_training_flags(Command& command, TrainingFlags& flags, const std::string& examples) {
  declare_run_flags(command, flags, examples);
  command.size("--min-freq", flags.min_freq, "N", "minimum count of a vocabulary word").range(1, 1000000);
  command.size("--max-vocab", flags.max_vocab, "N", "keep at most the N most frequent words per vocabulary")
      .range(8, models::max_vocabulary_size);
  command.size("--max-length", flags.max_length, "N", "skip (and count) " + examples + " with more than N tokens")
      .range(1, 100000);
}

void declare_recurrent_shape_flags(Command& command, RecurrentShapeFlags& flags, const std::string& hidden_help) {
  command.size("--emb", flags.emb, "N", "embedding size").range(1, 4096);
  command.size("--hidden", flags.hidden, "N", hidden_help).range(1, 4096);
  command.size("--layers", flags.layers, "N", "encoder layers").range(1, 8);
  command.choice("--cell", flags.cell, {"gru", "lstm"}, "recurrent cell");
}

void declare_transformer_shape_flags(Command& command, TransformerShapeFlags& flags, bool with_decoder) {
  command.size("--d-model", flags.model_size, "N", "model width (embeddings and every layer)").range(1, 4096);
  command.size("--heads", flags.heads, "N", "attention heads (they must divide --d-model)").range(1, 256);
  command.size("--ff-size", flags.feedforward, "N", "inner width of the feed-forward blocks").range(1, 65536);
  command.size("--encoder-layers", flags.encoder_layers, "N", "encoder layers").range(1, 64);
  if (with_decoder) command.size("--decoder-layers", flags.decoder_layers, "N", "decoder layers").range(1, 64);
  command.choice("--activation", flags.activation, {"relu", "gelu"}, "feed-forward activation");
  command.choice("--positions", flags.positions, {"sinusoidal", "learned"}, "positional encoding");
  command.flag("--post-norm", flags.post_norm, "normalise after each residual block, as the original paper (default: before)");
  command.size("--max-positions", flags.max_positions, "N", "longest sentence the model reads or writes").range(1, 65536);
}

std::vector<ModelFlag> transformer_shape_model_flags(const TransformerShapeFlags& flags, bool with_decoder) {
  std::vector<ModelFlag> named{{"--d-model", std::to_string(flags.model_size)},
                               {"--heads", std::to_string(flags.heads)},
                               {"--ff-size", std::to_string(flags.feedforward)},
                               {"--encoder-layers", std::to_string(flags.encoder_layers)},
                               {"--activation", flags.activation},
                               {"--positions", flags.positions},
                               {"--post-norm", flags.post_norm ? "on" : "off"},
                               {"--max-positions", std::to_string(flags.max_positions)}};
  if (with_decoder) named.push_back({"--decoder-layers", std::to_string(flags.decoder_layers)});
  return named;
}

namespace {

// The run's schedule, when the trainer steps it, and how.
struct Schedule {
  std::unique_ptr<optim::Scheduler> scheduler;
  training::ScheduleAt when;
  std::function<void(double score)> step;
};

template <class S>
Schedule every_step(std::unique_ptr<S> scheduler) {
  S& stepped = *scheduler;
  return {std::move(scheduler), training::ScheduleAt::every_step, [&stepped](double) { stepped.step(); }};
}

Schedule make_schedule(optim::Adam<float>& optimizer, const TrainingFlags& flags, std::size_t batches_per_epoch) {
  const auto warmup = static_cast<std::int64_t>(flags.warmup);
  if (flags.schedule == "inverse-sqrt") return every_step(std::make_unique<optim::WarmupInverseSqrtLR>(optimizer, warmup));
  if (flags.schedule == "cosine") {
    const auto total = static_cast<std::int64_t>(flags.epochs * batches_per_epoch);
    if (total <= warmup) {
      throw UsageError(detail::message("--schedule cosine needs more steps than --warmup ", flags.warmup, ": --epochs ",
                              flags.epochs, " gives ", total));
    }
    return every_step(std::make_unique<optim::WarmupCosineLR>(
        optimizer, optim::WarmupCosineOptions{.warmup_steps = warmup, .total_steps = total}));
  }
  auto plateau = std::make_unique<optim::ReduceLROnPlateau>(
      optimizer, optim::PlateauOptions{.mode = optim::PlateauMode::max, .factor = 0.5, .patience = 0});
  optim::ReduceLROnPlateau& stepped = *plateau;
  return {std::move(plateau), training::ScheduleAt::validation, [&stepped](double score) { stepped.step(score); }};
}

}  // namespace

std::vector<ModelFlag> recurrent_shape_model_flags(const RecurrentShapeFlags& flags) {
  return {{"--emb", std::to_string(flags.emb)},
          {"--hidden", std::to_string(flags.hidden)},
          {"--layers", std::to_string(flags.layers)},
          {"--cell", flags.cell}};
}

training::Validation classification_validation(const models::ConfusionMatrix& matrix) {
  char summary[96];
  std::snprintf(summary, sizeof summary, "valid accuracy %.2f%%, macro-F1 %.4f", 100 * matrix.accuracy(), matrix.macro_f1());
  return training::Validation{matrix.accuracy(), summary, {matrix.accuracy(), matrix.macro_f1()}};
}

std::string describe_accuracy(double accuracy) {
  char text[48];
  std::snprintf(text, sizeof text, "validation accuracy %.2f%%", 100 * accuracy);
  return text;
}

int train_model(nn::Module<float>& model, const TrainingFlags& flags, const RunDirectory& directory,
                const TrainingTask& task) {
  if (flags.precision == "bf16") {
    blas::set_float_products(blas::FloatProducts::bf16);
    std::printf("matrix products in bf16 with float32 sums (%s)\n",
                has_extension(Avx512Extension::bf16) ? "AVX-512 BF16"
                                                     : "no AVX-512 BF16 here: float32 products of rounded values, slower");
  }
  optim::Adam<float> optimizer =
      building("the optimizer's state",
               [&] { return optim::Adam<float>(model.named_parameters(), {.lr = flags.lr, .beta2 = flags.beta2}); });
  const models::BucketBatchSampler sampler(task.lengths, {.batch_size = flags.batch});
  const Schedule schedule = make_schedule(optimizer, flags, sampler.batches_per_epoch());
  // Under mpirun with several ranks, each trains on its slice of every global batch.
  distributed::ProcessGroup& group = distributed::world();
  const bool parallel = group.size() > 1;
  const auto rank = static_cast<std::size_t>(group.rank()), size = static_cast<std::size_t>(group.size());
  const auto step_on_share = [&](const models::Batch& rows) {
    if (!parallel) return task.step(rows);
    models::Batch share = models::rank_share(rows, rank, size);
    if (share.empty()) {  // a batch of fewer examples than ranks: this rank adds a zero gradient
      return training::StepOutput{sum(model.parameters().front()) * 0.0f, 0, 0};
    }
    return task.step(share);
  };
  training::Trainer trainer(model, optimizer,
                            {.epochs = flags.epochs,
                             .max_steps = flags.max_steps,
                             .time_budget_minutes = flags.time_budget,
                             .clip_norm = flags.clip,
                             .checkpoint = directory.checkpoint(),
                             .checkpoint_every = flags.checkpoint_every,
                             .best_weights = directory.file(models::model_file::weights),
                             .epoch_weights = directory.epochs(),
                             .keep_epochs = flags.keep_epochs,
                             .log = directory.log(),
                             .resume = flags.resume,
                             .seed = flags.seed,
                             .group = parallel ? &group : nullptr});
  trainer.add_scheduler(*schedule.scheduler, schedule.when, schedule.step);
  trainer.validation(task.validation_columns, task.validate);
  keep_freed_heap_memory();  // every step allocates the previous step's buffers again
  const training::RunEnd end = building("training batches", [&] {
    return trainer.fit([&](Generator& order) { return sampler.epoch(order); }, step_on_share);
  });
  if (end == training::RunEnd::interrupted) return 130;
  std::printf("best %s (epoch %zu), weights in %s\n", task.describe_best(trainer.progress().best_score).c_str(),
              trainer.progress().best_epoch, directory.file(models::model_file::weights).c_str());
  return 0;
}

}  // namespace xgrad::cli
