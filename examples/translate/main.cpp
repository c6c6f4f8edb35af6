// xgrad-translate: trains, evaluates and runs the attention encoder-decoder.
//
//   xgrad-translate train --train-src F --train-tgt F --valid-src F --valid-tgt F --out DIR [...]
//   xgrad-translate eval --model DIR --src F --ref F [--beam K] [--alpha X]
//   xgrad-translate translate --model DIR [--beam K] [--attention-svg FILE]
//
// A model directory holds config.json (the model's options), source.vocab.json and
// target.vocab.json, model.safetensors (the weights with the best validation BLEU),
// checkpoint.safetensors (everything --resume needs) and log.csv, and run.lock and run.json
// (run_directory.h). Every file is written atomically.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include <xgrad/framework.h>
#include <xgrad/models/bleu.h>
#include <xgrad/models/model_directory.h>

#include "cli.h"
#include "data_checks.h"
#include "run_directory.h"
#include "svg.h"
#include "text.h"
#include "training.h"
#include "translation_data.h"

namespace {

using namespace xgrad;
using models::Vocabulary;
namespace fs = std::filesystem;

// Longer sentences are skipped in training and refused in translation: Multi30K's longest
// has about 40 tokens, and memory grows with the longest sentence of a batch.
constexpr std::size_t default_max_length = 100;
// Most words in a vocabulary: the embeddings and the output layer grow with it.
constexpr std::size_t default_max_vocabulary = 100000;

struct ModelFiles {
  fs::path dir;
  fs::path config() const { return dir / models::model_file::config; }
  fs::path source_vocabulary() const { return dir / models::model_file::source_vocabulary; }
  fs::path target_vocabulary() const { return dir / models::model_file::target_vocabulary; }
  fs::path weights() const { return dir / models::model_file::weights; }
  fs::path checkpoint() const { return dir / cli::checkpoint_file_name; }
  fs::path log() const { return dir / "log.csv"; }
  // The names of everything above: what a training run writes.
  static std::vector<std::string> names() {
    return {models::model_file::config,  models::model_file::source_vocabulary, models::model_file::target_vocabulary,
            models::model_file::weights, cli::checkpoint_file_name,                 "log.csv"};
  }
};

struct TrainFlags {
  fs::path train_src, train_tgt, valid_src, valid_tgt, out;
  std::size_t epochs = 12, batch = 128, emb = 256, hidden = 512, layers = 1, min_freq = 2, threads = 2;
  std::size_t max_steps = 0, checkpoint_every = 0, valid_beam = 1, seed = 1;
  std::size_t max_length = default_max_length, max_vocab = default_max_vocabulary;
  std::string cell = "gru", attention = "additive";
  bool input_feeding = false, resume = false;
  double dropout = 0.5, lr = 1e-3, clip = 1.0, teacher_forcing = 1.0, label_smoothing = 0.1, time_budget = 0;
};

struct DecodeFlags {
  fs::path model, src, ref, attention_svg;
  std::size_t beam = 5, threads = 2, batch = 64, max_length = default_max_length;
  double alpha = 1.0;
};

std::unique_ptr<models::TranslationModel> load_model(const ModelFiles& files, bool best_weights) {
  return cli::building("the model of " + files.dir.string(), [&] {
    return models::load_translation_model(models::ModelDirectory(files.dir), best_weights);
  });
}

// The sentence pairs of two files, skipping (and reporting) the over-long ones; an error
// when none is left.
models::ParallelCorpus read_pairs(const fs::path& source, const fs::path& target, std::size_t max_length) {
  const std::string files = source.string() + " and " + target.string();
  models::ParallelCorpus corpus =
      cli::building("the sentence pairs of " + files, [&] { return models::read_parallel_corpus(source, target, max_length); });
  const cli::SkippedLines skipped{corpus.skipped_empty, corpus.skipped_long};
  cli::report_skipped(files, skipped, max_length);
  cli::require_examples(corpus.source.size(), files, skipped, max_length);
  return corpus;
}

struct Validation {
  double loss = 0, perplexity = 0;
  models::BleuScore bleu;
};

// Decodes every source sentence in batches, in the corpus order.
std::vector<models::Translation> translate_all(const models::Seq2Seq<float>& model, const translate::EncodedPairs& pairs,
                                               const models::SearchOptions& search, std::size_t batch_size) {
  std::vector<models::Translation> translations;
  for (std::size_t start = 0; start < pairs.source.size(); start += batch_size) {
    models::Batch rows;
    for (std::size_t i = start; i < std::min(pairs.source.size(), start + batch_size); ++i) rows.push_back(i);
    for (models::Translation& t : model.translate(models::pad_batch(pairs.source, rows, 0), search)) {
      translations.push_back(std::move(t));
    }
  }
  return translations;
}

// Call with the model in evaluation mode.
Validation validate(const models::Seq2Seq<float>& model, const Vocabulary& target, const translate::EncodedPairs& pairs,
                    const models::SearchOptions& search) {
  Validation result;
  double total = 0;
  std::size_t tokens = 0;
  for (std::size_t start = 0; start < pairs.source.size(); start += 128) {
    models::Batch rows;
    for (std::size_t i = start; i < std::min(pairs.source.size(), start + 128); ++i) rows.push_back(i);
    const translate::TranslationBatch batch = translate::make_batch(pairs, rows);
    const auto [sum, count] = model.evaluate_loss(batch.source, batch.target);
    total += sum;
    tokens += count;
  }
  result.loss = total / double(tokens);
  result.perplexity = std::exp(result.loss);
  std::vector<models::Tokens> hypotheses;
  for (const models::Translation& t : translate_all(model, pairs, search, 128)) {
    hypotheses.push_back(target.decode(t.tokens, {.drop_specials = true}));
  }
  result.bleu = models::corpus_bleu(hypotheses, pairs.references);
  return result;
}

// The flags that decide the model's shape and vocabularies: a resumed run must give the same.
std::vector<cli::ModelFlag> model_flags(const TrainFlags& flags) {
  return {{"--emb", std::to_string(flags.emb)},
          {"--hidden", std::to_string(flags.hidden)},
          {"--layers", std::to_string(flags.layers)},
          {"--cell", flags.cell},
          {"--attention", flags.attention},
          {"--input-feeding", flags.input_feeding ? "on" : "off"},
          {"--min-freq", std::to_string(flags.min_freq)},
          {"--max-vocab", std::to_string(flags.max_vocab)}};
}

int train(const TrainFlags& flags) {
  set_num_threads(static_cast<int>(flags.threads));
  const ModelFiles files{flags.out};
  cli::RunDirectory run_directory(files.dir, ModelFiles::names(), flags.resume, model_flags(flags));
  const bool resuming = flags.resume;
  const models::ParallelCorpus train_corpus = read_pairs(flags.train_src, flags.train_tgt, flags.max_length);
  const models::ParallelCorpus valid_corpus = read_pairs(flags.valid_src, flags.valid_tgt, flags.max_length);
  manual_seed(flags.seed);
  std::unique_ptr<models::TranslationModel> loaded;
  if (resuming) {
    loaded = load_model(files, false);
    run_directory.claim();
    std::printf("resuming %s\n", files.dir.c_str());
  } else {
    const models::VocabularyOptions vocabulary_options{
        .specials = models::translation_specials(), .min_frequency = flags.min_freq, .max_size = flags.max_vocab};
    Vocabulary source = cli::building("the source vocabulary",
                                      [&] { return Vocabulary::build(train_corpus.source, vocabulary_options); });
    Vocabulary target = cli::building("the target vocabulary",
                                      [&] { return Vocabulary::build(train_corpus.target, vocabulary_options); });
    const models::Seq2SeqOptions options{.source_vocabulary = source.size(),
                                         .target_vocabulary = target.size(),
                                         .embedding_size = flags.emb,
                                         .encoder_hidden = flags.hidden,
                                         .decoder_hidden = flags.hidden,
                                         .encoder_layers = flags.layers,
                                         .cell = nn::cell_kind_from_string(flags.cell),
                                         .attention = models::attention_kind_from_string(flags.attention),
                                         .input_feeding = flags.input_feeding,
                                         .dropout = flags.dropout};
    loaded = cli::building("the model", [&] {
      return std::unique_ptr<models::TranslationModel>(new models::TranslationModel{
          std::move(source), std::move(target),
          cli::model_from_flags(model_flags(flags), [&] { return models::Seq2Seq<float>(options); })});
    });
    run_directory.claim();
    loaded->source.save(files.source_vocabulary());
    loaded->target.save(files.target_vocabulary());
    write_file_atomically(files.config(), models::to_json(options));
  }
  models::Seq2Seq<float>& model = loaded->model;
  const translate::EncodedPairs train_pairs = cli::building(
      "the encoded training pairs", [&] { return translate::encode_pairs(train_corpus, loaded->source, loaded->target); });
  const translate::EncodedPairs valid_pairs = cli::building(
      "the encoded validation pairs", [&] { return translate::encode_pairs(valid_corpus, loaded->source, loaded->target); });
  std::size_t parameters = 0;
  for (const Tensor<float>& p : model.parameters()) parameters += p.size();
  std::printf("%zu training pairs, %zu validation pairs; vocabularies %zu (source) and %zu (target); %zu parameters\n",
              train_pairs.source.size(), valid_pairs.source.size(), loaded->source.size(), loaded->target.size(),
              parameters);

  optim::Adam<float> optimizer = cli::building("the optimizer's state", [&] {
    return optim::Adam<float>(model.named_parameters(), {.lr = flags.lr});
  });
  optim::ReduceLROnPlateau scheduler(optimizer, {.mode = optim::PlateauMode::max, .factor = 0.5, .patience = 0});
  const models::BucketBatchSampler sampler(train_pairs.lengths, {.batch_size = flags.batch});
  Generator data_order(flags.seed);
  cli::TrainingProgress progress =
      cli::starting_progress(resuming, data_order, files.checkpoint(), model, optimizer, scheduler);
  const cli::StopCondition stop(flags.time_budget, flags.max_steps, progress.seconds);
  const models::SearchOptions valid_search{.beam_size = flags.valid_beam};
  const cli::TrainingLoop loop{
      .model = model,
      .optimizer = optimizer,
      .scheduler = scheduler,
      .sampler = sampler,
      .checkpoint_path = files.checkpoint(),
      .weights_path = files.weights(),
      .log_path = files.log(),
      .validation_columns = {"valid_loss", "valid_ppl", "bleu"},
      .epochs = flags.epochs,
      .clip = flags.clip,
      .checkpoint_every = flags.checkpoint_every,
      .forward_backward =
          [&](const models::Batch& rows) {
            const translate::TranslationBatch batch = translate::make_batch(train_pairs, rows);
            Tensor<float> loss = model.loss(batch.source, batch.target, flags.teacher_forcing, flags.label_smoothing);
            loss.backward();
            return cli::StepOutcome{loss.item(), batch.target_tokens};
          },
      .validate =
          [&] {
            const Validation valid = validate(model, loaded->target, valid_pairs, valid_search);
            char summary[96];
            std::snprintf(summary, sizeof summary, "valid loss %.3f, perplexity %.2f, ", valid.loss, valid.perplexity);
            return cli::Validation{valid.bleu.score, summary + valid.bleu.to_string(),
                                   {valid.loss, valid.perplexity, valid.bleu.score}};
          }};
  const cli::RunEnd end =
      cli::building("training batches", [&] { return cli::run_training(loop, data_order, progress, stop); });
  if (end == cli::RunEnd::interrupted) return 130;
  std::printf("best validation BLEU %.2f (epoch %zu), weights in %s\n", progress.best_score, progress.best_epoch,
              files.weights().c_str());
  return 0;
}

int evaluate(const DecodeFlags& flags) {
  set_num_threads(static_cast<int>(flags.threads));
  const std::unique_ptr<models::TranslationModel> loaded = load_model({flags.model}, true);
  loaded->model.eval();
  const models::ParallelCorpus corpus = read_pairs(flags.src, flags.ref, flags.max_length);
  const translate::EncodedPairs pairs = translate::encode_pairs(corpus, loaded->source, loaded->target);
  double total = 0;
  std::size_t tokens = 0;
  std::vector<models::Tokens> hypotheses;
  const models::SearchOptions search{.beam_size = flags.beam, .length_penalty = flags.alpha};
  const std::vector<models::Translation> translations = cli::building(
      "the translations of " + flags.src.string(), [&] { return translate_all(loaded->model, pairs, search, flags.batch); });
  for (const models::Translation& t : translations) {
    hypotheses.push_back(loaded->target.decode(t.tokens, {.drop_specials = true}));
  }
  for (std::size_t start = 0; start < pairs.source.size(); start += flags.batch) {
    models::Batch rows;
    for (std::size_t i = start; i < std::min(pairs.source.size(), start + flags.batch); ++i) rows.push_back(i);
    const translate::TranslationBatch batch = translate::make_batch(pairs, rows);
    const auto [sum, count] = loaded->model.evaluate_loss(batch.source, batch.target);
    total += sum;
    tokens += count;
  }
  std::printf("%s\n", models::corpus_bleu(hypotheses, pairs.references).to_string().c_str());
  std::printf("perplexity %.2f (%zu target tokens, %zu sentence pairs)\n", std::exp(total / double(tokens)), tokens,
              pairs.source.size());
  return 0;
}

int translate_stdin(const DecodeFlags& flags) {
  cli::refuse_unwritable_output_file("--attention-svg", flags.attention_svg);
  set_num_threads(static_cast<int>(flags.threads));
  const std::unique_ptr<models::TranslationModel> loaded = load_model({flags.model}, true);
  loaded->model.eval();
  const models::SearchOptions search{.beam_size = flags.beam, .length_penalty = flags.alpha};
  bool picture_written = flags.attention_svg.empty();
  std::vector<models::Tokens> lines;
  auto flush = [&] {
    translate::EncodedPairs pairs;
    std::vector<std::size_t> nonempty;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      nonempty.push_back(i);
      pairs.source.push_back(loaded->source.encode(lines[i]));
    }
    std::vector<models::Translation> translations = cli::building("the translations of standard input", [&] {
      return pairs.source.empty() ? std::vector<models::Translation>{} : translate_all(loaded->model, pairs, search, flags.batch);
    });
    std::size_t next = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (next < nonempty.size() && nonempty[next] == i) {
        const models::Translation& t = translations[next++];
        models::Tokens words = loaded->target.decode(t.tokens, {.drop_specials = true});
        std::cout << models::join_tokens(words) << '\n';
        if (!picture_written) {
          // Rows: each output word, then <eos> when the decoder produced it.
          if (t.attention.shape()[0] > words.size()) words.emplace_back(models::end_token);
          write_file_atomically(flags.attention_svg, cli::attention_heatmap_svg(lines[i], words, t.attention));
          std::cerr << "attention of the first sentence written to " << flags.attention_svg.string() << '\n';
          picture_written = true;
        }
      } else {
        std::cout << '\n';
      }
    }
    cli::flush_standard_output();  // a reader sees each batch's lines as they come, and a lost write stops the program
    lines.clear();
  };
  std::size_t line_number = 0;
  for (std::string line; std::getline(std::cin, line);) {
    models::Tokens tokens;
    try {
      tokens = cli::standard_input_tokens(line, ++line_number, flags.max_length);
    } catch (const file_error&) {
      flush();  // answer the lines before the bad one
      throw;
    }
    lines.push_back(std::move(tokens));
    if (lines.size() == flags.batch) flush();
  }
  flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cli::Program program("xgrad-translate", "Trains and runs an attention encoder-decoder for translation.");
  TrainFlags train_flags;
  cli::Command& train_command = program.subcommand("train", "Train a model on a parallel corpus.");
  train_command.path("--train-src", train_flags.train_src, "FILE", "training source sentences, one per line").required();
  train_command.path("--train-tgt", train_flags.train_tgt, "FILE", "their translations, line by line").required();
  train_command.path("--valid-src", train_flags.valid_src, "FILE", "validation source sentences").required();
  train_command.path("--valid-tgt", train_flags.valid_tgt, "FILE", "validation references").required();
  train_command.path("--out", train_flags.out, "DIR", "model directory to create (or to continue with --resume)").required();
  train_command.size("--epochs", train_flags.epochs, "N", "epochs to train").range(1, 1000);
  train_command.size("--batch", train_flags.batch, "N", "sentence pairs per batch").range(1, 4096);
  train_command.size("--emb", train_flags.emb, "N", "embedding size").range(1, 4096);
  train_command.size("--hidden", train_flags.hidden, "N", "hidden size of the decoder and of each encoder direction").range(1, 4096);
  train_command.size("--layers", train_flags.layers, "N", "encoder layers").range(1, 8);
  train_command.choice("--cell", train_flags.cell, {"gru", "lstm"}, "recurrent cell");
  train_command.choice("--attention", train_flags.attention,
                       {"additive", "dot", "scaled-dot", "general", "multihead", "local-m", "local-p"}, "attention variant");
  train_command.flag("--input-feeding", train_flags.input_feeding, "Luong-style decoder: attend after the step and feed the attentional vector");
  train_command.real("--dropout", train_flags.dropout, "P", "dropout probability").range(0, 0.95);
  train_command.real("--lr", train_flags.lr, "X", "Adam learning rate").above(0, 1);
  train_command.real("--clip", train_flags.clip, "X", "clip the global gradient norm to X (0: no clipping)").range(0, 1e6);
  train_command.real("--teacher-forcing", train_flags.teacher_forcing, "X", "probability of feeding the reference token").range(0, 1);
  train_command.real("--label-smoothing", train_flags.label_smoothing, "X", "label smoothing of the loss").range(0, 0.5);
  train_command.size("--min-freq", train_flags.min_freq, "N", "minimum count of a vocabulary word").range(1, 1000000);
  train_command.size("--max-vocab", train_flags.max_vocab, "N", "keep at most the N most frequent words per vocabulary").range(8, models::max_vocabulary_size);
  train_command.size("--max-length", train_flags.max_length, "N", "skip (and count) pairs with a side of more than N tokens").range(1, 100000);
  train_command.size("--valid-beam", train_flags.valid_beam, "K", "beam size for the validation BLEU").range(1, 64);
  train_command.size("--seed", train_flags.seed, "N", "seed of initialisation, dropout and data order");
  train_command.size("--threads", train_flags.threads, "N", "threads for matrix products").range(1, 256);
  train_command.size("--max-steps", train_flags.max_steps, "N", "stop after N optimizer steps (0: no limit)");
  train_command.real("--time-budget", train_flags.time_budget, "MIN", "stop after MIN minutes (0: no limit)").range(0, 1e6);
  train_command.size("--checkpoint-every", train_flags.checkpoint_every, "N", "also checkpoint every N steps (0: at epoch ends)");
  train_command.flag("--resume", train_flags.resume, "continue the run saved in --out");

  DecodeFlags eval_flags;
  cli::Command& eval_command = program.subcommand("eval", "Report BLEU and perplexity on a parallel corpus.");
  eval_command.path("--model", eval_flags.model, "DIR", "model directory").required();
  eval_command.path("--src", eval_flags.src, "FILE", "source sentences").required();
  eval_command.path("--ref", eval_flags.ref, "FILE", "reference translations").required();
  eval_command.size("--beam", eval_flags.beam, "K", "beam size (1: greedy)").range(1, 64);
  eval_command.real("--alpha", eval_flags.alpha, "X", "length normalisation exponent").range(0, 5);
  eval_command.size("--threads", eval_flags.threads, "N", "threads for matrix products").range(1, 256);
  eval_command.size("--max-length", eval_flags.max_length, "N", "skip (and count) pairs with a side of more than N tokens").range(1, 100000);

  DecodeFlags translate_flags;
  cli::Command& translate_command = program.subcommand("translate", "Translate sentences from standard input.");
  translate_command.path("--model", translate_flags.model, "DIR", "model directory").required();
  translate_command.size("--beam", translate_flags.beam, "K", "beam size (1: greedy)").range(1, 64);
  translate_command.real("--alpha", translate_flags.alpha, "X", "length normalisation exponent").range(0, 5);
  translate_command.path("--attention-svg", translate_flags.attention_svg, "FILE", "draw the first sentence's attention");
  translate_command.size("--threads", translate_flags.threads, "N", "threads for matrix products").range(1, 256);
  translate_command.size("--max-length", translate_flags.max_length, "N", "refuse input lines of more than N tokens").range(1, 100000);

  return cli::run_main(program, argc, argv, [&](const std::string& subcommand) {
    if (subcommand == "train") return train(train_flags);
    if (subcommand == "eval") return evaluate(eval_flags);
    return translate_stdin(translate_flags);
  });
}
