// xgrad-translate: trains, evaluates and runs a translation model: the attention RNN
// encoder-decoder (--arch rnn) or a Transformer (--arch transformer).
//
//   xgrad-translate train --train-src F --train-tgt F --valid-src F --valid-tgt F --out DIR [--arch A] [...]
//   xgrad-translate eval --model DIR --src F --ref F [--beam K] [--alpha X] [--tokenize 13a|none] [--lowercase]
//   xgrad-translate translate --model DIR [--beam K] [--attention-svg FILE [--attention-layer N] [--attention-head H]]
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
#include <xgrad/models/chrf.h>
#include <xgrad/models/model_directory.h>
#include <xgrad/models/transformer_translator.h>
#include <xgrad/models/translation_data.h>

#include "cli.h"
#include "data_checks.h"
#include "svg.h"
#include "text.h"
#include "training_program.h"

namespace {

using namespace xgrad;
using models::Vocabulary;
namespace fs = std::filesystem;

// Longer sentences are skipped in training and refused in translation: Multi30K's longest
// has about 40 tokens, and memory grows with the longest sentence of a batch.
constexpr std::size_t default_max_length = 100;

struct TrainFlags {
  fs::path train_src, train_tgt, valid_src, valid_tgt;
  std::size_t valid_beam = 1;
  std::string architecture = "rnn";
  std::string attention = "additive";
  cli::RecurrentShapeFlags shape{};
  cli::TransformerShapeFlags transformer{};
  bool share_embeddings = false, untied_output = false;
  bool input_feeding = false;
  double teacher_forcing = 1.0;
  cli::TrainingFlags run{.epochs = 12, .batch = 128, .max_length = default_max_length, .clip = 1.0, .label_smoothing = 0.1};
};

struct DecodeFlags {
  fs::path model, src, ref, attention_svg;
  std::size_t beam = 5, threads = 2, batch = 64, max_length = default_max_length;
  std::size_t attention_layer = 0;  // a Transformer's decoder layer, from 1; 0: the last
  std::size_t attention_head = 0;   // one of its heads, from 1; 0: their average
  double alpha = 1.0;
};

// How eval scores the translations: sacreBLEU's options of the same names.
struct ScoreFlags {
  std::string tokenize = "13a";
  bool lowercase = false;
};

std::unique_ptr<models::TranslationModel> load_model(const fs::path& dir, bool best_weights) {
  return cli::building("the model of " + dir.string(),
                       [&] { return models::load_translation_model(models::ModelDirectory(dir), best_weights); });
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

struct Decoded {
  models::CorpusLoss loss;
  std::vector<models::Tokens> hypotheses;  // the output words of each pair, without specials
  double perplexity() const { return std::exp(loss.per_token); }
};

// Decodes every source sentence in batches, in the corpus order.
std::vector<models::Translation> translate_all(const models::Translator<float>& model, const models::EncodedPairs& pairs,
                                               const models::SearchOptions& search, std::size_t batch_size) {
  std::vector<models::Translation> translations;
  for (const models::Batch& rows : models::consecutive_batches(pairs.source.size(), batch_size)) {
    for (models::Translation& t : model.translate(models::source_batch(pairs, rows), search)) {
      translations.push_back(std::move(t));
    }
  }
  return translations;
}

// The loss over every pair and the translation of every source, `batch_size` at a time.
// Call with the model in evaluation mode.
Decoded decode_pairs(const models::Translator<float>& model, const Vocabulary& target, const models::EncodedPairs& pairs,
                     const models::SearchOptions& search, std::size_t batch_size) {
  Decoded result;
  result.loss = models::corpus_loss(model, pairs, batch_size);
  for (const models::Translation& t : translate_all(model, pairs, search, batch_size)) {
    result.hypotheses.push_back(target.decode(t.tokens, {.drop_specials = true}));
  }
  return result;
}

bool is_transformer(const TrainFlags& flags) { return flags.architecture == "transformer"; }

// The flags that decide the model's shape and vocabularies: a resumed run must give the same.
std::vector<cli::ModelFlag> model_flags(const TrainFlags& flags) {
  std::vector<cli::ModelFlag> named{{"--arch", flags.architecture}};
  if (is_transformer(flags)) {
    const std::vector<cli::ModelFlag> shape = cli::transformer_shape_model_flags(flags.transformer, true);
    named.insert(named.end(), shape.begin(), shape.end());
    named.insert(named.end(), {{"--share-embeddings", flags.share_embeddings ? "on" : "off"},
                                {"--untied-output", flags.untied_output ? "on" : "off"}});
  } else {
    const std::vector<cli::ModelFlag> shape = cli::recurrent_shape_model_flags(flags.shape);
    named.insert(named.end(), shape.begin(), shape.end());
    named.insert(named.end(), {{"--attention", flags.attention}, {"--input-feeding", flags.input_feeding ? "on" : "off"}});
  }
  named.insert(named.end(), {{"--min-freq", std::to_string(flags.run.min_freq)},
                              {"--max-vocab", std::to_string(flags.run.max_vocab)}});
  return named;
}

// The network the flags describe, for vocabularies of these sizes.
std::unique_ptr<models::Translator<float>> build_network(const TrainFlags& flags, std::size_t source_vocabulary,
                                                         std::size_t target_vocabulary) {
  if (is_transformer(flags)) {
    return std::make_unique<models::TransformerTranslator<float>>(
        cli::with_transformer_shape(models::TransformerTranslatorOptions{.source_vocabulary = source_vocabulary,
                                                                         .target_vocabulary = target_vocabulary,
                                                                         .decoder_layers = flags.transformer.decoder_layers,
                                                                         .dropout = flags.run.dropout,
                                                                         .share_embeddings = flags.share_embeddings,
                                                                         .tie_output = !flags.untied_output},
                                    flags.transformer));
  }
  return std::make_unique<models::Seq2Seq<float>>(models::Seq2SeqOptions{
      .source_vocabulary = source_vocabulary,
      .target_vocabulary = target_vocabulary,
      .embedding_size = flags.shape.emb,
      .encoder_hidden = flags.shape.hidden,
      .decoder_hidden = flags.shape.hidden,
      .encoder_layers = flags.shape.layers,
      .cell = nn::cell_kind_from_string(flags.shape.cell),
      .attention = models::attention_kind_from_string(flags.attention),
      .input_feeding = flags.input_feeding,
      .dropout = flags.run.dropout});
}

int train(const TrainFlags& flags) {
  set_num_threads(static_cast<int>(flags.run.threads));
  cli::RunDirectory directory(flags.run.out,
                              {models::model_file::config, models::model_file::source_vocabulary,
                               models::model_file::target_vocabulary, models::model_file::weights},
                              flags.run.resume, model_flags(flags));
  const models::ParallelCorpus train_corpus = read_pairs(flags.train_src, flags.train_tgt, flags.run.max_length);
  const models::ParallelCorpus valid_corpus = read_pairs(flags.valid_src, flags.valid_tgt, flags.run.max_length);
  manual_seed(flags.run.seed);
  const std::unique_ptr<models::TranslationModel> loaded = cli::begin_run<models::TranslationModel>(
      directory, flags.run.resume, [&] { return load_model(directory.path(), false); },
      [&] {
        const models::VocabularyOptions vocabulary_options{.specials = models::translation_specials(),
                                                           .min_frequency = flags.run.min_freq,
                                                           .max_size = flags.run.max_vocab};
        Vocabulary source = cli::building("the source vocabulary", [&] {
          if (!flags.share_embeddings) return Vocabulary::build(train_corpus.source, vocabulary_options);
          std::vector<models::Tokens> both = train_corpus.source;  // one joint vocabulary for one shared table
          both.insert(both.end(), train_corpus.target.begin(), train_corpus.target.end());
          return Vocabulary::build(both, vocabulary_options);
        });
        Vocabulary target = flags.share_embeddings
                                ? source
                                : cli::building("the target vocabulary",
                                                [&] { return Vocabulary::build(train_corpus.target, vocabulary_options); });
        const std::size_t source_size = source.size(), target_size = target.size();  // before they move into the model
        return cli::new_model<models::TranslationModel>(
            model_flags(flags), [&] { return build_network(flags, source_size, target_size); }, std::move(source),
            std::move(target));
      },
      [&](const models::TranslationModel& built) {
        built.source.save(directory.file(models::model_file::source_vocabulary));
        built.target.save(directory.file(models::model_file::target_vocabulary));
        write_file_atomically(directory.file(models::model_file::config), models::translation_configuration(*built.model));
      });
  models::Translator<float>& model = *loaded->model;
  const models::EncodedPairs train_pairs = cli::building(
      "the encoded training pairs", [&] { return models::encode_pairs(train_corpus, loaded->source, loaded->target); });
  const models::EncodedPairs valid_pairs = cli::building(
      "the encoded validation pairs", [&] { return models::encode_pairs(valid_corpus, loaded->source, loaded->target); });
  std::size_t parameters = 0;
  for (const Tensor<float>& p : model.parameters()) parameters += p.size();
  std::printf("%zu training pairs, %zu validation pairs; vocabularies %zu (source) and %zu (target); %zu parameters\n",
              train_pairs.source.size(), valid_pairs.source.size(), loaded->source.size(), loaded->target.size(),
              parameters);

  const models::SearchOptions valid_search{.beam_size = flags.valid_beam};
  return cli::train_model(
      model, flags.run, directory,
      {.lengths = train_pairs.lengths,
       .validation_columns = {"valid_loss", "valid_ppl", "bleu"},
       .validate =
           [&] {
             // BLEU on the vocabulary's tokens against the normalised references, as every
             // run's log has recorded it: it chooses the best weights, and a resumed run must
             // go on comparing like with like. eval reports the field's scores.
             const Decoded valid = decode_pairs(model, loaded->target, valid_pairs, valid_search, 128);
             const models::BleuScore bleu = models::corpus_bleu(valid.hypotheses, valid_pairs.references);
             char summary[96];
             std::snprintf(summary, sizeof summary, "valid loss %.3f, perplexity %.2f, ", valid.loss.per_token,
                           valid.perplexity());
             return training::Validation{bleu.score, summary + bleu.to_string(),
                                         {valid.loss.per_token, valid.perplexity(), bleu.score}};
           },
       .step =
           [&](const models::Batch& rows) {
             const models::TranslationBatch batch = models::make_batch(train_pairs, rows);
             return training::StepOutput{
                 model.loss(batch.source, batch.target,
                            {.label_smoothing = flags.run.label_smoothing, .teacher_forcing = flags.teacher_forcing}),
                 batch.target_tokens};
           },
       .describe_best =
           [](double bleu) {
             char text[48];
             std::snprintf(text, sizeof text, "validation BLEU %.2f", bleu);
             return std::string(text);
           }});
}

int evaluate(const DecodeFlags& flags, const ScoreFlags& scoring) {
  set_num_threads(static_cast<int>(flags.threads));
  const std::unique_ptr<models::TranslationModel> loaded = load_model({flags.model}, true);
  loaded->model->eval();
  const models::ParallelCorpus corpus = read_pairs(flags.src, flags.ref, flags.max_length);
  const models::EncodedPairs pairs = models::encode_pairs(corpus, loaded->source, loaded->target);
  const models::SearchOptions search{.beam_size = flags.beam, .length_penalty = flags.alpha};
  const Decoded result = cli::building("the translations of " + flags.src.string(), [&] {
    return decode_pairs(*loaded->model, loaded->target, pairs, search, flags.batch);
  });
  // Scored as sacreBLEU scores a file of the output lines (the words joined by single spaces,
  // as `translate` prints them) against the --ref lines as written, over the pairs kept (the
  // skipped ones were reported): the references are not normalised by the vocabulary, so a
  // cased reference counts case unless --lowercase says not.
  std::vector<std::string> hypotheses, references;
  for (const models::Tokens& words : result.hypotheses) hypotheses.push_back(models::join_tokens(words));
  for (const models::Tokens& words : corpus.target) references.push_back(models::join_tokens(words));
  const models::BleuOptions bleu{
      .tokenize = scoring.tokenize == "none" ? models::BleuTokenizer::none : models::BleuTokenizer::mteval_13a,
      .lowercase = scoring.lowercase};
  const models::ChrfOptions chrf{.lowercase = scoring.lowercase};
  std::printf("%s\n", models::to_string(models::corpus_bleu(hypotheses, references, bleu), bleu).c_str());
  std::printf("%s\n", models::to_string(models::corpus_chrf(hypotheses, references, chrf), chrf).c_str());
  std::printf("perplexity %.2f (%zu target tokens, %zu sentence pairs)\n", result.perplexity(), result.loss.tokens,
              pairs.source.size());
  return 0;
}

int translate_stdin(const DecodeFlags& flags) {
  cli::refuse_unwritable_output_file("--attention-svg", flags.attention_svg);
  set_num_threads(static_cast<int>(flags.threads));
  const std::unique_ptr<models::TranslationModel> loaded = load_model({flags.model}, true);
  loaded->model->eval();
  if (flags.attention_layer > 0 || flags.attention_head > 0) {
    const std::string asked = "--attention-layer " + std::to_string(flags.attention_layer) + " --attention-head " +
                              std::to_string(flags.attention_head);
    auto* transformer = dynamic_cast<models::TransformerTranslator<float>*>(loaded->model.get());
    if (transformer == nullptr) throw cli::UsageError(asked + ": these need a Transformer; " + flags.model.string() + " holds an RNN");
    auto from_one = [](std::size_t n) { return n == 0 ? std::nullopt : std::optional<std::size_t>(n - 1); };
    try {
      transformer->report_attention({.layer = from_one(flags.attention_layer), .head = from_one(flags.attention_head)});
    } catch (const std::invalid_argument& e) {
      throw cli::UsageError(asked + ": " + e.what());
    }
  }
  const models::SearchOptions search{.beam_size = flags.beam, .length_penalty = flags.alpha};
  bool picture_written = flags.attention_svg.empty();
  std::vector<models::Tokens> lines;
  auto flush = [&] {
    std::vector<models::Tokens> sentences;
    std::vector<std::size_t> nonempty;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      nonempty.push_back(i);
      sentences.push_back(lines[i]);
    }
    const models::EncodedPairs pairs = models::encode_sources(sentences, loaded->source);
    std::vector<models::Translation> translations = cli::building("the translations of standard input", [&] {
      return pairs.source.empty() ? std::vector<models::Translation>{} : translate_all(*loaded->model, pairs, search, flags.batch);
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
      tokens = cli::standard_input_tokens(line, ++line_number, flags.max_length, loaded->source.normalization());
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
  cli::declare_training_flags(train_command, train_flags.run, "sentence pairs");
  train_command.choice("--arch", train_flags.architecture, {"rnn", "transformer"},
                       "the attention RNN encoder-decoder, or a Transformer; each reads its own shape flags below");
  cli::declare_recurrent_shape_flags(train_command, train_flags.shape, "rnn: hidden size of the decoder and of each encoder direction");
  train_command.choice("--attention", train_flags.attention,
                       {"additive", "dot", "scaled-dot", "general", "multihead", "local-m", "local-p"}, "rnn: attention variant");
  train_command.flag("--input-feeding", train_flags.input_feeding, "rnn: Luong-style decoder, attending after the step and feeding the attentional vector");
  train_command.real("--teacher-forcing", train_flags.teacher_forcing, "X", "rnn: probability of feeding the reference token").range(0, 1);
  cli::declare_transformer_shape_flags(train_command, train_flags.transformer, true);
  train_command.flag("--share-embeddings", train_flags.share_embeddings, "transformer: one joint vocabulary and embedding table for both languages");
  train_command.flag("--untied-output", train_flags.untied_output, "transformer: an output projection of its own, not the target embedding");
  train_command.size("--valid-beam", train_flags.valid_beam, "K", "beam size for the validation BLEU").range(1, 64);
  for (const char* flag : {"--emb", "--hidden", "--layers", "--cell", "--attention", "--input-feeding", "--teacher-forcing"}) {
    train_command.only_with(flag, "--arch", "rnn");
  }
  for (const char* flag : {"--d-model", "--heads", "--ff-size", "--encoder-layers", "--decoder-layers", "--activation",
                           "--positions", "--post-norm", "--max-positions", "--share-embeddings", "--untied-output"}) {
    train_command.only_with(flag, "--arch", "transformer");
  }

  DecodeFlags eval_flags;
  cli::Command& eval_command =
      program.subcommand("eval", "Report BLEU and chrF as sacreBLEU computes them, with their signatures, and perplexity.");
  eval_command.path("--model", eval_flags.model, "DIR", "model directory").required();
  eval_command.path("--src", eval_flags.src, "FILE", "source sentences").required();
  eval_command.path("--ref", eval_flags.ref, "FILE", "reference translations").required();
  eval_command.size("--beam", eval_flags.beam, "K", "beam size (1: greedy)").range(1, 64);
  eval_command.real("--alpha", eval_flags.alpha, "X", "length normalisation exponent").range(0, 5);
  eval_command.size("--threads", eval_flags.threads, "N", "threads for matrix products").range(1, 256);
  eval_command.size("--max-length", eval_flags.max_length, "N", "skip (and count) pairs with a side of more than N tokens").range(1, 100000);
  ScoreFlags score_flags;
  eval_command.choice("--tokenize", score_flags.tokenize, {"13a", "none"},
                      "BLEU's tokeniser: sacreBLEU's default 13a, or none (the text's own tokens)");
  eval_command.flag("--lowercase", score_flags.lowercase, "score BLEU and chrF case-insensitively (sacreBLEU's --lowercase and --chrf-lowercase)");

  DecodeFlags translate_flags;
  cli::Command& translate_command = program.subcommand("translate", "Translate sentences from standard input.");
  translate_command.path("--model", translate_flags.model, "DIR", "model directory").required();
  translate_command.size("--beam", translate_flags.beam, "K", "beam size (1: greedy)").range(1, 64);
  translate_command.real("--alpha", translate_flags.alpha, "X", "length normalisation exponent").range(0, 5);
  translate_command.path("--attention-svg", translate_flags.attention_svg, "FILE", "draw the first sentence's attention");
  translate_command.size("--attention-layer", translate_flags.attention_layer, "N",
                         "transformer: the decoder layer (from 1) whose cross-attention is drawn (0: the last)")
      .range(0, 64);
  translate_command.size("--attention-head", translate_flags.attention_head, "H",
                         "transformer: draw this head's cross-attention (from 1; 0: the average over the heads)")
      .range(0, 256);
  translate_command.size("--threads", translate_flags.threads, "N", "threads for matrix products").range(1, 256);
  translate_command.size("--max-length", translate_flags.max_length, "N", "refuse input lines of more than N tokens").range(1, 100000);

  return cli::run_main(program, argc, argv, [&](const std::string& subcommand) {
    if (subcommand == "train") return train(train_flags);
    if (subcommand == "eval") return evaluate(eval_flags, score_flags);
    return translate_stdin(translate_flags);
  });
}
