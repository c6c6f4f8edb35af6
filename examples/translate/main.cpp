// xgrad-translate: trains, evaluates and runs a translation model: the attention RNN
// encoder-decoder (--arch rnn) or a Transformer (--arch transformer).
//
//   xgrad-translate train --train-src F --train-tgt F --valid-src F --valid-tgt F --out DIR [--arch A]
//                         [--tokenizer moses|space] [--source-lang de|en] [--target-lang de|en]
//                         [--subword unigram|bpe --vocab-size N | --subword-model FILE] [...]
//   xgrad-translate eval --model DIR --src F --ref F [--beam K] [decoding options] [--tokenize 13a|none] [--lowercase]
//   xgrad-translate translate --model DIR [--beam K] [decoding options] [--output-form text|tokens] [--n-best K] [--replace-unk]
//                             [--alignments FILE [--soft-alignments]] [--attention-svg FILE [--attention-layer N] [--attention-head H]]
//   xgrad-translate average --model DIR --model DIR [...] --out DIR
//   xgrad-translate average --model DIR --last N --out DIR
//   xgrad-translate quantize --model DIR --out DIR --dtype int8|bf16
//
// --tokenizer moses (the default) records the rule moses-lowercase-<lang>-v1 of each language in
// the vocabularies (models/text.h): translate, eval and the training itself read raw text
// through it, and translate writes ordinary, detokenised text (--output-form tokens: the
// corpus form). --tokenizer space is the rule of the models before: tokenised text, lower-cased.
//
// The decoding options: --length-penalty none|avg|gnmt with --alpha X, --coverage-penalty X,
// --min-output-length N, --max-output-length N (models/search.h). With --n-best K, translate
// writes K lines per input line, Marian's n-best format:
//   <input line from 0> ||| <translation> ||| F0= <log-probability> ||| <score the beam ranked by>
// and an empty input line gets none. --alignments writes one line per input line: the best
// translation's hard alignments from the attention in the Pharaoh format ("0-0 2-1": source
// word - output word, from 0), or with --soft-alignments its attention rows ("0.912,0.088 ...":
// one group of source weights per output word).
//
// Vocabularies hold whole words, or with `train --subword unigram|bpe --vocab-size N` (or
// `--subword-model FILE`) the pieces of one SentencePiece model for both languages
// (models/subword.h): translate and eval then cut each input word into pieces and join the
// output pieces back into words, and BLEU is scored on those words. The alignments are then
// between pieces, as Marian's are (source piece - output piece, in the order SentencePiece
// cut them), and --replace-unk, which copies a source word into an output word's place, is
// refused.
//
// A model directory holds config.json (the model's options), source.vocab.json and
// target.vocab.json (with subword vocabularies, also subword.model), model.safetensors (the weights with the best validation BLEU),
// checkpoint.safetensors (everything --resume needs) and log.csv, with --keep-epochs N the
// folder epochs/ of the last N epochs' weights, and run.lock and run.json (run_directory.h). Every file is written atomically.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>

#include <xgrad/framework.h>
#include <xgrad/models/alignment.h>
#include <xgrad/models/bleu.h>
#include <xgrad/models/chrf.h>
#include <xgrad/models/model_directory.h>
#include <xgrad/models/transformer_translator.h>
#include <xgrad/models/translation_data.h>

#include "cli.h"
#include "data_checks.h"
#include "subword_flags.h"
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
  std::string tokenizer = "moses", source_language = "de", target_language = "en";
  double teacher_forcing = 1.0;
  cli::SubwordFlags subword{};
  cli::TrainingFlags run{.epochs = 12, .batch = 128, .max_length = default_max_length, .clip = 1.0, .label_smoothing = 0.1};
};

struct DecodeFlags {
  fs::path model, src, ref, attention_svg;
  std::size_t beam = 5, threads = 2, batch = 64, max_length = default_max_length;
  std::size_t attention_layer = 0;  // a Transformer's decoder layer, from 1; 0: the last
  std::size_t attention_head = 0;   // one of its heads, from 1; 0: their average
  double alpha = 1.0;
  std::string length_penalty = "avg";
  double coverage_penalty = 0.0;
  std::size_t min_output_length = 0, max_output_length = 0;  // 0: no maximum beyond the source's
  std::size_t n_best = 0;                                    // 0: only the best, as plain text
  std::string output_form = "text";
  bool replace_unk = false;
  fs::path alignments;
  bool soft_alignments = false;
};

// How eval scores the translations: sacreBLEU's options of the same names.
struct ScoreFlags {
  std::string tokenize = "13a";
  bool lowercase = false;
};

// The search the decoding flags ask for; UsageError for flags that contradict each other.
models::SearchOptions search_options(const DecodeFlags& flags) {
  if (flags.max_output_length > 0 && flags.min_output_length > flags.max_output_length) {
    throw cli::UsageError("--min-output-length " + std::to_string(flags.min_output_length) +
                          " is more than --max-output-length " + std::to_string(flags.max_output_length));
  }
  if (flags.n_best > flags.beam) {
    throw cli::UsageError("--n-best " + std::to_string(flags.n_best) + " needs a beam at least as wide; --beam is " +
                          std::to_string(flags.beam));
  }
  return {.beam_size = flags.beam,
          .length_penalty = flags.alpha,
          .length_normalization = models::length_normalization_from_string(flags.length_penalty),
          .coverage_penalty = flags.coverage_penalty,
          .min_output_length = flags.min_output_length,
          .max_output_length = flags.max_output_length > 0 ? flags.max_output_length : models::SearchOptions{}.max_output_length,
          .n_best = std::max<std::size_t>(1, flags.n_best)};
}

// The flags of the search, shared by eval and translate.
void declare_search_flags(cli::Command& command, DecodeFlags& flags) {
  command.size("--beam", flags.beam, "K", "beam size (1: greedy)").range(1, 64);
  command.choice("--length-penalty", flags.length_penalty, {"none", "avg", "gnmt"},
                 "how the beam ranks hypotheses of different lengths: log p, log p / length^alpha, or GNMT's "
                 "log p / ((5 + length) / 6)^alpha");
  command.real("--alpha", flags.alpha, "X", "the length penalty's exponent").range(0, 5);
  command.real("--coverage-penalty", flags.coverage_penalty, "X",
               "GNMT's coverage penalty beta: adds X * sum of log(min(attention a source word received, 1))")
      .range(0, 10);
  command.size("--min-output-length", flags.min_output_length, "N", "no <eos> before N output tokens").range(0, 100000);
  command.size("--max-output-length", flags.max_output_length, "N",
               "at most N output tokens (0: 2 per source token + 10)")
      .range(0, 100000);
}

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

// Decodes every source sentence in batches, in the corpus order: search.n_best hypotheses
// each, best first.
std::vector<std::vector<models::Translation>> translate_all(const models::Translator<float>& model,
                                                            const models::EncodedPairs& pairs,
                                                            const models::SearchOptions& search, std::size_t batch_size) {
  std::vector<std::vector<models::Translation>> translations;
  for (const models::Batch& rows : models::consecutive_batches(pairs.source.size(), batch_size)) {
    for (std::vector<models::Translation>& t : model.translate_n_best(models::source_batch(pairs, rows), search)) {
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
  for (const std::vector<models::Translation>& best : translate_all(model, pairs, search, batch_size)) {
    result.hypotheses.push_back(target.decode(best.front().tokens, {.drop_specials = true}));
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
                              {"--max-vocab", std::to_string(flags.run.max_vocab)},
                              {"--tokenizer", flags.tokenizer},
                              {"--source-lang", flags.source_language},
                              {"--target-lang", flags.target_language}});
  const std::vector<cli::ModelFlag> subword = cli::subword_model_flags(flags.subword);
  named.insert(named.end(), subword.begin(), subword.end());
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

// The source and target vocabularies of a new run: words, each language its own unless the
// embeddings are shared; or one joint subword vocabulary for both, trained on both sides
// (what --share-embeddings needs, and Marian's and OpenNMT's usual choice for related
// languages), so that a word the two share (a name, a number) is cut the same way.
std::pair<Vocabulary, Vocabulary> build_vocabularies(const TrainFlags& flags, const models::ParallelCorpus& corpus) {
  const models::TextNormalization source_rule = cli::text_rule(flags.tokenizer, flags.source_language);
  const models::TextNormalization target_rule = cli::text_rule(flags.tokenizer, flags.target_language);
  const models::VocabularyOptions vocabulary_options{.specials = models::translation_specials(),
                                                     .min_frequency = flags.run.min_freq,
                                                     .max_size = flags.run.max_vocab};
  auto options_for = [&](models::TextNormalization rule) {
    models::VocabularyOptions options = vocabulary_options;
    options.normalization = rule;
    return options;
  };
  // A joint vocabulary's sentences: each side's as its own rule reads them.
  const auto both_sides = [&] {
    std::vector<models::Tokens> both;
    for (const models::Tokens& s : corpus.source) both.push_back(models::normalised_tokens(s, source_rule));
    for (const models::Tokens& s : corpus.target) both.push_back(models::normalised_tokens(s, target_rule));
    return both;
  };
  if (flags.subword.wanted()) {
    Vocabulary joint = cli::building("the subword vocabulary", [&] {
      return cli::subword_vocabulary(flags.subword, both_sides(),
                                     flags.train_src.string() + " and " + flags.train_tgt.string(),
                                     vocabulary_options.specials, source_rule);
    });
    Vocabulary target = joint.with_normalization(target_rule);
    return {std::move(joint), std::move(target)};
  }
  Vocabulary source = cli::building("the source vocabulary", [&] {
    if (!flags.share_embeddings) return Vocabulary::build(corpus.source, options_for(source_rule));
    models::VocabularyOptions joint = options_for(source_rule);
    joint.sentences_normalised = true;
    return Vocabulary::build(both_sides(), joint);
  });
  Vocabulary target = flags.share_embeddings ? source.with_normalization(target_rule)
                                             : cli::building("the target vocabulary", [&] {
                                                 return Vocabulary::build(corpus.target, options_for(target_rule));
                                               });
  return {std::move(source), std::move(target)};
}

int train(const TrainFlags& flags) {
  set_num_threads(static_cast<int>(flags.run.threads));
  cli::refuse_unused_subword_flags(flags.subword);
  cli::RunDirectory directory(flags.run.out,
                              {models::model_file::config, models::model_file::source_vocabulary,
                               models::model_file::target_vocabulary, models::model_file::subword_model,
                               models::model_file::weights},
                              flags.run.resume, model_flags(flags));
  const models::ParallelCorpus train_corpus = read_pairs(flags.train_src, flags.train_tgt, flags.run.max_length);
  const models::ParallelCorpus valid_corpus = read_pairs(flags.valid_src, flags.valid_tgt, flags.run.max_length);
  manual_seed(flags.run.seed);
  const std::unique_ptr<models::TranslationModel> loaded = cli::begin_run<models::TranslationModel>(
      directory, flags.run.resume, [&] { return load_model(directory.path(), false); },
      [&] {
        std::pair<Vocabulary, Vocabulary> vocabularies = build_vocabularies(flags, train_corpus);
        // Read before they move into the model.
        const std::size_t source_size = vocabularies.first.size(), target_size = vocabularies.second.size();
        return cli::new_model<models::TranslationModel>(
            model_flags(flags), [&] { return build_network(flags, source_size, target_size); },
            std::move(vocabularies.first), std::move(vocabularies.second));
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
                 batch.target_tokens, batch.target_tokens};
           },
       .describe_best =
           [](double bleu) {
             char text[48];
             std::snprintf(text, sizeof text, "validation BLEU %.2f", bleu);
             return std::string(text);
           }});
}

// What eval scores: each output line and its reference, as text and as the model's tokens.
struct ScoredTexts {
  std::vector<std::string> hypotheses, references;              // chrF's, and BLEU's with 13a
  std::vector<std::string> token_hypotheses, token_references;  // BLEU's with --tokenize none
};

// A model that writes ordinary text (the Moses rules) is scored on it, as sacreBLEU scores
// plain text: the output detokenised as `translate` writes it, against the references in the
// same form (read by the target vocabulary's rule, then written back as text, so a tokenised
// reference file and a plain one score alike; case as the rule leaves it: lower case but the
// first letter). BLEU with --tokenize none compares the rule's tokens of both sides instead
// (BLEU on the corpus form, as multi-bleu.perl on tokenised files). A model whose rule cannot
// write text (lowercase-latin1-v1) is scored as before on both: the words joined by single
// spaces against the --ref lines as written, so a cased reference counts case unless
// --lowercase says not.
ScoredTexts scored_texts(const std::vector<models::Tokens>& outputs, const std::vector<models::Tokens>& references,
                         const Vocabulary& target) {
  const models::TextNormalization rule = target.normalization();
  const bool restores = models::restores_ordinary_text(rule);
  ScoredTexts scored;
  for (const models::Tokens& words : outputs) {
    scored.token_hypotheses.push_back(models::join_tokens(words));
    scored.hypotheses.push_back(models::ordinary_text(words, rule));
  }
  for (const models::Tokens& words : references) {
    const models::Tokens tokens = restores ? target.normalised(words) : words;
    scored.token_references.push_back(models::join_tokens(tokens));
    scored.references.push_back(models::ordinary_text(tokens, rule));
  }
  return scored;
}

int evaluate(const DecodeFlags& flags, const ScoreFlags& scoring) {
  const models::SearchOptions search = search_options(flags);
  set_num_threads(static_cast<int>(flags.threads));
  const std::unique_ptr<models::TranslationModel> loaded = load_model({flags.model}, true);
  loaded->model->eval();
  const models::ParallelCorpus corpus = read_pairs(flags.src, flags.ref, flags.max_length);
  const models::EncodedPairs pairs = models::encode_pairs(corpus, loaded->source, loaded->target);
  const Decoded result = cli::building("the translations of " + flags.src.string(), [&] {
    return decode_pairs(*loaded->model, loaded->target, pairs, search, flags.batch);
  });
  // Scored as sacreBLEU scores a file of the output lines against a file of the references,
  // over the pairs kept (the skipped ones were reported).
  const ScoredTexts scored = scored_texts(result.hypotheses, corpus.target, loaded->target);
  const models::BleuOptions bleu{
      .tokenize = scoring.tokenize == "none" ? models::BleuTokenizer::none : models::BleuTokenizer::mteval_13a,
      .lowercase = scoring.lowercase};
  const models::ChrfOptions chrf{.lowercase = scoring.lowercase};
  const bool on_tokens = bleu.tokenize == models::BleuTokenizer::none;
  std::printf("%s\n", models::to_string(models::corpus_bleu(on_tokens ? scored.token_hypotheses : scored.hypotheses,
                                                           on_tokens ? scored.token_references : scored.references, bleu),
                                        bleu)
                          .c_str());
  std::printf("%s\n",
              models::to_string(models::corpus_chrf(scored.hypotheses, scored.references, chrf), chrf).c_str());
  std::printf("perplexity %.2f (%zu target tokens, %zu sentence pairs)\n", result.perplexity(), result.loss.tokens,
              pairs.source.size());
  return 0;
}

// What translate writes for each input line: the best translation, or the n-best list, on
// standard output, and the best one's alignments, kept for the --alignments file.
class TranslationWriter {
 public:
  TranslationWriter(const DecodeFlags& flags, const models::Vocabulary& target) : flags_(flags), target_(target) {}

  // The hypotheses (best first) for the next input line, whose words are `source`; none for
  // an empty line.
  void write(const models::Tokens& source, const std::vector<models::Translation>& hypotheses) {
    const std::size_t line = lines_++;
    if (hypotheses.empty()) {
      if (flags_.n_best == 0) std::cout << '\n';
      alignments_ += '\n';
      return;
    }
    for (const models::Translation& hypothesis : hypotheses) {
      const models::TranslatedWords words = models::translated_words(hypothesis, target_);
      const std::vector<std::size_t> sources = models::most_attended_sources(hypothesis, words);
      const models::Tokens output = flags_.replace_unk ? models::replace_unknown_words(words, sources, source)
                                                       : target_.decode(hypothesis.tokens, {.drop_specials = true});
      const std::string text = flags_.output_form == "tokens" ? models::join_tokens(output)
                                                              : models::ordinary_text(output, target_.normalization());
      if (flags_.n_best == 0) {
        std::cout << text << '\n';
      } else {
        char scores[96];
        std::snprintf(scores, sizeof scores, " ||| F0= %.4f ||| %.4f\n", hypothesis.log_probability, hypothesis.score);
        std::cout << line << " ||| " << text << scores;
      }
      if (&hypothesis == &hypotheses.front()) {
        alignments_ += flags_.soft_alignments ? models::soft_alignment(hypothesis, words) : models::pharaoh_alignment(sources);
        alignments_ += '\n';
      }
    }
  }

  // Writes the --alignments file, when one was asked for, once every line is written.
  void finish() const {
    if (!flags_.alignments.empty()) write_file_atomically(flags_.alignments, alignments_);
  }

 private:
  const DecodeFlags& flags_;
  const models::Vocabulary& target_;
  std::size_t lines_ = 0;
  std::string alignments_;
};

int translate_stdin(const DecodeFlags& flags) {
  if (flags.soft_alignments && flags.alignments.empty()) throw cli::UsageError("--soft-alignments needs --alignments FILE");
  cli::refuse_unwritable_output_file("--alignments", flags.alignments);
  cli::refuse_unwritable_output_file("--attention-svg", flags.attention_svg);
  const models::SearchOptions search = search_options(flags);
  set_num_threads(static_cast<int>(flags.threads));
  const std::unique_ptr<models::TranslationModel> loaded = load_model({flags.model}, true);
  loaded->model->eval();
  if (flags.replace_unk && loaded->target.subword_model() != nullptr) {
    throw cli::UsageError("--replace-unk is for word vocabularies; " + flags.model.string() +
                          " has subword ones, which spell rare words in pieces instead of writing <unk>");
  }
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
  TranslationWriter writer(flags, loaded->target);
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
    const models::EncodedPairs pairs = models::encode_normalised_sources(sentences, loaded->source);
    const std::vector<std::vector<models::Translation>> translations =
        cli::building("the translations of standard input", [&] {
          return pairs.source.empty() ? std::vector<std::vector<models::Translation>>{}
                                      : translate_all(*loaded->model, pairs, search, flags.batch);
        });
    std::size_t next = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (next < nonempty.size() && nonempty[next] == i) {
        const std::vector<models::Translation>& hypotheses = translations[next++];
        writer.write(lines[i], hypotheses);
        if (!picture_written) {
          const models::Translation& t = hypotheses.front();
          // Rows: each output token (a word or a piece), then <eos> when the decoder produced
          // it; columns: the source tokens the model read.
          models::Tokens rows = loaded->target.held_tokens(t.tokens, {.drop_specials = true});
          if (t.attention.shape()[0] > rows.size()) rows.emplace_back(models::end_token);
          write_file_atomically(flags.attention_svg,
                                cli::attention_heatmap_svg(loaded->source.segmented(lines[i]), rows, t.attention));
          std::cerr << "attention of the first sentence written to " << flags.attention_svg.string() << '\n';
          picture_written = true;
        }
      } else {
        writer.write(lines[i], {});
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
  writer.finish();
  return 0;
}

struct AverageFlags {
  std::vector<fs::path> models;
  std::size_t last = 0;  // the last N epochs that the one --model kept (train --keep-epochs); 0: the models' kept weights
  fs::path out;
};

// The files that make the configuration of the model directory `first`: only models that share
// them have weights of the same meaning, position by position. The subword model, when the
// vocabularies name one, comes last: two vocabulary files that differ say more.
std::vector<const char*> configuration_files(const fs::path& first) {
  std::vector<const char*> names{models::model_file::config, models::model_file::source_vocabulary,
                                 models::model_file::target_vocabulary};
  if (fs::exists(first / models::model_file::subword_model)) names.push_back(models::model_file::subword_model);
  return names;
}

// Checks every --model against the first before any weights are read: the same configuration
// files, byte for byte; UsageError naming the two files that differ.
void refuse_other_configurations(const std::vector<fs::path>& directories) {
  for (const char* name : configuration_files(directories.front())) {
    const fs::path first = directories.front() / name;
    const std::string expected = read_file(first.string());
    for (std::size_t i = 1; i < directories.size(); ++i) {
      const fs::path other = directories[i] / name;
      if (read_file(other.string()) != expected) {
        throw cli::UsageError(other.string() + " differs from " + first.string() +
                              ": average needs models of one configuration (the same config.json and vocabularies)");
      }
    }
  }
}

// The weight files `average` reads: each --model's kept weights, or the last --last epochs
// that the one --model kept; UsageError when they are fewer than two.
std::vector<fs::path> weights_to_average(const AverageFlags& flags) {
  std::vector<fs::path> files;
  if (flags.last == 0) {
    if (flags.models.size() < 2) {
      throw cli::UsageError("average needs at least two --model directories, or one with --last N; " +
                            std::to_string(flags.models.size()) + " given");
    }
    refuse_other_configurations(flags.models);
    for (const fs::path& directory : flags.models) files.push_back(directory / models::model_file::weights);
    return files;
  }
  if (flags.models.size() != 1) {
    throw cli::UsageError("--last averages the epochs of one run: give one --model, not " +
                          std::to_string(flags.models.size()));
  }
  const fs::path epochs = flags.models.front() / cli::epochs_folder_name;
  const auto kept = training::kept_epoch_weights(epochs);
  if (flags.last < 2 || kept.size() < flags.last) {
    throw cli::UsageError("--last " + std::to_string(flags.last) + ": " + epochs.string() + " keeps the weights of " +
                          std::to_string(kept.size()) + " epochs; average needs at least 2 and at most that many " +
                          "(train with --keep-epochs N to keep them)");
  }
  for (std::size_t i = kept.size() - flags.last; i < kept.size(); ++i) files.push_back(kept[i].second);
  return files;
}

// UsageError unless `out` is a new name or an empty directory: `command` never replaces a model.
void refuse_existing_output(const fs::path& out, const char* command) {
  std::error_code ignored;  // what cannot be inspected is left to the writes to report
  if (fs::exists(out, ignored) && !(fs::is_directory(out, ignored) && fs::is_empty(out, ignored))) {
    throw cli::UsageError("--out " + out.string() + " exists; " + command + " writes a new model directory and never " +
                          "replaces one (give a new name, or an empty directory)");
  }
}

// Writes the model directory `out`: the configuration files of `from`, and the weights that
// write_weights writes to the path it is given. It is written whole into a new sibling
// directory, which then takes out's name in one rename: a failure leaves no half-written
// model, and a directory that filled up meanwhile is kept.
void write_model_directory(const fs::path& out_flag, const fs::path& from, const char* command,
                           const std::function<void(const std::string&)>& write_weights) {
  std::error_code ignored;
  const fs::path out = out_flag.has_filename() ? out_flag : out_flag.parent_path();  // "runs/avg/" names runs/avg
  const fs::path parent = out.has_parent_path() ? out.parent_path() : fs::path(".");
  fs::create_directories(parent);
  const fs::path staging = parent / ("." + out.filename().string() + "." + command + "-" + std::to_string(::getpid()));
  fs::remove_all(staging);  // what a killed run with the same process id left
  fs::create_directory(staging);
  try {
    for (const char* name : configuration_files(from)) {
      write_file_atomically((staging / name).string(), read_file((from / name).string()));
    }
    write_weights((staging / models::model_file::weights).string());
    fs::rename(staging, out);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(staging, ignored);
    throw file_error(out_flag.string() + ": cannot become the " + command + " model directory (" + e.code().message() + ")");
  } catch (...) {
    fs::remove_all(staging, ignored);
    throw;
  }
}

int average(const AverageFlags& flags) {
  refuse_existing_output(flags.out, "average");
  const std::vector<fs::path> files = weights_to_average(flags);

  // The mean in double, one file at a time, written into the model's tensors at the end.
  const std::unique_ptr<models::TranslationModel> averaged = load_model(flags.models.front(), false);
  const NamedTensors<float> state = averaged->model->state_dict();
  std::vector<std::vector<double>> sums;
  for (const auto& entry : state) sums.emplace_back(entry.second.value().size(), 0.0);
  for (const fs::path& file : files) {
    cli::building("the weights of " + file.string(), [&] { nn::load_state_dict(*averaged->model, file.string()); });
    for (std::size_t i = 0; i < state.size(); ++i) {
      const float* values = state[i].second.value().data();
      for (std::size_t k = 0; k < sums[i].size(); ++k) sums[i][k] += static_cast<double>(values[k]);
    }
  }
  const auto count = static_cast<double>(files.size());
  for (std::size_t i = 0; i < state.size(); ++i) {
    Tensor<float> tensor = state[i].second;
    std::transform(sums[i].begin(), sums[i].end(), tensor.mutable_value().begin(),
                   [&](double sum) { return static_cast<float>(sum / count); });
  }

  write_model_directory(flags.out, flags.models.front(), "average",
                        [&](const std::string& path) { nn::save_state_dict(*averaged->model, path); });
  std::printf("the weights of %zu %s averaged into %s\n", files.size(), flags.last != 0 ? "epochs" : "models",
              flags.out.c_str());
  return 0;
}

struct QuantizeFlags {
  fs::path model, out;
  std::string dtype = "int8";
};

int quantize(const QuantizeFlags& flags) {
  refuse_existing_output(flags.out, "quantize");
  const std::unique_ptr<models::TranslationModel> loaded = load_model(flags.model, true);
  if (loaded->model->weight_format() != WeightFormat::float32) {
    throw cli::UsageError("--model " + flags.model.string() + " holds " + weight_format_name(loaded->model->weight_format()) +
                          " weights already; quantize rounds the weights of a float32 model");
  }
  const WeightFormat format = weight_format_from_string(flags.dtype);
  write_model_directory(flags.out, flags.model, "quantize", [&](const std::string& path) {
    models::write_quantized_weights(*loaded->model, format, path);
  });
  std::printf("the weights of %s stored as %s in %s\n", flags.model.c_str(), flags.dtype.c_str(), flags.out.c_str());
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
  cli::declare_tokenizer_flag(train_command, train_flags.tokenizer, {"moses", "space"});
  train_command.choice("--source-lang", train_flags.source_language, {"de", "en"},
                       "the source text's language, for --tokenizer moses");
  train_command.choice("--target-lang", train_flags.target_language, {"de", "en"},
                       "the target text's language, for --tokenizer moses");
  for (const char* flag : {"--source-lang", "--target-lang"}) train_command.only_with(flag, "--tokenizer", "moses");
  cli::declare_subword_flags(train_command, train_flags.subword);
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
  declare_search_flags(eval_command, eval_flags);
  eval_command.size("--threads", eval_flags.threads, "N", "threads for matrix products").range(1, 256);
  eval_command.size("--max-length", eval_flags.max_length, "N", "skip (and count) pairs with a side of more than N tokens").range(1, 100000);
  ScoreFlags score_flags;
  eval_command.choice("--tokenize", score_flags.tokenize, {"13a", "none"},
                      "BLEU's tokeniser: sacreBLEU's default 13a, or none (the text's own tokens)");
  eval_command.flag("--lowercase", score_flags.lowercase, "score BLEU and chrF case-insensitively (sacreBLEU's --lowercase and --chrf-lowercase)");

  DecodeFlags translate_flags;
  cli::Command& translate_command = program.subcommand("translate", "Translate sentences from standard input.");
  translate_command.path("--model", translate_flags.model, "DIR", "model directory").required();
  declare_search_flags(translate_command, translate_flags);
  translate_command.size("--n-best", translate_flags.n_best, "K",
                         "write the K best translations of each line, as 'line ||| translation ||| F0= log p ||| "
                         "score' (0: the best alone, as plain text)")
      .range(0, 64);
  translate_command.choice("--output-form", translate_flags.output_form, {"text", "tokens"},
                           "text: detokenised, first letter capitalised (a model of --tokenizer moses); tokens: the "
                           "model's tokens, as its training data was written (what --alignments counts)");
  translate_command.flag("--replace-unk", translate_flags.replace_unk,
                         "word vocabularies: replace each <unk> by the source word its step attended to most");
  translate_command.path("--alignments", translate_flags.alignments, "FILE",
                         "write each line's alignments from the attention, as Pharaoh's 'source-target' pairs from 0 "
                         "(of pieces, with subword vocabularies)");
  translate_command.flag("--soft-alignments", translate_flags.soft_alignments,
                         "--alignments writes each output word's attention over the source words instead");
  translate_command.path("--attention-svg", translate_flags.attention_svg, "FILE", "draw the first sentence's attention");
  translate_command.size("--attention-layer", translate_flags.attention_layer, "N",
                         "transformer: the decoder layer (from 1) whose cross-attention is drawn (0: the last)")
      .range(0, 64);
  translate_command.size("--attention-head", translate_flags.attention_head, "H",
                         "transformer: draw this head's cross-attention (from 1; 0: the average over the heads)")
      .range(0, 256);
  translate_command.size("--threads", translate_flags.threads, "N", "threads for matrix products").range(1, 256);
  translate_command.size("--max-length", translate_flags.max_length, "N", "refuse input lines of more than N tokens").range(1, 100000);

  AverageFlags average_flags;
  cli::Command& average_command =
      program.subcommand("average", "Average the weights of models of one configuration into a new model directory.");
  average_command.paths("--model", average_flags.models, "DIR", "a model directory; give one --model per model").required();
  average_command.size("--last", average_flags.last, "N",
                       "average the weights of the last N epochs that the one --model kept (train --keep-epochs)")
      .range(0, 1000);
  average_command.path("--out", average_flags.out, "DIR", "the new model directory (a new name, or an empty directory)")
      .required();

  QuantizeFlags quantize_flags;
  cli::Command& quantize_command = program.subcommand(
      "quantize", "Store a model's weights for faster inference: int8 (each row with its scale) or bf16; translate and "
                  "eval load the new directory as any other.");
  quantize_command.path("--model", quantize_flags.model, "DIR", "a float32 model directory").required();
  quantize_command.path("--out", quantize_flags.out, "DIR", "the new model directory (a new name, or an empty directory)")
      .required();
  quantize_command.choice("--dtype", quantize_flags.dtype, {"int8", "bf16"},
                          "int8: weight matrices as 8-bit integers with a scale per row, products on integers; bf16: "
                          "as bfloat16");

  return cli::run_main(program, argc, argv, [&](const std::string& subcommand) {
    if (subcommand == "train") return train(train_flags);
    if (subcommand == "quantize") return quantize(quantize_flags);
    if (subcommand == "eval") return evaluate(eval_flags, score_flags);
    if (subcommand == "average") return average(average_flags);
    return translate_stdin(translate_flags);
  });
}
