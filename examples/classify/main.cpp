// xgrad-classify: trains, evaluates and runs a sequence classifier: a recurrent encoder with
// attention pooling (--arch rnn) or a Transformer encoder with attention or mean pooling
// (--arch transformer).
//
//   xgrad-classify train --train F --out DIR [--valid F | --valid-split X] [--arch A] [--tokenizer penn|moses|space] [--lang en|de] [...]
//   xgrad-classify eval --model DIR --data F
//   xgrad-classify predict --model DIR [--explain-svg FILE]
//
// Data files are TSV with a header; --text-column and --label-column pick the columns by
// name. A model directory holds config.json (the model's options and architecture),
// vocab.json, labels.json, model.safetensors (the weights with the best validation accuracy),
// checkpoint.safetensors (what --resume needs), log.csv, when validation was held out of
// --train, held_out.tsv (those texts, for eval), and run.lock and run.json (run_directory.h);
// each is written atomically. The vocabulary records how the texts are read (--tokenizer: raw
// English as SST-2 and TREC are tokenised by default, or through the Moses rule of --lang;
// models/text.h), and eval and predict read theirs the same way.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <xgrad/framework.h>
#include <xgrad/models/batching.h>
#include <xgrad/models/classification_data.h>
#include <xgrad/models/classifier.h>
#include <xgrad/models/metrics.h>
#include <xgrad/models/model_directory.h>
#include <xgrad/models/transformer_classifier.h>
#include <xgrad/models/vocabulary.h>

#include "cli.h"
#include "data_checks.h"
#include "subword_flags.h"
#include "svg.h"
#include "text.h"
#include "training_program.h"

namespace {

using namespace xgrad;
using models::LabelSet;
using models::Vocabulary;
namespace fs = std::filesystem;

// Longer texts are skipped in training and evaluation and refused by predict: SST-2's and
// TREC's longest have under 60 tokens, and memory grows with the longest text of a batch.
constexpr std::size_t default_max_length = 512;
// With --valid-split, the texts held out for validation, saved with the model.
const char* const held_out_file_name = "held_out.tsv";

struct TrainFlags {
  fs::path train, valid;
  std::string text_column = "sentence", label_column = "label";
  double valid_split = 0.1, word_dropout = 0.1;
  std::string architecture = "rnn";
  std::size_t attention_size = 128;
  std::string attention = "additive";
  cli::RecurrentShapeFlags shape{.emb = 128, .hidden = 256, .cell = "lstm"};
  bool unidirectional = false;
  // --heads is the Transformer's, and also the RNN's multi-head pooling's.
  cli::TransformerShapeFlags transformer{.max_positions = default_max_length};
  std::string pooling = "attention";
  std::string tokenizer = "penn", language = "en";
  cli::SubwordFlags subword{};
  cli::TrainingFlags run{.epochs = 6, .batch = 64, .max_length = default_max_length, .clip = 5.0};
};

struct UseFlags {
  fs::path model, data, explain_svg;
  std::string text_column = "sentence", label_column = "label";
  std::size_t threads = 2, batch = 64, max_length = default_max_length;
};

// The labelled texts of a TSV file, skipping (and reporting) the over-long ones.
models::LabelledTexts read_texts(const fs::path& path, const models::TsvColumns& columns, std::size_t max_length) {
  models::LabelledTexts data =
      cli::building("the texts of " + path.string(), [&] { return models::read_labelled_tsv(path, columns, max_length); });
  cli::report_skipped(path, {.too_long = data.skipped_long}, max_length);
  return data;
}

// An error naming the file when no text is left of it.
void require_texts(const models::LabelledTexts& data, std::size_t max_length) {
  cli::require_examples(data.texts.size(), data.path, {.too_long = data.skipped_long}, max_length);
}

// The texts of `data` encoded for `loaded`'s model. A text of more pieces than the model
// reads (a subword vocabulary's; words were held to --max-length, at most --max-positions)
// is a file_error naming its file and line.
models::EncodedTexts encoded_texts(const models::LabelledTexts& data, const models::ClassificationModel& loaded) {
  models::EncodedTexts examples = cli::building(
      "the encoded texts of " + data.path, [&] { return models::encode_texts(data, loaded.vocabulary, loaded.labels); });
  for (std::size_t i = 0; i < examples.tokens.size(); ++i) {
    if (examples.tokens[i].size() > loaded.model->max_length()) {
      throw file_error(detail::message(data.path, ":", data.lines[i], ": ", examples.tokens[i].size(),
                                       " pieces; the model reads at most ", loaded.model->max_length(),
                                       " (its --max-positions)"));
    }
  }
  return examples;
}

// Predicted label ids for every example, in batches.
std::vector<std::int64_t> predict_all(const models::Classifier<float>& model,
                                      const models::EncodedTexts& examples, std::size_t batch_size) {
  std::vector<std::int64_t> predictions;
  NoGradGuard no_graph;
  for (const models::Batch& rows : models::consecutive_batches(examples.tokens.size(), batch_size)) {
    const Indices predicted = argmax(model.forward(models::make_batch(examples, rows)).logits, -1);
    predictions.insert(predictions.end(), predicted.begin(), predicted.end());
  }
  return predictions;
}

models::ConfusionMatrix confusion(const models::Classifier<float>& model, const models::EncodedTexts& examples,
                                  std::size_t classes, std::size_t batch_size) {
  models::ConfusionMatrix matrix(classes);
  matrix.add(examples.labels, predict_all(model, examples, batch_size));
  return matrix;
}

// Moves a seeded random `fraction` of `data` into a new held-out set.
models::LabelledTexts hold_out(models::LabelledTexts& data, double fraction, std::uint64_t seed) {
  std::vector<std::size_t> order(data.texts.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  Generator generator(seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[generator.below(i)]);
  const auto held = static_cast<std::size_t>(fraction * double(order.size()));
  if (held == 0) {
    throw file_error(detail::message(data.path, ": --valid-split ", fraction, " of its ", order.size(),
                                     " texts holds out none for validation; give --valid or a larger --valid-split"));
  }
  std::vector<bool> is_held(order.size(), false);
  for (std::size_t i = 0; i < held; ++i) is_held[order[i]] = true;
  models::LabelledTexts kept{data.path, {}, {}, {}}, held_out{data.path + " (held out)", {}, {}, {}};
  for (std::size_t i = 0; i < order.size(); ++i) {
    models::LabelledTexts& target = is_held[i] ? held_out : kept;
    target.texts.push_back(std::move(data.texts[i]));
    target.labels.push_back(std::move(data.labels[i]));
    target.lines.push_back(data.lines[i]);
  }
  data = std::move(kept);
  return held_out;
}

// The texts as a TSV with the given column names: what read_labelled_tsv reads back into
// the same tokens and labels.
std::string to_tsv(const models::LabelledTexts& data, const models::TsvColumns& columns) {
  std::string tsv = columns.text + "\t" + columns.label + "\n";
  for (std::size_t i = 0; i < data.texts.size(); ++i) tsv += models::join_tokens(data.texts[i]) + "\t" + data.labels[i] + "\n";
  return tsv;
}

bool is_transformer(const TrainFlags& flags) { return flags.architecture == "transformer"; }

// The flags that decide the model's shape and vocabulary: a resumed run must give the same.
std::vector<cli::ModelFlag> model_flags(const TrainFlags& flags) {
  std::vector<cli::ModelFlag> named{{"--arch", flags.architecture}};
  if (is_transformer(flags)) {
    const std::vector<cli::ModelFlag> shape = cli::transformer_shape_model_flags(flags.transformer, false);
    named.insert(named.end(), shape.begin(), shape.end());
    named.push_back({"--pooling", flags.pooling});
  } else {
    const std::vector<cli::ModelFlag> shape = cli::recurrent_shape_model_flags(flags.shape);
    named.insert(named.end(), shape.begin(), shape.end());
    named.insert(named.end(), {{"--unidirectional", flags.unidirectional ? "on" : "off"},
                                {"--attention", flags.attention},
                                {"--attention-size", std::to_string(flags.attention_size)},
                                {"--heads", std::to_string(flags.transformer.heads)}});
  }
  named.insert(named.end(), {{"--min-freq", std::to_string(flags.run.min_freq)},
                              {"--max-vocab", std::to_string(flags.run.max_vocab)},
                              {"--tokenizer", flags.tokenizer},
                              {"--lang", flags.language}});
  const std::vector<cli::ModelFlag> subword = cli::subword_model_flags(flags.subword);
  named.insert(named.end(), subword.begin(), subword.end());
  return named;
}

// The network the flags describe, for this vocabulary and these labels.
std::unique_ptr<models::Classifier<float>> build_network(const TrainFlags& flags, std::size_t vocabulary,
                                                         std::size_t classes) {
  if (is_transformer(flags)) {
    return std::make_unique<models::TransformerClassifier<float>>(cli::with_transformer_shape(
        models::TransformerClassifierOptions{.vocabulary = vocabulary,
                                             .classes = classes,
                                             .dropout = flags.run.dropout,
                                             .pooling = models::transformer_pooling_from_string(flags.pooling)},
        flags.transformer));
  }
  return std::make_unique<models::SequenceClassifier<float>>(models::ClassifierOptions{
      .vocabulary = vocabulary,
      .classes = classes,
      .embedding_size = flags.shape.emb,
      .hidden_size = flags.shape.hidden,
      .layers = flags.shape.layers,
      .bidirectional = !flags.unidirectional,
      .cell = nn::cell_kind_from_string(flags.shape.cell),
      .pooling = models::pooling_kind_from_string(flags.attention),
      .attention_size = flags.attention_size,
      .attention_heads = flags.transformer.heads,
      .dropout = flags.run.dropout});
}


std::unique_ptr<models::ClassificationModel> load(const fs::path& dir, bool best_weights) {
  return cli::building("the model of " + dir.string(), [&] {
    return models::load_classification_model(models::ModelDirectory(dir), best_weights);
  });
}

int train(const TrainFlags& flags) {
  if (is_transformer(flags) && flags.run.max_length > flags.transformer.max_positions) {
    throw cli::UsageError(detail::message("--max-length ", flags.run.max_length, " is more than --max-positions ",
                                          flags.transformer.max_positions, ", the longest text the Transformer reads",
                                          "; give --max-length ", flags.transformer.max_positions, " or less"));
  }
  set_num_threads(static_cast<int>(flags.run.threads));
  cli::refuse_unused_subword_flags(flags.subword);
  cli::RunDirectory directory(flags.run.out,
                              {models::model_file::config, models::model_file::vocabulary, models::model_file::labels,
                               models::model_file::subword_model, models::model_file::weights, held_out_file_name},
                              flags.run.resume, model_flags(flags));
  const models::TsvColumns columns{flags.text_column, flags.label_column};
  models::LabelledTexts train_data = read_texts(flags.train, columns, flags.run.max_length);
  require_texts(train_data, flags.run.max_length);
  const models::LabelledTexts valid_data = flags.valid.empty() ? hold_out(train_data, flags.valid_split, flags.run.seed)
                                                               : read_texts(flags.valid, columns, flags.run.max_length);
  require_texts(valid_data, flags.run.max_length);
  manual_seed(flags.run.seed);
  const std::unique_ptr<models::ClassificationModel> loaded = cli::begin_run<models::ClassificationModel>(
      directory, flags.run.resume, [&] { return load(directory.path(), false); },
      [&] {
        Vocabulary vocabulary = cli::building("the vocabulary", [&] {
          const models::VocabularyOptions options{.specials = models::classification_specials(),
                                                  .min_frequency = flags.run.min_freq,
                                                  .max_size = flags.run.max_vocab,
                                                  .normalization = cli::text_rule(flags.tokenizer, flags.language)};
          if (!flags.subword.wanted()) return Vocabulary::build(train_data.texts, options);
          std::vector<models::Tokens> normalised;
          for (const models::Tokens& text : train_data.texts) normalised.push_back(models::normalised_tokens(text, options.normalization));
          return cli::subword_vocabulary(flags.subword, normalised, train_data.path, options.specials, options.normalization);
        });
        LabelSet labels = LabelSet::build(train_data.labels);
        const std::size_t words = vocabulary.size(), classes = labels.size();  // before they move into the model
        return cli::new_model<models::ClassificationModel>(
            model_flags(flags), [&] { return build_network(flags, words, classes); }, std::move(vocabulary),
            std::move(labels));
      },
      [&](const models::ClassificationModel& built) {
        built.vocabulary.save(directory.file(models::model_file::vocabulary));
        built.labels.save(directory.file(models::model_file::labels));
        write_file_atomically(directory.file(models::model_file::config), models::classification_configuration(*built.model));
        if (flags.valid.empty()) write_file_atomically(directory.file(held_out_file_name), to_tsv(valid_data, columns));
      });
  const Vocabulary& vocabulary = loaded->vocabulary;
  const LabelSet& labels = loaded->labels;
  models::Classifier<float>& model = *loaded->model;
  const models::EncodedTexts train_examples = encoded_texts(train_data, *loaded);
  const models::EncodedTexts valid_examples = encoded_texts(valid_data, *loaded);
  std::printf("%zu training and %zu validation texts; %zu %s, %zu classes\n", train_examples.tokens.size(),
              valid_examples.tokens.size(), vocabulary.size(), vocabulary.subword_model() ? "pieces" : "words",
              labels.size());

  return cli::train_model(
      model, flags.run, directory,
      {.lengths = train_examples.lengths,
       .validation_columns = cli::classification_columns,
       .validate = [&] { return cli::classification_validation(confusion(model, valid_examples, labels.size(), 256)); },
       .step =
           [&](const models::Batch& rows) {
             models::PaddedBatch batch = models::make_batch(train_examples, rows);
             // Word dropout: hide words behind <unk> so that the model cannot lean on any one of them.
             if (flags.word_dropout > 0) {
               for (std::size_t row = 0; row < batch.lengths.size(); ++row) {
                 for (std::size_t t = 0; t < batch.lengths[row]; ++t) {
                   if (default_generator().uniform() < flags.word_dropout) batch.ids(row, t) = vocabulary.unknown_id();
                 }
               }
             }
             Indices targets = Indices::from_shape({rows.size()});
             for (std::size_t i = 0; i < rows.size(); ++i) targets(i) = train_examples.labels[rows[i]];
             std::size_t tokens = 0;
             for (std::size_t length : batch.lengths) tokens += length;
             return training::StepOutput{model.loss(batch, targets, flags.run.label_smoothing), tokens, rows.size()};
           },
       .describe_best = cli::describe_accuracy});
}

int evaluate(const UseFlags& flags) {
  set_num_threads(static_cast<int>(flags.threads));
  const std::unique_ptr<models::ClassificationModel> loaded = load(flags.model, true);
  loaded->model->eval();
  if (flags.max_length > loaded->model->max_length()) {
    throw cli::UsageError(detail::message("--max-length ", flags.max_length, " is more than the ",
                                          loaded->model->max_length(), " positions the model of ", flags.model.string(),
                                          " reads (its --max-positions); give --max-length ",
                                          loaded->model->max_length(), " or less"));
  }
  const models::LabelledTexts data = read_texts(flags.data, {flags.text_column, flags.label_column}, flags.max_length);
  require_texts(data, flags.max_length);
  const models::EncodedTexts examples = encoded_texts(data, *loaded);
  const models::ConfusionMatrix matrix = cli::building("the predictions for " + flags.data.string(), [&] {
    return confusion(*loaded->model, examples, loaded->labels.size(), flags.batch);
  });
  std::printf("%zu examples from %s\naccuracy %.2f%%, macro-F1 %.4f\n\n%s", examples.tokens.size(), flags.data.c_str(),
              100 * matrix.accuracy(), matrix.macro_f1(), matrix.report(loaded->labels.names()).c_str());
  return 0;
}

int predict(const UseFlags& flags) {
  cli::refuse_unwritable_output_file("--explain-svg", flags.explain_svg);
  set_num_threads(static_cast<int>(flags.threads));
  const std::unique_ptr<models::ClassificationModel> loaded = load(flags.model, true);
  loaded->model->eval();
  std::vector<cli::HighlightedText> explanations;
  std::vector<std::vector<models::TokenId>> ids;
  std::vector<models::Tokens> texts;
  std::size_t line_number = 0;
  auto flush = [&] {
    if (ids.empty()) return;
    NoGradGuard no_graph;
    const models::Classification<float> result = cli::building("the predictions for standard input", [&] {
      const models::TokenId pad_id = loaded->vocabulary.id(models::pad_token);
      return loaded->model->forward(models::pad_batch(ids, models::consecutive_batches(ids.size(), ids.size())[0], pad_id));
    });
    const Tensor<float> probabilities = softmax(result.logits, -1);
    const Indices predicted = argmax(result.logits, -1);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::string& label = loaded->labels.name(predicted(i));
      const double probability = probabilities.value()(i, predicted(i));
      std::printf("%s\t%.4f\n", label.c_str(), probability);
      if (!flags.explain_svg.empty()) {
        const float* weights = result.attention.data() + i * result.attention.shape()[1];
        char caption[64];
        std::snprintf(caption, sizeof caption, " (%.2f)", probability);
        explanations.push_back({texts[i], std::vector<float>(weights, weights + texts[i].size()), label + caption});
      }
    }
    cli::flush_standard_output();  // a reader sees each batch's answers as they come, and a lost write stops the program
    ids.clear();
    texts.clear();
  };
  for (std::string line; std::getline(std::cin, line);) {
    models::Tokens tokens;
    try {
      tokens = cli::standard_input_tokens(line, ++line_number, flags.max_length, loaded->vocabulary.normalization());
      if (tokens.empty()) throw file_error("<stdin>:" + std::to_string(line_number) + ": the text is empty");
      std::vector<models::TokenId> encoded = loaded->vocabulary.ids_of_normalised(tokens);
      if (encoded.size() > loaded->model->max_length()) {
        throw file_error(detail::message("<stdin>:", line_number, ": ", encoded.size(),
                                         loaded->vocabulary.subword_model() ? " pieces" : " tokens",
                                         "; the model reads at most ", loaded->model->max_length(),
                                         " (its --max-positions)"));
      }
      ids.push_back(std::move(encoded));
    } catch (const file_error&) {
      flush();  // answer the lines before the bad one
      throw;
    }
    texts.push_back(loaded->vocabulary.segmented(tokens));  // what the attention weighs: words, or pieces
    if (ids.size() == flags.batch) flush();
  }
  flush();
  if (!flags.explain_svg.empty()) {
    write_file_atomically(flags.explain_svg, cli::token_highlights_svg(explanations));
    std::fprintf(stderr, "attention over each text written to %s\n", flags.explain_svg.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cli::Program program("xgrad-classify", "Trains and runs a sequence classifier: an RNN or a Transformer encoder, pooled into one vector per text.");
  TrainFlags train_flags;
  cli::Command& train_command = program.subcommand("train", "Train a classifier on a labelled TSV file.");
  train_command.path("--train", train_flags.train, "FILE", "training data (TSV with a header)").required();
  cli::declare_training_flags(train_command, train_flags.run, "texts");
  train_command.path("--valid", train_flags.valid, "FILE", "validation data (default: hold out --valid-split of --train)");
  train_command.real("--valid-split", train_flags.valid_split, "X", "fraction of --train held out for validation (saved as DIR/held_out.tsv)").above(0, 0.9);
  train_command.exclusive("--valid", "--valid-split");
  train_command.text("--text-column", train_flags.text_column, "NAME", "header of the text column");
  train_command.text("--label-column", train_flags.label_column, "NAME", "header of the label column");
  train_command.choice("--arch", train_flags.architecture, {"rnn", "transformer"},
                       "a recurrent encoder, or a Transformer encoder; each reads its own shape flags below");
  cli::declare_recurrent_shape_flags(train_command, train_flags.shape, "rnn: hidden size per direction");
  train_command.flag("--unidirectional", train_flags.unidirectional, "rnn: a forward-only encoder");
  train_command.choice("--attention", train_flags.attention, {"additive", "multihead"}, "rnn: attention pooling (multihead: --heads heads)");
  train_command.size("--attention-size", train_flags.attention_size, "N", "rnn: additive attention size").range(1, 4096);
  cli::declare_transformer_shape_flags(train_command, train_flags.transformer, false);
  cli::declare_tokenizer_flag(train_command, train_flags.tokenizer, {"penn", "moses", "space"});
  train_command.choice("--lang", train_flags.language, {"en", "de"}, "the texts' language, for --tokenizer moses");
  train_command.only_with("--lang", "--tokenizer", "moses");
  train_command.choice("--pooling", train_flags.pooling, {"attention", "mean"},
                       "transformer: a learned query's multi-head attention over the outputs, or their mean");
  for (const char* flag : {"--emb", "--hidden", "--layers", "--cell", "--unidirectional", "--attention", "--attention-size"}) {
    train_command.only_with(flag, "--arch", "rnn");
  }
  for (const char* flag : {"--d-model", "--ff-size", "--encoder-layers", "--activation", "--positions", "--post-norm",
                           "--max-positions", "--pooling"}) {
    train_command.only_with(flag, "--arch", "transformer");
  }
  train_command.real("--word-dropout", train_flags.word_dropout, "P", "probability of replacing a training word (or piece) by <unk>").range(0, 0.9);
  cli::declare_subword_flags(train_command, train_flags.subword);

  UseFlags eval_flags;
  cli::Command& eval_command = program.subcommand("eval", "Accuracy, macro-F1, per-class scores and the confusion matrix.");
  eval_command.path("--model", eval_flags.model, "DIR", "model directory").required();
  eval_command.path("--data", eval_flags.data, "FILE", "labelled data (TSV with a header)").required();
  eval_command.text("--text-column", eval_flags.text_column, "NAME", "header of the text column");
  eval_command.text("--label-column", eval_flags.label_column, "NAME", "header of the label column");
  eval_command.size("--threads", eval_flags.threads, "N", "threads for matrix products").range(1, 256);
  eval_command.size("--max-length", eval_flags.max_length, "N", "skip (and count) texts of more than N tokens").range(1, 100000);

  UseFlags predict_flags;
  cli::Command& predict_command = program.subcommand("predict", "Label texts from standard input (label and probability per line).");
  predict_command.path("--model", predict_flags.model, "DIR", "model directory").required();
  predict_command.path("--explain-svg", predict_flags.explain_svg, "FILE", "draw the attention over each text's tokens");
  predict_command.size("--threads", predict_flags.threads, "N", "threads for matrix products").range(1, 256);
  predict_command.size("--max-length", predict_flags.max_length, "N", "refuse input lines of more than N tokens").range(1, 100000);

  return cli::run_main(program, argc, argv, [&](const std::string& subcommand) {
    if (subcommand == "train") return train(train_flags);
    if (subcommand == "eval") return evaluate(eval_flags);
    return predict(predict_flags);
  });
}
