#pragma once
// What every training program shares around its own model: the flags of a training run, the
// start of a run in its --out directory (a new model, or the saved one with --resume), and
// the training itself: Adam, a learning-rate schedule (halved when the validation score stops
// rising, or a warm-up with inverse-square-root or cosine decay for Transformers), batches
// of similar lengths, and the library's Trainer with the run's files.

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/layers/module.h>
#include <xgrad/models/batching.h>
#include <xgrad/models/metrics.h>
#include <xgrad/models/transformer_input.h>
#include <xgrad/train.h>

#include "cli.h"
#include "run_directory.h"

namespace xgrad::cli {

// The flags of `train` that are not about the model's shape. A program sets its defaults as
// the initial values before declare_training_flags.
struct TrainingFlags {
  std::filesystem::path out{};
  // max_vocab: the embeddings and output layers grow with the vocabulary. min_freq, max_vocab
  // and max_length are text's (declare_training_flags declares them, declare_run_flags not).
  std::size_t epochs = 10, batch = 64, min_freq = 2, max_vocab = 100000, max_length = 100, threads = 2, seed = 1;
  std::size_t max_steps = 0, checkpoint_every = 0;
  std::size_t keep_epochs = 0;  // the weights after each of the last N epochs, kept in the run's epochs/ folder
  double dropout = 0.5, lr = 1e-3, clip = 1.0, label_smoothing = 0.0, time_budget = 0;
  // "plateau": halve the rate when the validation score stops rising; "inverse-sqrt" and
  // "cosine": rise linearly over `warmup` steps, then decay (optim::WarmupInverseSqrtLR,
  // optim::WarmupCosineLR down to 0 at the last epoch's end).
  std::string schedule = "plateau";
  std::size_t warmup = 4000;
  double beta2 = 0.999;  // Adam's; Transformers train with 0.98
  std::string precision = "float32";  // of the matrix products: "float32" or "bf16" (blas::FloatProducts)
  bool resume = false;
};

// Declares the flags on `command`; `examples` is what the program's data holds ("sentence
// pairs", "texts"), for the help.
void declare_training_flags(Command& command, TrainingFlags& flags, const std::string& examples);
// The same without the flags of text (--min-freq, --max-vocab, --max-length): for a program
// whose examples are not token sequences (images).
void declare_run_flags(Command& command, TrainingFlags& flags, const std::string& examples);

// The shape of a recurrent encoder, as the programs' flags give it.
struct RecurrentShapeFlags {
  std::size_t emb = 256, hidden = 512, layers = 1;
  std::string cell = "gru";
};

// Declares --emb, --hidden (explained by `hidden_help`), --layers and --cell.
void declare_recurrent_shape_flags(Command& command, RecurrentShapeFlags& flags, const std::string& hidden_help);
// The four as model flags, which a resumed run must repeat.
std::vector<ModelFlag> recurrent_shape_model_flags(const RecurrentShapeFlags& flags);

// The shape of a Transformer, as the programs' flags give it.
struct TransformerShapeFlags {
  std::size_t model_size = 256, heads = 4, feedforward = 1024, encoder_layers = 3, decoder_layers = 3, max_positions = 256;
  std::string activation = "relu", positions = "sinusoidal";
  bool post_norm = false;
};

// Declares --d-model, --heads, --ff-size, --encoder-layers, --decoder-layers (when
// `with_decoder`), --activation, --positions, --post-norm and --max-positions.
void declare_transformer_shape_flags(Command& command, TransformerShapeFlags& flags, bool with_decoder);
// Those flags as model flags, which a resumed run must repeat.
std::vector<ModelFlag> transformer_shape_model_flags(const TransformerShapeFlags& flags, bool with_decoder);
// `options` (a Transformer model's: TransformerTranslatorOptions, TransformerClassifierOptions)
// with the shape the flags give; the decoder's layers stay as `options` has them.
template <class Options>
Options with_transformer_shape(Options options, const TransformerShapeFlags& flags) {
  options.model_size = flags.model_size;
  options.heads = flags.heads;
  options.feedforward_size = flags.feedforward;
  options.encoder_layers = flags.encoder_layers;
  options.activation = models::transformer_activation_from_string(flags.activation);
  options.norm_first = !flags.post_norm;
  options.positions = models::position_kind_from_string(flags.positions);
  options.max_positions = flags.max_positions;
  return options;
}

// Begins a run in `directory`: with --resume the model `load_saved` reads back, otherwise the
// one `build_new` makes, whose files `save_new` writes once the directory is claimed (every
// check has passed by then).
template <class Model>
std::unique_ptr<Model> begin_run(RunDirectory& directory, bool resume,
                                 const std::function<std::unique_ptr<Model>()>& load_saved,
                                 const std::function<std::unique_ptr<Model>()>& build_new,
                                 const std::function<void(const Model&)>& save_new) {
  std::unique_ptr<Model> model = resume ? load_saved() : build_new();
  directory.claim();
  if (resume) {
    std::printf("resuming %s\n", directory.path().c_str());
  } else if (directory.writes()) {
    save_new(*model);
  }
  return model;
}

// One program's training: its step on a batch of example rows, and its validation.
struct TrainingTask {
  const std::vector<std::size_t>& lengths;  // of the training examples: batches gather similar ones
  std::vector<std::string> validation_columns;
  std::function<training::Validation()> validate;
  // The step on a batch of example rows; its StepOutput::mean_over counts what the loss is a
  // mean over (the rows, or the target tokens), which weights each rank's share of a batch.
  std::function<training::StepOutput(const models::Batch&)> step;
  // "validation BLEU 23.10": how the final line names the best score.
  std::function<std::string(double score)> describe_best;
};

// A classifier's validation: scored by accuracy, with macro-F1 beside it, for the columns
// classification_columns names.
inline const std::vector<std::string> classification_columns{"valid_accuracy", "valid_macro_f1"};
training::Validation classification_validation(const models::ConfusionMatrix& matrix);
// "validation accuracy 87.18%": how a classifier's final line names its best score.
std::string describe_accuracy(double accuracy);

// Trains `model` as the flags say, into the directory's checkpoint, weights and log; returns
// the program's exit status (130 when Ctrl-C or SIGTERM ended the run).
int train_model(nn::Module<float>& model, const TrainingFlags& flags, const RunDirectory& directory,
                const TrainingTask& task);

}  // namespace xgrad::cli
