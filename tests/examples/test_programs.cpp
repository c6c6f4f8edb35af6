// The command-line programs, run as a user runs them: exit code 0 for success and --help, 2
// for a usage error, 1 for a data error, each with a message naming the flag or file; eval,
// translate and predict print what they promise; and a run stopped and resumed with
// --resume ends with exactly the weights and optimizer state of an uninterrupted run.
#define BOOST_TEST_MODULE programs
#include "xgrad_test.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <limits>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "idx_files.h"
#include "square_task.h"
#include "xgrad/models/bleu.h"
#include "xgrad/models/corpus.h"

using namespace xgrad;
using xgrad::testing::TempDir;

namespace {

struct Run {
  int status;
  std::string out;
  std::string err;
};

// Runs a shell command line with standard output and error captured in files of `dir`, or
// standard output sent where `stdout_redirection` says ("> /dev/full", ">&-").
Run run(const TempDir& dir, const std::string& command, const std::string& input = "",
        const std::string& stdout_redirection = "") {
  const std::string in = dir.write("stdin.txt", input);
  dir.write("stdout.txt", "");
  const std::string out = stdout_redirection.empty() ? " > " + dir.file("stdout.txt") : " " + stdout_redirection;
  const int raw = std::system((command + " < " + in + out + " 2> " + dir.file("stderr.txt")).c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_file(dir.file("stdout.txt")), read_file(dir.file("stderr.txt"))};
}

// The names in a directory.
std::set<std::string> entries(const std::string& directory) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) names.insert(entry.path().filename().string());
  return names;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// How many lines of `text` have more than `max_length` tokens.
std::size_t lines_longer_than(const std::string& text, std::size_t max_length) {
  std::size_t count = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) count += models::split_tokens(line).size() > max_length;
  return count;
}

// NAME.src with the sentences, one a line, and NAME.tgt with each one's words in reverse order.
void write_reversed_pairs(const TempDir& dir, const std::string& name, const std::vector<models::Tokens>& sentences) {
  std::ostringstream source, target;
  for (const models::Tokens& sentence : sentences) {
    for (std::size_t k = 0; k < sentence.size(); ++k) source << (k ? " " : "") << sentence[k];
    for (std::size_t k = sentence.size(); k-- > 0;) target << sentence[k] << (k ? " " : "");
    source << '\n';
    target << '\n';
  }
  dir.write(name + ".src", source.str());
  dir.write(name + ".tgt", target.str());
}

// A toy translation task: the target is the source reversed.
void write_reversal_corpus(const TempDir& dir, const std::string& name, std::size_t lines, std::uint64_t seed) {
  Generator generator(seed);
  const char* words[] = {"a", "b", "c", "d", "e", "f"};
  std::vector<models::Tokens> sentences(lines);
  for (models::Tokens& sentence : sentences) {
    for (std::size_t k = 0, n = 2 + generator.below(4); k < n; ++k) sentence.push_back(words[generator.below(6)]);
  }
  write_reversed_pairs(dir, name, sentences);
}

// A toy classification task: the label says whether the word "x" occurs.
void write_presence_tsv(const TempDir& dir, const std::string& name, std::size_t lines, std::uint64_t seed) {
  Generator generator(seed);
  std::ostringstream tsv;
  tsv << "text\tlabel\n";
  const char* words[] = {"a", "b", "c", "d", "e", "f", "x"};
  for (std::size_t i = 0; i < lines; ++i) {
    bool has_x = false;
    for (std::size_t k = 0, n = 2 + generator.below(5); k < n; ++k) {
      const char* word = words[generator.below(7)];
      has_x = has_x || word[0] == 'x';
      tsv << (k ? " " : "") << word;
    }
    tsv << '\t' << (has_x ? "yes" : "no") << '\n';
  }
  dir.write(name, tsv.str());
}

// Every tensor of a checkpoint except the ones that legitimately differ between runs.
void check_same_tensors(const std::string& a_path, const std::string& b_path) {
  const safetensors::File a = safetensors::File::read(a_path), b = safetensors::File::read(b_path);
  BOOST_TEST_REQUIRE(a.names() == b.names());
  for (const std::string& name : a.names()) {
    if (a.entry(name).dtype == safetensors::Dtype::i64) {
      BOOST_TEST(a.integers(name) == b.integers(name), name);
    } else {
      BOOST_TEST(a.floats<double>(name) == b.floats<double>(name), name);
    }
  }
  for (const char* key : {"progress.epoch", "progress.batches_done", "progress.steps", "progress.data_order",
                          "progress.dropout_generator", "optimizer.lr"}) {
    BOOST_TEST(a.metadata().at(key) == b.metadata().at(key), key);
  }
}

const std::string translate = XGRAD_TRANSLATE;
const std::string classify = XGRAD_CLASSIFY;
const std::string images = XGRAD_IMAGES;

// `count` square images (square_task.h) as the IDX files NAME-images.idx and NAME-labels.idx.
void write_square_idx(const TempDir& dir, const std::string& name, std::size_t count, std::uint64_t seed) {
  Generator generator(seed);
  testing::write_idx(testing::squares::square_images(count, generator).images, dir.file(name + "-images.idx"),
                     dir.file(name + "-labels.idx"));
}

const std::string small_image_model = " --d-model 8 --heads 2 --ff-size 16 --attention-size 8";

// Trains a model of `shape` on train-images.idx into `out`.
std::string images_train(const TempDir& dir, const std::string& out, const std::string& shape = small_image_model) {
  return images + " train --images " + dir.file("train-images.idx") + " --labels " + dir.file("train-labels.idx") +
         " --out " + dir.file(out) + shape + " --batch 16 --epochs 3 --threads 1";
}

// `train` on the corpus in `dir`, without an architecture's shape flags.
std::string translate_train_any(const TempDir& dir, const std::string& out, int epochs = 3) {
  return translate + " train --train-src " + dir.file("train.src") + " --train-tgt " + dir.file("train.tgt") +
         " --valid-src " + dir.file("valid.src") + " --valid-tgt " + dir.file("valid.tgt") + " --out " + dir.file(out) +
         " --batch 16 --epochs " + std::to_string(epochs) + " --threads 1 --min-freq 1";
}

// `train` of a small attention RNN.
std::string translate_train(const TempDir& dir, const std::string& out, int epochs = 3) {
  return translate_train_any(dir, out, epochs) + " --emb 8 --hidden 8";
}

}  // namespace

// A German copying task in the corpus form of Multi30K (lower case, the period split off):
// the target is the source, so a model that learned it shows which tokens it read.
void write_german_copy_corpus(const TempDir& dir, const std::string& name, std::size_t lines, std::uint64_t seed) {
  Generator generator(seed);
  std::ostringstream text;
  const char* words[] = {"ein", "hund", "rennt", "über", "die", "wiese", "katze", "springt"};
  for (std::size_t i = 0; i < lines; ++i) {
    for (std::size_t k = 0, n = 3 + generator.below(4); k < n; ++k) text << words[generator.below(8)] << ' ';
    text << ".\n";
  }
  dir.write(name + ".src", text.str());
  dir.write(name + ".tgt", text.str());
}

BOOST_AUTO_TEST_CASE(translate_usage_and_data_errors) {
  TempDir dir;
  Run help = run(dir, translate + " train --help");
  BOOST_TEST(help.status == 0);
  BOOST_TEST(contains(help.out, "--time-budget"), help.out);
  Run bad = run(dir, translate + " train --epochs x");
  BOOST_TEST(bad.status == 2);
  BOOST_TEST(contains(bad.err, "--epochs"), bad.err);
  Run unknown = run(dir, translate + " translate --model m --bem 3");
  BOOST_TEST(unknown.status == 2);
  BOOST_TEST(contains(unknown.err, "--bem"), unknown.err);
  write_reversal_corpus(dir, "train", 20, 1);
  dir.write("short.tgt", "a b\n");
  Run mismatch = run(dir, translate + " train --train-src " + dir.file("train.src") + " --train-tgt " + dir.file("short.tgt") +
                              " --valid-src " + dir.file("train.src") + " --valid-tgt " + dir.file("train.tgt") + " --out " +
                              dir.file("m"));
  BOOST_TEST(mismatch.status == 1);
  BOOST_TEST((contains(mismatch.err, "train.src") && contains(mismatch.err, "short.tgt") && contains(mismatch.err, "20")),
             mismatch.err);
  Run missing = run(dir, translate + " eval --model " + dir.file("nothing-here") + " --src a --ref b");
  BOOST_TEST(missing.status == 1);
  BOOST_TEST(contains(missing.err, "nothing-here"), missing.err);
}

BOOST_AUTO_TEST_CASE(translate_resume_equals_an_uninterrupted_run) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 200, 2);
  write_reversal_corpus(dir, "valid", 20, 3);
  // 13 batches per epoch: step 20 lies in the second epoch, step 7 in the first.
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "whole") + " --max-steps 20").status == 0);
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "parts") + " --max-steps 7").status == 0);
  Run again = run(dir, translate_train(dir, "parts"));
  BOOST_TEST(again.status == 2);  // an existing run is never overwritten silently
  BOOST_TEST(contains(again.err, "--resume"), again.err);
  Run resumed = run(dir, translate_train(dir, "parts") + " --max-steps 20 --resume");
  BOOST_TEST_REQUIRE(resumed.status == 0, resumed.err);
  BOOST_TEST(contains(resumed.out, "resuming"), resumed.out);
  check_same_tensors(dir.file("whole/checkpoint.safetensors"), dir.file("parts/checkpoint.safetensors"));

  // The trained model evaluates and translates.
  Run eval = run(dir, translate + " eval --model " + dir.file("whole") + " --src " + dir.file("valid.src") + " --ref " +
                          dir.file("valid.tgt") + " --beam 2 --threads 1");
  BOOST_TEST(eval.status == 0, eval.err);
  // sacreBLEU's BLEU (13a by default) and chrF, each printed after its signature, as sacreBLEU prints them.
  BOOST_TEST(contains(eval.out, "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:xgrad-"), eval.out);
  BOOST_TEST(contains(eval.out, "chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:xgrad-"), eval.out);
  BOOST_TEST(contains(eval.out, "perplexity"), eval.out);
  // --tokenize none is the number eval printed before: BLEU on the output tokens against the
  // reference tokens as the vocabulary reads them, here of `translate --output-form tokens`'s
  // lines (the references are tokenised and lower-case already, so the rule changes nothing).
  Run untokenised = run(dir, translate + " eval --model " + dir.file("whole") + " --src " + dir.file("valid.src") + " --ref " +
                                 dir.file("valid.tgt") + " --beam 2 --threads 1 --tokenize none --lowercase");
  BOOST_TEST_REQUIRE(untokenised.status == 0, untokenised.err);
  Run valid_translations = run(dir, translate + " translate --model " + dir.file("whole") + " --beam 2 --threads 1 --output-form tokens",
                               read_file(dir.file("valid.src")));
  BOOST_TEST_REQUIRE(valid_translations.status == 0, valid_translations.err);
  std::vector<models::Tokens> hypotheses, references;
  std::istringstream hypothesis_lines(valid_translations.out), reference_lines(read_file(dir.file("valid.tgt")));
  for (std::string line; std::getline(hypothesis_lines, line);) hypotheses.push_back(models::split_tokens(line));
  for (std::string line; std::getline(reference_lines, line);) references.push_back(models::split_tokens(line));
  const std::string token_bleu = models::corpus_bleu(hypotheses, references).to_string();  // "BLEU = ..."
  BOOST_TEST(contains(untokenised.out, "BLEU|nrefs:1|case:lc|eff:no|tok:none|smooth:exp|version:xgrad-"), untokenised.out);
  BOOST_TEST(contains(untokenised.out, token_bleu.substr(std::string("BLEU").size()) + "\n"),
             untokenised.out << " should hold " << token_bleu);
  BOOST_TEST(contains(untokenised.out, "chrF2|nrefs:1|case:lc|"), untokenised.out);
  Run bad_tokenizer = run(dir, translate + " eval --model " + dir.file("whole") + " --src " + dir.file("valid.src") +
                                   " --ref " + dir.file("valid.tgt") + " --tokenize 14a");
  BOOST_TEST(bad_tokenizer.status == 2);
  BOOST_TEST((contains(bad_tokenizer.err, "--tokenize") && contains(bad_tokenizer.err, "13a")), bad_tokenizer.err);
  Run translated = run(dir, translate + " translate --model " + dir.file("whole") + " --attention-svg " + dir.file("a.svg"),
                       "a b c\n\nD E F\n");
  BOOST_TEST(translated.status == 0, translated.err);
  BOOST_TEST(std::count(translated.out.begin(), translated.out.end(), '\n') == 3);  // one line per input line
  BOOST_TEST(contains(read_file(dir.file("a.svg")), "<svg"));
}

// The Transformer through the same program: a warm-up schedule that resumes exactly, the
// architecture recorded in the model directory, eval, and the attention of a chosen layer.
BOOST_AUTO_TEST_CASE(a_transformer_trains_resumes_evaluates_and_translates) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 200, 2);
  write_reversal_corpus(dir, "valid", 20, 3);
  const std::string transformer = " --arch transformer --d-model 16 --heads 2 --ff-size 32 --encoder-layers 1"
                                  " --decoder-layers 2 --schedule inverse-sqrt --warmup 5 --beta2 0.98 --dropout 0.1";
  BOOST_TEST_REQUIRE(run(dir, translate_train_any(dir, "whole") + transformer + " --max-steps 20").status == 0);
  BOOST_TEST_REQUIRE(run(dir, translate_train_any(dir, "parts") + transformer + " --max-steps 7").status == 0);
  Run other_shape = run(dir, translate_train_any(dir, "parts") + transformer + " --heads 4 --max-steps 20 --resume");
  BOOST_TEST(other_shape.status == 2);
  BOOST_TEST(contains(other_shape.err, "--heads"), other_shape.err);
  Run resumed = run(dir, translate_train_any(dir, "parts") + transformer + " --max-steps 20 --resume");
  BOOST_TEST_REQUIRE(resumed.status == 0, resumed.err);
  check_same_tensors(dir.file("whole/checkpoint.safetensors"), dir.file("parts/checkpoint.safetensors"));
  BOOST_TEST(contains(read_file(dir.file("whole/config.json")), "\"architecture\": \"transformer\""));

  Run eval = run(dir, translate + " eval --model " + dir.file("whole") + " --src " + dir.file("valid.src") + " --ref " +
                          dir.file("valid.tgt") + " --beam 2 --threads 1");
  BOOST_TEST(eval.status == 0, eval.err);
  BOOST_TEST((contains(eval.out, "BLEU|nrefs:1|") && contains(eval.out, "chrF2|nrefs:1|") && contains(eval.out, "perplexity")),
             eval.out);
  Run translated = run(dir, translate + " translate --model " + dir.file("whole") + " --attention-layer 1 --attention-svg " +
                                dir.file("a.svg"),
                       "a b c\n\nD E F\n");
  BOOST_TEST(translated.status == 0, translated.err);
  BOOST_TEST(std::count(translated.out.begin(), translated.out.end(), '\n') == 3);
  BOOST_TEST(contains(read_file(dir.file("a.svg")), "<svg"));
  Run one_head = run(dir, translate + " translate --model " + dir.file("whole") + " --attention-layer 1 --attention-head 2 " +
                               "--attention-svg " + dir.file("head.svg"),
                     "a b c\n\nD E F\n");
  BOOST_TEST(one_head.status == 0, one_head.err);
  BOOST_TEST(one_head.out == translated.out);
  BOOST_TEST(contains(read_file(dir.file("head.svg")), "<svg"));
  BOOST_TEST(read_file(dir.file("head.svg")) != read_file(dir.file("a.svg")));
  Run past_the_layers = run(dir, translate + " translate --model " + dir.file("whole") + " --attention-layer 3", "a b\n");
  BOOST_TEST(past_the_layers.status == 2);
  BOOST_TEST(contains(past_the_layers.err, "the decoder has 2 layers"), past_the_layers.err);
  Run past_the_heads = run(dir, translate + " translate --model " + dir.file("whole") + " --attention-head 9", "a b\n");
  BOOST_TEST(past_the_heads.status == 2);
  BOOST_TEST(contains(past_the_heads.err, "--attention-head 9"), past_the_heads.err);
  Run forcing = run(dir, translate_train_any(dir, "forced") + transformer + " --teacher-forcing 0.5");
  BOOST_TEST(forcing.status == 2);
  BOOST_TEST(contains(forcing.err, "--teacher-forcing needs --arch rnn; --arch is transformer"), forcing.err);
  Run rnn_flag = run(dir, translate_train_any(dir, "other") + transformer + " --hidden 8");
  BOOST_TEST(rnn_flag.status == 2);
  BOOST_TEST(contains(rnn_flag.err, "--hidden needs --arch rnn; --arch is transformer"), rnn_flag.err);
  Run transformer_flag = run(dir, translate_train(dir, "other") + " --decoder-layers 2");
  BOOST_TEST(transformer_flag.status == 2);
  BOOST_TEST(contains(transformer_flag.err, "--decoder-layers needs --arch transformer; --arch is rnn (the default)"),
             transformer_flag.err);
}

BOOST_AUTO_TEST_CASE(a_transformer_classifier_trains_resumes_evaluates_and_predicts) {
  TempDir dir;
  write_presence_tsv(dir, "train.tsv", 300, 4);
  write_presence_tsv(dir, "valid.tsv", 40, 5);
  const std::string any_length =
      classify + " train --train " + dir.file("train.tsv") + " --valid " + dir.file("valid.tsv") +
      " --text-column text --arch transformer --d-model 16 --heads 2 --ff-size 32 --encoder-layers 2 --max-positions 8"
      " --schedule inverse-sqrt --warmup 5 --beta2 0.98 --dropout 0.1 --batch 16 --epochs 3 --threads 1";
  const std::string train = any_length + " --max-length 8";
  // 19 batches per epoch.
  BOOST_TEST_REQUIRE(run(dir, train + " --pooling mean --out " + dir.file("whole") + " --max-steps 30").status == 0);
  BOOST_TEST_REQUIRE(run(dir, train + " --pooling mean --out " + dir.file("parts") + " --max-steps 11").status == 0);
  Run other_shape = run(dir, train + " --out " + dir.file("parts") + " --max-steps 30 --resume");
  BOOST_TEST(other_shape.status == 2);
  BOOST_TEST(contains(other_shape.err, "--pooling mean (given attention)"), other_shape.err);
  Run resumed = run(dir, train + " --pooling mean --out " + dir.file("parts") + " --max-steps 30 --resume");
  BOOST_TEST_REQUIRE(resumed.status == 0, resumed.err);
  check_same_tensors(dir.file("whole/checkpoint.safetensors"), dir.file("parts/checkpoint.safetensors"));
  const std::string config = read_file(dir.file("whole/config.json"));
  BOOST_TEST((contains(config, "\"architecture\": \"transformer\"") && contains(config, "\"pooling\": \"mean\"")), config);

  const std::string eval_whole = classify + " eval --model " + dir.file("whole") + " --data " + dir.file("valid.tsv") +
                                 " --text-column text --max-length ";
  Run eval = run(dir, eval_whole + "8");
  BOOST_TEST(eval.status == 0, eval.err);
  BOOST_TEST((contains(eval.out, "accuracy") && contains(eval.out, "macro") && contains(eval.out, "yes")), eval.out);
  Run eval_too_long = run(dir, eval_whole + "9");
  BOOST_TEST(eval_too_long.status == 2);
  BOOST_TEST(contains(eval_too_long.err, "--max-length 9 is more than the 8 positions the model of"), eval_too_long.err);
  Run predicted = run(dir, classify + " predict --model " + dir.file("whole") + " --explain-svg " + dir.file("e.svg"),
                      "a x b\nc d\n");
  BOOST_TEST(predicted.status == 0, predicted.err);
  BOOST_TEST(std::count(predicted.out.begin(), predicted.out.end(), '\t') == 2, predicted.out);
  BOOST_TEST(contains(read_file(dir.file("e.svg")), "<svg"));
  Run too_long = run(dir, classify + " predict --model " + dir.file("whole"), "a b\na b c d e f a b c\n");
  BOOST_TEST(too_long.status == 1);
  BOOST_TEST(std::count(too_long.out.begin(), too_long.out.end(), '\t') == 1, too_long.out);
  BOOST_TEST(contains(too_long.err, "<stdin>:2: 9 tokens; the model reads at most 8 (its --max-positions)"), too_long.err);

  BOOST_TEST_REQUIRE(run(dir, train + " --out " + dir.file("attention") + " --max-steps 3").status == 0);
  // Flags of the other architecture, and texts longer than the model reads, are refused.
  Run rnn_flag = run(dir, train + " --hidden 8 --out " + dir.file("x"));
  BOOST_TEST(rnn_flag.status == 2);
  BOOST_TEST(contains(rnn_flag.err, "--hidden needs --arch rnn; --arch is transformer"), rnn_flag.err);
  Run transformer_flag = run(dir, classify + " train --train " + dir.file("train.tsv") + " --pooling mean --out " + dir.file("x"));
  BOOST_TEST(transformer_flag.status == 2);
  BOOST_TEST(contains(transformer_flag.err, "--pooling needs --arch transformer; --arch is rnn (the default)"),
             transformer_flag.err);
  Run longer = run(dir, any_length + " --max-length 9 --out " + dir.file("x"));
  BOOST_TEST(longer.status == 2);
  BOOST_TEST(contains(longer.err, "--max-length 9 is more than --max-positions 8"), longer.err);
  BOOST_TEST(!std::filesystem::exists(dir.file("x")));
  Run attention = run(dir, classify + " predict --model " + dir.file("attention"), "a x b\n");
  BOOST_TEST(attention.status == 0, attention.err);
  BOOST_TEST(contains(read_file(dir.file("attention/config.json")), "\"pooling\": \"attention\""));
}

BOOST_AUTO_TEST_CASE(classify_trains_evaluates_predicts_and_resumes) {
  TempDir dir;
  write_presence_tsv(dir, "train.tsv", 300, 4);
  write_presence_tsv(dir, "valid.tsv", 40, 5);
  const std::string train = classify + " train --train " + dir.file("train.tsv") + " --valid " + dir.file("valid.tsv") +
                            " --text-column text --emb 8 --hidden 8 --attention-size 8 --batch 16 --epochs 3 --threads 1";
  // 19 batches per epoch.
  BOOST_TEST_REQUIRE(run(dir, train + " --out " + dir.file("whole") + " --max-steps 30").status == 0);
  BOOST_TEST_REQUIRE(run(dir, train + " --out " + dir.file("parts") + " --max-steps 11").status == 0);
  BOOST_TEST_REQUIRE(run(dir, train + " --out " + dir.file("parts") + " --max-steps 30 --resume").status == 0);
  check_same_tensors(dir.file("whole/checkpoint.safetensors"), dir.file("parts/checkpoint.safetensors"));
  // Mixed precision is a flag of every training program; the products say how they run.
  const Run mixed = run(dir, train + " --out " + dir.file("mixed") + " --max-steps 3 --precision bf16");
  BOOST_TEST(mixed.status == 0, mixed.err);
  BOOST_TEST(contains(mixed.out, "matrix products in bf16"), mixed.out);
  const Run half = run(dir, train + " --out " + dir.file("half") + " --max-steps 3 --precision fp16");
  BOOST_TEST(half.status == 2);
  BOOST_TEST((contains(half.err, "--precision") && contains(half.err, "bf16")), half.err);

  Run eval = run(dir, classify + " eval --model " + dir.file("whole") + " --data " + dir.file("valid.tsv") + " --text-column text");
  BOOST_TEST(eval.status == 0, eval.err);
  BOOST_TEST((contains(eval.out, "accuracy") && contains(eval.out, "macro") && contains(eval.out, "yes")), eval.out);
  Run predicted = run(dir, classify + " predict --model " + dir.file("whole") + " --explain-svg " + dir.file("e.svg"),
                      "a x b\nc d\n");
  BOOST_TEST(predicted.status == 0, predicted.err);
  BOOST_TEST(std::count(predicted.out.begin(), predicted.out.end(), '\t') == 2, predicted.out);
  BOOST_TEST(contains(read_file(dir.file("e.svg")), "<svg"));

  Run unknown_label = run(dir, classify + " eval --model " + dir.file("whole") + " --data " + dir.file("bad.tsv"));
  BOOST_TEST(unknown_label.status == 1);
  dir.write("bad.tsv", "text\tlabel\na b\tmaybe\n");
  unknown_label = run(dir, classify + " eval --model " + dir.file("whole") + " --data " + dir.file("bad.tsv") + " --text-column text");
  BOOST_TEST(unknown_label.status == 1);
  BOOST_TEST((contains(unknown_label.err, "bad.tsv:2") && contains(unknown_label.err, "maybe")), unknown_label.err);
  Run no_column = run(dir, classify + " eval --model " + dir.file("whole") + " --data " + dir.file("valid.tsv"));
  BOOST_TEST(no_column.status == 1);
  BOOST_TEST(contains(no_column.err, "sentence"), no_column.err);
  BOOST_TEST(run(dir, classify + " train --train x --out y --valid-split 2").status == 2);
}

// xgrad-images on square images of 16 x 16: a run stopped and resumed ends as an
// uninterrupted one (flips included); eval prints the scores and the confusion matrix; predict
// prints a line per image of the range and draws the attention.
BOOST_AUTO_TEST_CASE(images_trains_resumes_evaluates_and_predicts) {
  TempDir dir;
  write_square_idx(dir, "train", 300, 4);
  write_square_idx(dir, "valid", 40, 5);
  const std::string train = images_train(dir, "whole") + " --class-names tl,tr,bl,br --flip";
  // 270 images for training, 30 held out: 17 batches per epoch.
  const Run whole = run(dir, train + " --max-steps 30");
  BOOST_TEST_REQUIRE(whole.status == 0, whole.err);
  BOOST_TEST(contains(whole.out, "270 training and 30 validation images of 16 x 16; 4 classes, a 4 x 4 grid"), whole.out);
  const std::string parts = images_train(dir, "parts") + " --class-names tl,tr,bl,br --flip";
  BOOST_TEST_REQUIRE(run(dir, parts + " --max-steps 11").status == 0);
  const Run resumed = run(dir, parts + " --max-steps 30 --resume");
  BOOST_TEST_REQUIRE(resumed.status == 0, resumed.err);
  BOOST_TEST(contains(resumed.out, "resuming"), resumed.out);
  check_same_tensors(dir.file("whole/checkpoint.safetensors"), dir.file("parts/checkpoint.safetensors"));
  const std::string config = read_file(dir.file("whole/config.json"));
  BOOST_TEST((contains(config, "\"architecture\": \"image\"") && contains(config, "\"height\": 16")), config);
  BOOST_TEST(contains(read_file(dir.file("whole/log.csv")), "valid_accuracy,valid_macro_f1"));

  const std::string valid = " --images " + dir.file("valid-images.idx") + " --labels " + dir.file("valid-labels.idx");
  const Run eval = run(dir, images + " eval --model " + dir.file("whole") + valid);
  BOOST_TEST(eval.status == 0, eval.err);
  BOOST_TEST((contains(eval.out, "40 images from") && contains(eval.out, "macro-F1") && contains(eval.out, "br") &&
              contains(eval.out, "confusion matrix")),
             eval.out);
  const Run predicted = run(dir, images + " predict --model " + dir.file("whole") + valid + " --first 2 --count 3" +
                                     " --attention-svg " + dir.file("a.svg"));
  BOOST_TEST(predicted.status == 0, predicted.err);
  BOOST_TEST(std::count(predicted.out.begin(), predicted.out.end(), '\n') == 3, predicted.out);
  BOOST_TEST(std::count(predicted.out.begin(), predicted.out.end(), '\t') == 9, predicted.out);  // index, class, probability, truth
  BOOST_TEST(predicted.out.rfind("2\t", 0) == 0u, predicted.out);
  const std::string svg = read_file(dir.file("a.svg"));
  BOOST_TEST((contains(svg, "<svg") && contains(svg, "#4: ") && contains(svg, ", truly ")), svg.substr(0, 200));
  const Run unlabelled = run(dir, images + " predict --model " + dir.file("whole") + " --images " +
                                      dir.file("valid-images.idx") + " --count 2");
  BOOST_TEST(unlabelled.status == 0, unlabelled.err);
  BOOST_TEST(std::count(unlabelled.out.begin(), unlabelled.out.end(), '\t') == 4, unlabelled.out);
}

BOOST_AUTO_TEST_CASE(images_errors_get_their_exit_codes_and_messages) {
  TempDir dir;
  write_square_idx(dir, "train", 60, 6);
  BOOST_TEST_REQUIRE(run(dir, images_train(dir, "m") + " --max-steps 2").status == 0);
  std::filesystem::copy(dir.file("m"), dir.file("m-rnn"));
  std::string config = read_file(dir.file("m/config.json"));
  dir.write("m-rnn/config.json", config.replace(config.find("\"image\""), 7, "\"rnn\""));
  models::LabelledImages small{.height = 8, .width = 8, .pixels = std::vector<std::uint8_t>(64, 0), .labels = {1}};
  testing::write_idx(small, dir.file("small-images.idx"), dir.file("small-labels.idx"));
  models::LabelledImages unknown{.height = 16, .width = 16, .pixels = std::vector<std::uint8_t>(256, 0), .labels = {7}};
  testing::write_idx(unknown, dir.file("unknown-images.idx"), dir.file("unknown-labels.idx"));
  write_square_idx(dir, "other", 5, 7);

  const std::string m = " --model " + dir.file("m"), train_images = " --images " + dir.file("train-images.idx");
  const std::string train_data = train_images + " --labels " + dir.file("train-labels.idx");
  struct Row {
    std::string command;
    int status;
    std::vector<std::string> named;  // what the message must name
    std::string stdout_redirection = "";
  };
  const std::vector<Row> rows{
      {images + " train --help", 0, {}},
      {images + " train" + train_data, 2, {"--out"}},
      {images_train(dir, "x") + " --patch-size 2", 2, {"--patch-size needs --stem patches"}},
      {images_train(dir, "x") + " --stem patches --stages 2", 2, {"--stages needs --stem convolution"}},
      {images_train(dir, "x", " --d-model 8 --heads 3"), 2, {"do not fit together", "heads 3 does not divide model_size 8"}},
      {images_train(dir, "x") + " --stages 5", 2, {"do not fit together", "multiples of 32"}},
      {images_train(dir, "x") + " --class-names a,b", 2, {"--class-names gives 2 names", "holds label 3"}},
      {images_train(dir, "x") + " --class-names a,a,b,c", 2, {"--class-names: LabelSet: label 'a' occurs twice"}},
      {images_train(dir, "m", " --d-model 16 --heads 2 --ff-size 16 --attention-size 8") + " --resume", 2,
       {"--d-model 8 (given 16)"}},
      {images_train(dir, "x") + " --valid-split 0.01", 1, {"train-images.idx: --valid-split 0.01 of its 60 images holds out none"}},
      {images + " train --images " + dir.file("train-images.idx") + " --labels " + dir.file("other-labels.idx") +
           " --out " + dir.file("x"),
       1, {"train-images.idx", "other-labels.idx", "60", "5"}},
      {images + " eval" + m + " --images " + dir.file("small-images.idx") + " --labels " + dir.file("small-labels.idx"), 1,
       {"small-images.idx: images of 8 x 8; the model reads 16 x 16"}},
      {images + " eval" + m + " --images " + dir.file("unknown-images.idx") + " --labels " + dir.file("unknown-labels.idx"),
       1, {"unknown-labels.idx: label 7 of image 0; the model knows 4 classes (0 to 3)"}},
      {images + " eval --model " + dir.file("m-rnn") + train_data, 1,
       {"m-rnn/config.json: \"architecture\" is \"rnn\"; expected \"image\""}},
      {images + " eval --model " + dir.file("absent") + train_data, 1, {"absent/config.json", "No such file"}},
      {images + " predict" + m + train_images + " --first 59 --count 2", 2,
       {"--first 59 --count 2 reaches past the 60 images of"}},
      {images + " predict" + m + train_images + " --attention-svg " + dir.file("absent/a.svg"), 2,
       {"--attention-svg", "does not exist"}},
      {images + " predict" + m + train_images, 1, {"standard output"}, "> /dev/full"},
      {images + " predict" + m + train_images + " --attention-svg /dev/full", 1, {"/dev/full"}},
  };
  for (const Row& row : rows) {
    BOOST_TEST_CONTEXT(row.command) {
      const Run result = run(dir, row.command, "", row.stdout_redirection);
      BOOST_TEST(result.status == row.status, result.err);
      for (const std::string& part : row.named) BOOST_TEST(contains(result.err, part), result.err);
    }
  }
  BOOST_TEST(!std::filesystem::exists(dir.file("x")));
}

namespace {

// Starts `command` in the background (exec'd by the shell, so the pid is the program's).
pid_t start(const std::string& command) {
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + command + " > /dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

}  // namespace

BOOST_AUTO_TEST_CASE(killing_training_at_random_moments_never_breaks_the_checkpoint) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 200, 6);
  write_reversal_corpus(dir, "valid", 20, 7);
  // About half a second of training, checkpointing after every one of its 400 steps.
  const std::string flags = " --max-steps 400 --checkpoint-every 1";
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "whole", 40) + flags).status == 0);

  Generator delays(8);
  int kills = 0;
  bool finished = false;
  const std::string checkpoint = dir.file("killed/checkpoint.safetensors");
  // --resume once there is a checkpoint: a run killed before its first starts again.
  auto killed_run = [&] {
    return translate_train(dir, "killed", 40) + flags + (std::filesystem::exists(checkpoint) ? " --resume" : "");
  };
  for (int attempt = 0; attempt < 200 && !finished; ++attempt) {
    const pid_t pid = start(killed_run());
    ::usleep(static_cast<useconds_t>(5000 + delays.below(150000)));  // 5-155 ms
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!finished) ++kills;
    if (!std::filesystem::exists(checkpoint)) continue;
    // Whatever the moment of the kill, the checkpoint is a whole one: it parses and holds all parts.
    const safetensors::File file = safetensors::File::read(checkpoint);
    BOOST_TEST_REQUIRE(file.contains("model.output.weight"));
    BOOST_TEST_REQUIRE(file.metadata().count("progress.steps") == 1u);
  }
  BOOST_TEST_MESSAGE("killed " << kills << " times");
  BOOST_TEST(kills >= 3);
  if (!finished) BOOST_TEST_REQUIRE(run(dir, killed_run()).status == 0);
  check_same_tensors(dir.file("whole/checkpoint.safetensors"), checkpoint);
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("killed"))) {
    BOOST_TEST(entry.path().filename().string().find(".tmp-") == std::string::npos, entry.path());  // cleaned up
  }
  // A killed run leaves its lock file, but not its lock: --resume is not refused.
  BOOST_TEST(std::filesystem::exists(dir.file("killed/run.lock")));
}

// Validation held out of --train is saved with the model, so that eval reproduces the
// accuracy that training reported for the kept weights.
BOOST_AUTO_TEST_CASE(classify_saves_the_held_out_texts_for_eval) {
  TempDir dir;
  write_presence_tsv(dir, "train.tsv", 200, 13);
  Run trained = run(dir, classify + " train --train " + dir.file("train.tsv") + " --text-column text --emb 8 --hidden 8" +
                             " --attention-size 8 --epochs 2 --threads 1 --valid-split 0.2 --out " + dir.file("m"));
  BOOST_TEST_REQUIRE(trained.status == 0, trained.err);
  const std::string held_out = read_file(dir.file("m/held_out.tsv"));
  BOOST_TEST(held_out.starts_with("text\tlabel\n"));
  BOOST_TEST(std::count(held_out.begin(), held_out.end(), '\n') == 41);  // the header and 20% of 200
  const std::string reported = "best validation accuracy ";
  const std::size_t best = trained.out.find(reported);
  BOOST_TEST_REQUIRE(best != std::string::npos, trained.out);
  const std::size_t start = best + reported.size();
  const std::string accuracy = trained.out.substr(start, trained.out.find('%', start) - start);
  Run eval = run(dir, classify + " eval --model " + dir.file("m") + " --data " + dir.file("m/held_out.tsv") +
                          " --text-column text");
  BOOST_TEST_REQUIRE(eval.status == 0, eval.err);
  BOOST_TEST(eval.out.find("accuracy " + accuracy + "%") != std::string::npos, eval.out << " vs " << accuracy);
}

namespace {

// A classifier run long enough to be stopped in its first epoch; returns its pid once it
// has claimed `out` (written run.json).
pid_t start_long_classify_run(const TempDir& dir, const std::string& out) {
  write_presence_tsv(dir, "long.tsv", 3000, 9);
  const pid_t pid = start(classify + " train --train " + dir.file("long.tsv") + " --text-column text --emb 8 --hidden 8" +
                          " --attention-size 8 --epochs 50 --threads 1 --out " + dir.file(out));
  for (int waited = 0; waited < 500 && !std::filesystem::exists(dir.file(out + "/config.json")); ++waited) ::usleep(20000);
  return pid;
}

int exit_status(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

// Ctrl-C, and SIGTERM as a scheduler or container stops a job, both checkpoint and exit 130.
BOOST_AUTO_TEST_CASE(ctrl_c_and_sigterm_save_and_exit_cleanly) {
  for (const int signal : {SIGINT, SIGTERM}) {
    BOOST_TEST_CONTEXT("signal " << signal) {
      TempDir dir;
      const pid_t pid = start_long_classify_run(dir, "m");
      ::usleep(300000);  // well inside the first epoch
      ::kill(pid, signal);
      BOOST_TEST(exit_status(pid) == 130);
      const safetensors::File file = safetensors::File::read(dir.file("m/checkpoint.safetensors"));
      BOOST_TEST(file.metadata().at("progress.epoch") != "");
      Run resumed = run(dir, classify + " train --train " + dir.file("long.tsv") + " --text-column text --emb 8 --hidden 8" +
                                 " --attention-size 8 --epochs 50 --threads 1 --out " + dir.file("m") +
                                 " --resume --max-steps 1");
      BOOST_TEST(resumed.status == 0, resumed.err);
    }
  }
}

// One run per directory: a second training run on a directory in use is refused, naming the
// directory and the run holding it, whether it would start anew or resume.
BOOST_AUTO_TEST_CASE(a_directory_in_use_by_a_run_is_refused) {
  TempDir dir;
  write_presence_tsv(dir, "small.tsv", 100, 14);
  const pid_t pid = start_long_classify_run(dir, "m");
  const std::string second = classify + " train --train " + dir.file("small.tsv") + " --text-column text --emb 8 --hidden 8" +
                             " --attention-size 8 --threads 1 --out " + dir.file("m");
  for (const char* resume : {"", " --resume"}) {
    Run refused = run(dir, second + resume);
    BOOST_TEST(refused.status == 2, refused.err);
    BOOST_TEST((contains(refused.err, dir.file("m")) && contains(refused.err, "pid " + std::to_string(pid))), refused.err);
  }
  ::kill(pid, SIGTERM);
  BOOST_TEST(exit_status(pid) == 130);
}

// Nothing is written into --out before every check has passed; a refused directory is left
// as it was; output files are written through links and into FIFOs, never replaced.
BOOST_AUTO_TEST_CASE(refused_runs_write_nothing_and_outputs_keep_links_and_fifos) {
  TempDir dir;
  write_presence_tsv(dir, "train.tsv", 60, 15);
  write_reversal_corpus(dir, "train", 40, 16);
  write_reversal_corpus(dir, "valid", 10, 17);
  const std::string classify_train = classify + " train --train " + dir.file("train.tsv") +
                                     " --text-column text --emb 8 --hidden 8 --attention-size 8 --threads 1 --max-steps 1";
  std::filesystem::create_directory(dir.file("empty"));
  for (const std::string& refused : {classify_train + " --attention multihead --heads 3 --out " + dir.file("new"),
                                     translate_train(dir, "new") + " --attention dot",
                                     classify_train + " --valid " + dir.file("absent.tsv") + " --out " + dir.file("new"),
                                     classify_train + " --attention multihead --heads 3 --out " + dir.file("empty")}) {
    BOOST_TEST_CONTEXT(refused) {
      BOOST_TEST(run(dir, refused).status != 0);
      BOOST_TEST(!std::filesystem::exists(dir.file("new")));
      BOOST_TEST(entries(dir.file("empty")).empty());
    }
  }
  std::filesystem::create_directory(dir.file("mine"));
  dir.write("mine/model.safetensors", "my own weights");
  BOOST_TEST(run(dir, classify_train + " --out " + dir.file("mine")).status == 2);
  BOOST_TEST((entries(dir.file("mine")) == std::set<std::string>{"model.safetensors"}));
  BOOST_TEST(read_file(dir.file("mine/model.safetensors")) == "my own weights");

  BOOST_TEST_REQUIRE(run(dir, classify_train + " --out " + dir.file("c")).status == 0);
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "t") + " --max-steps 1").status == 0);
  std::filesystem::create_directory(dir.file("pictures"));
  struct Output {
    std::string command, input, flag;
  };
  for (const Output& output : {Output{classify + " predict --model " + dir.file("c"), "a x b\n", " --explain-svg "},
                               Output{translate + " translate --model " + dir.file("t"), "a b\n", " --attention-svg "}}) {
    BOOST_TEST_CONTEXT(output.command) {
      std::filesystem::remove(dir.file("link.svg"));
      std::filesystem::create_symlink("pictures/drawn.svg", dir.file("link.svg"));
      Run linked = run(dir, output.command + output.flag + dir.file("link.svg"), output.input);
      BOOST_TEST(linked.status == 0, linked.err);
      BOOST_TEST(std::filesystem::is_symlink(dir.file("link.svg")));
      BOOST_TEST(contains(read_file(dir.file("pictures/drawn.svg")), "<svg"));

      const std::string fifo = dir.file("pipe.svg");
      std::filesystem::remove(fifo);
      BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
      std::string received;
      std::thread reader([&] { received = xgrad::testing::read_until_end(fifo); });
      Run piped = run(dir, output.command + output.flag + fifo, output.input);
      ::close(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK));  // a reader still waiting (nothing was written) sees the end
      reader.join();
      BOOST_TEST(piped.status == 0, piped.err);
      BOOST_TEST(contains(received, "<svg"));
      BOOST_TEST(std::filesystem::is_fifo(fifo));

      BOOST_TEST(run(dir, output.command + output.flag + "/dev/null", output.input).status == 0);
    }
  }
}

// Every program-level row of docs/errors.md: the exit code (2 for a usage error, 1 for a data
// error, never a signal) and the part of the message that names the place.
BOOST_AUTO_TEST_CASE(every_documented_error_gets_its_exit_code_and_message) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 60, 10);
  write_reversal_corpus(dir, "valid", 10, 11);
  dir.write("short.tgt", "a b\n");
  write_presence_tsv(dir, "train.tsv", 60, 12);
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "t") + " --max-steps 2").status == 0);
  BOOST_TEST_REQUIRE(run(dir, classify + " train --train " + dir.file("train.tsv") + " --text-column text --emb 8 --hidden 8" +
                                  " --attention-size 8 --max-steps 2 --out " + dir.file("c"))
                         .status == 0);
  // Broken copies of the two model directories.
  for (const char* copy : {"t-broken-weights", "t-broken-config", "t-broken-vocab"}) {
    std::filesystem::copy(dir.file("t"), dir.file(copy));
  }
  for (const char* copy : {"t-small-vocab", "t-nan-weights", "t-later-rule"}) std::filesystem::copy(dir.file("t"), dir.file(copy));
  for (const char* copy : {"c-broken-labels", "c-broken-config", "c-more-labels", "c-zero-weights"}) {
    std::filesystem::copy(dir.file("c"), dir.file(copy));
  }
  dir.write("t-broken-weights/model.safetensors", read_file(dir.file("t/model.safetensors")).substr(0, 100));
  dir.write("t-broken-config/config.json", "{\"source_vocabulary\": 12");
  dir.write("t-broken-vocab/source.vocab.json", "{\"format\": \"xgrad-vocabulary\", \"version\": 1}");
  dir.write("c-broken-labels/labels.json", "[\"no\"");
  std::string config = read_file(dir.file("c/config.json"));
  const std::size_t classes = config.find("\"classes\": 2");
  BOOST_TEST_REQUIRE(classes != std::string::npos);
  dir.write("c-broken-config/config.json", config.replace(classes, 12, "\"classes\": 10000000000000"));
  dir.write("no-column.tsv", "words\tlabel\na b\tyes\n");
  dir.write("columns.tsv", "text\tlabel\na b\tyes\nc\tno\textra\n");
  dir.write("empty-text.tsv", "text\tlabel\n \tyes\n");
  dir.write("unknown-label.tsv", "text\tlabel\na b\tmaybe\n");
  write_reversal_corpus(dir, "tiny", 5, 18);  // one batch, where "t" stopped after its second
  std::filesystem::create_directory(dir.file("empty"));
  std::filesystem::create_directory(dir.file("foreign-weights"));
  dir.write("foreign-weights/model.safetensors", "someone's weights");
  std::filesystem::create_directory(dir.file("users-own"));
  for (const char* name : {"config.json", "vocab.json", "log.csv"}) dir.write(std::string("users-own/") + name, "mine");
  dir.write("t-small-vocab/source.vocab.json", R"({"format": "xgrad-vocabulary", "version": 1, "specials": )"
                                               R"(["<pad>", "<unk>", "<sos>", "<eos>"], "tokens": []})");
  {
    std::string vocabulary = read_file(dir.file("t/source.vocab.json"));
    const std::size_t rule = vocabulary.find("moses-lowercase-de-v1");
    BOOST_TEST_REQUIRE(rule != std::string::npos);
    dir.write("t-later-rule/source.vocab.json", vocabulary.replace(rule, 21, "moses-lowercase-de-v9"));
  }
  dir.write("c-more-labels/labels.json", R"({"format": "xgrad-labels", "version": 1, "labels": ["no", "yes", "maybe"]})");
  std::filesystem::remove(dir.file("c-zero-weights/model.safetensors"));
  std::filesystem::create_symlink("/dev/zero", dir.file("c-zero-weights/model.safetensors"));
  {
    const safetensors::File weights = safetensors::File::read(dir.file("t/model.safetensors"));
    safetensors::Writer writer;
    for (const std::string& name : weights.names()) {
      Array<float> values = weights.floats<float>(name);
      if (name == "output.weight") values.data()[3] = std::numeric_limits<float>::quiet_NaN();
      writer.add(name, values);
    }
    writer.write(dir.file("t-nan-weights/model.safetensors"));
  }
  dir.write("latin1.src", "a b\nc\xe9 d\n");
  dir.write("latin1.tgt", "b a\nd c\n");
  dir.write("latin1.tsv", "text\tlabel\na b\tyes\n\xff\tno\n");
  dir.write("empty.src", "");
  dir.write("empty.tgt", "");
  dir.write("header-only.tsv", "text\tlabel\n");
  dir.write("two.tsv", "text\tlabel\na b\tyes\nc d\tno\n");

  struct Row {
    std::string command;
    std::string input;
    int status;
    std::vector<std::string> named;  // what the message must name
    std::string stdout_redirection = "";
  };
  const std::string t = translate, c = classify, m = " --model " + dir.file("t"), mc = " --model " + dir.file("c");
  const std::string corpus = " --src " + dir.file("valid.src") + " --ref " + dir.file("valid.tgt");
  const std::vector<Row> rows{
      // command line
      {t + " train --epochs", "", 2, {"--epochs"}},
      {translate_train(dir, "x") + " --layers 0", "", 2, {"--layers", "0"}},
      {translate_train(dir, "x") + " --layers ten", "", 2, {"--layers", "ten"}},
      {translate_train(dir, "x") + " --cell rnn", "", 2, {"--cell", "rnn", "gru"}},
      {translate_train(dir, "x") + " --dropout 2", "", 2, {"--dropout", "2"}},
      {translate_train(dir, "x") + " --frobnicate", "", 2, {"--frobnicate"}},
      {translate_train(dir, "x") + " --seed 2 --seed 3", "", 2, {"--seed", "more than once"}},
      {t + " train --out " + dir.file("x"), "", 2, {"--train-src"}},
      {t + " frobnicate", "", 2, {"frobnicate"}},
      {t + " eval" + m + corpus + " --beam 0", "", 2, {"--beam", "0"}},
      {translate_train(dir, "t"), "", 2, {"--out", "--resume"}},
      {c + " train --train " + dir.file("train.tsv") + " --valid x --valid-split 0.2 --out y", "", 2, {"--valid-split"}},
      {c + " predict" + mc + " --threads 0", "", 2, {"--threads", "0"}},
      {translate_train(dir, "x") + " --source-lang fr", "", 2, {"--source-lang", "fr", "de, en"}},
      {translate_train(dir, "x") + " --tokenizer space --target-lang de", "", 2, {"--target-lang", "--tokenizer moses"}},
      {c + " train --train " + dir.file("train.tsv") + " --text-column text --tokenizer nltk --out " + dir.file("x"), "", 2,
       {"--tokenizer", "nltk", "penn, moses, space"}},
      {t + " translate" + m + " --output-form words", "a b\n", 2, {"--output-form", "words", "text, tokens"}},
      // run directories
      {translate_train(dir, "foreign-weights"), "", 2, {"foreign-weights", "model.safetensors"}},
      {c + " train --train " + dir.file("train.tsv") + " --text-column text --out " + dir.file("users-own"), "", 2,
       {"users-own", "config.json, log.csv, vocab.json"}},
      {translate_train(dir, "x") + " --resume", "", 2, {"--resume", dir.file("x"), "does not exist"}},
      {translate_train(dir, "empty") + " --resume", "", 2, {"--resume", dir.file("empty"), "no training run"}},
      {t + " train --train-src " + dir.file("train.src") + " --train-tgt " + dir.file("train.tgt") + " --valid-src " +
           dir.file("valid.src") + " --valid-tgt " + dir.file("valid.tgt") + " --out " + dir.file("t") +
           " --emb 8 --hidden 16 --cell lstm --min-freq 1 --resume",
       "", 2, {"--resume", "--hidden 8 (given 16), --cell gru (given lstm)"}},
      {c + " train --train " + dir.file("train.tsv") + " --text-column text --emb 8 --hidden 8 --attention-size 8 --out " +
           dir.file("c") + " --resume --min-freq 3 --unidirectional",
       "", 2, {"--min-freq 2 (given 3)", "--unidirectional off (given on)"}},
      {t + " train --train-src " + dir.file("tiny.src") + " --train-tgt " + dir.file("tiny.tgt") + " --valid-src " +
           dir.file("valid.src") + " --valid-tgt " + dir.file("valid.tgt") + " --out " + dir.file("t") +
           " --emb 8 --hidden 8 --batch 16 --threads 1 --min-freq 1 --resume",
       "", 2, {"t/checkpoint.safetensors", "after batch 2", "only 1 batches"}},
      // model options that do not fit together
      {translate_train(dir, "x") + " --attention dot", "", 2, {"--attention dot", "--hidden 8", "decoder_hidden"}},
      {c + " train --train " + dir.file("train.tsv") + " --text-column text --hidden 8 --attention multihead --heads 3 --out " +
           dir.file("x"),
       "", 2, {"--heads 3", "--hidden 8", "divide"}},
      // standard output and output files
      {c + " predict" + mc, "a b\n", 1, {"standard output", "No space left on device"}, "> /dev/full"},
      {c + " predict" + mc, "a b\n", 1, {"standard output", "Bad file descriptor"}, ">&-"},
      {c + " eval" + mc + " --data " + dir.file("train.tsv") + " --text-column text", "", 1, {"standard output"}, "> /dev/full"},
      {t + " translate" + m, "a b\n", 1, {"standard output"}, "> /dev/full"},
      {t + " eval" + m + corpus, "", 1, {"standard output"}, "> /dev/full"},
      {t + " train --help", "", 1, {"standard output"}, "> /dev/full"},
      {translate_train(dir, "to-full-stdout") + " --max-steps 1", "", 1, {"standard output"}, "> /dev/full"},
      {c + " predict" + mc + " --explain-svg /dev/full", "a b\n", 1, {"/dev/full", "No space left on device"}},
      {t + " translate" + m + " --attention-svg " + dir.file("empty"), "a b\n", 2,
       {"--attention-svg", dir.file("empty"), "is a directory"}},
      {c + " predict" + mc + " --explain-svg " + dir.file("absent/e.svg"), "a b\n", 2,
       {"--explain-svg", dir.file("absent"), "does not exist"}},
      // parallel text
      {t + " train --train-src " + dir.file("absent.src") + " --train-tgt " + dir.file("train.tgt") + " --valid-src " +
           dir.file("valid.src") + " --valid-tgt " + dir.file("valid.tgt") + " --out " + dir.file("x"),
       "", 1, {"absent.src", "No such file"}},
      {t + " eval" + m + " --src " + dir.file("train.src") + " --ref " + dir.file("short.tgt"), "", 1,
       {"train.src", "short.tgt", "60 lines", "has 1"}},
      // TSV
      {c + " train --train " + dir.file("no-column.tsv") + " --text-column text --out " + dir.file("x"), "", 1,
       {"no-column.tsv", "'text'"}},
      {c + " train --train " + dir.file("columns.tsv") + " --text-column text --out " + dir.file("x"), "", 1,
       {"columns.tsv:3", "3 tab-separated columns"}},
      {c + " train --train " + dir.file("empty-text.tsv") + " --text-column text --out " + dir.file("x"), "", 1,
       {"empty-text.tsv:2", "empty text"}},
      {c + " eval" + mc + " --data " + dir.file("unknown-label.tsv") + " --text-column text", "", 1,
       {"unknown-label.tsv:2", "maybe"}},
      {c + " predict" + mc, "a b\n\n", 1, {"<stdin>:2", "empty"}},
      // text that is not UTF-8, and lines over --max-length
      {t + " train --train-src " + dir.file("latin1.src") + " --train-tgt " + dir.file("latin1.tgt") + " --valid-src " +
           dir.file("valid.src") + " --valid-tgt " + dir.file("valid.tgt") + " --out " + dir.file("x"),
       "", 1, {"latin1.src:2:2: invalid UTF-8 (byte 0xE9)"}},
      {c + " train --train " + dir.file("latin1.tsv") + " --text-column text --out " + dir.file("x"), "", 1,
       {"latin1.tsv:3:1: invalid UTF-8 (byte 0xFF)"}},
      {t + " translate" + m, "a b\nc \xc3(\n", 1, {"<stdin>:2:3: invalid UTF-8 (byte 0xC3)"}},
      {c + " predict" + mc, "a b\n\xfe\n", 1, {"<stdin>:2:1: invalid UTF-8 (byte 0xFE)"}},
      {t + " translate" + m + " --max-length 3", "a b c\na b c d\n", 1, {"<stdin>:2: 4 tokens", "--max-length 3"}},
      {c + " predict" + mc + " --max-length 2", "a b c\n", 1, {"<stdin>:1: 3 tokens", "--max-length 2"}},
      // data with nothing left to train on or to measure
      {translate_train(dir, "x") + " --max-length 1", "", 1,
       {"train.src and ", "train.tgt: no data left: all 60 lines were skipped", "longer than --max-length 1 tokens"}},
      {t + " eval" + m + " --src " + dir.file("empty.src") + " --ref " + dir.file("empty.tgt"), "", 1, {"empty.src", "no data"}},
      {c + " train --train " + dir.file("train.tsv") + " --valid " + dir.file("header-only.tsv") + " --text-column text --out " +
           dir.file("x"),
       "", 1, {"header-only.tsv: no data"}},
      {c + " train --train " + dir.file("two.tsv") + " --text-column text --out " + dir.file("x"), "", 1,
       {"two.tsv: --valid-split 0.1 of its 2 texts holds out none"}},
      {c + " eval" + mc + " --data " + dir.file("train.tsv") + " --text-column text --max-length 1", "", 1,
       {"train.tsv: no data left", "longer than --max-length 1"}},
      // model directories
      {t + " eval --model " + dir.file("absent") + corpus, "", 1, {"absent/config.json", "No such file"}},
      {t + " eval --model " + dir.file("t-broken-weights") + corpus, "", 1, {"model.safetensors", "header"}},
      {t + " eval --model " + dir.file("t-broken-config") + corpus, "", 1, {"model configuration"}},
      {t + " translate --model " + dir.file("t-broken-vocab"), "a\n", 1, {"source.vocab.json"}},
      {c + " predict --model " + dir.file("c-broken-labels"), "a\n", 1, {"labels.json"}},
      {c + " predict --model " + dir.file("c-broken-config"), "a\n", 1, {"c-broken-config/config.json", "classes", "10000000000000"}},
      {t + " translate --model " + dir.file("t-small-vocab"), "a\n", 1,
       {"t-small-vocab/source.vocab.json: 4 entries, but ", "t-small-vocab/config.json has \"source_vocabulary\""}},
      {c + " predict --model " + dir.file("c-more-labels"), "a\n", 1,
       {"c-more-labels/labels.json: 3 entries, but ", "c-more-labels/config.json has \"classes\": 2"}},
      {t + " eval --model " + dir.file("t-nan-weights") + corpus, "", 1,
       {"t-nan-weights/model.safetensors: tensor 'output.weight' holds a NaN or infinite value (element 3"}},
      {t + " translate --model " + dir.file("t-later-rule"), "a\n", 1,
       {"t-later-rule/source.vocab.json", "\"normalization\"", "moses-lowercase-de-v9", "penn-lowercase-en-v1"}},
      {c + " predict --model " + dir.file("c-zero-weights"), "a\n", 1,
       {"c-zero-weights/model.safetensors: not a regular file (a character device)"}},
  };
  for (const Row& row : rows) {
    BOOST_TEST_CONTEXT(row.command) {
      const Run result = run(dir, row.command, row.input, row.stdout_redirection);
      BOOST_TEST(result.status == row.status, result.err);
      for (const std::string& part : row.named) BOOST_TEST(contains(result.err, part), result.err);
    }
  }
  // Every refusal above happened before anything was written: "x" never came to be, and the
  // directories that were not ours are as they were.
  BOOST_TEST(!std::filesystem::exists(dir.file("x")));
  BOOST_TEST(entries(dir.file("empty")).empty());
  BOOST_TEST((entries(dir.file("foreign-weights")) == std::set<std::string>{"model.safetensors"}));
  BOOST_TEST((entries(dir.file("users-own")) == std::set<std::string>{"config.json", "vocab.json", "log.csv"}));
}

// Training and evaluation skip what is longer than --max-length and say how much they skipped;
// --max-vocab bounds the vocabulary.
BOOST_AUTO_TEST_CASE(over_long_lines_are_skipped_and_counted) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 60, 14);
  write_reversal_corpus(dir, "valid", 10, 15);
  const std::size_t long_pairs = lines_longer_than(read_file(dir.file("train.src")), 3);
  BOOST_TEST_REQUIRE(long_pairs > 0u);
  const Run translated = run(dir, translate_train(dir, "t", 1) + " --max-length 3 --max-vocab 8");
  BOOST_TEST_REQUIRE(translated.status == 0, translated.err);
  const std::string counted = "train.tgt: skipped " + std::to_string(long_pairs) + " lines: " + std::to_string(long_pairs) +
                              " longer than --max-length 3 tokens";
  BOOST_TEST(contains(translated.out, counted), translated.out);
  BOOST_TEST(contains(translated.out, std::to_string(60 - long_pairs) + " training pairs"), translated.out);
  BOOST_TEST(contains(translated.out, "vocabularies 8 (source) and 8 (target)"), translated.out);

  write_presence_tsv(dir, "train.tsv", 60, 16);
  const std::size_t long_texts = lines_longer_than(read_file(dir.file("train.tsv")), 3 + 1);  // the label splits off as a token
  BOOST_TEST_REQUIRE(long_texts > 0u);
  const Run classified = run(dir, classify + " train --train " + dir.file("train.tsv") + " --text-column text --emb 8" +
                                      " --hidden 8 --attention-size 8 --epochs 1 --threads 1 --max-length 3 --out " + dir.file("c"));
  BOOST_TEST_REQUIRE(classified.status == 0, classified.err);
  BOOST_TEST(contains(classified.out, "train.tsv: skipped " + std::to_string(long_texts) + " lines: " +
                                          std::to_string(long_texts) + " longer than --max-length 3 tokens"),
             classified.out);
}

// AddressSanitizer reserves terabytes of address space for its shadow memory, so a program
// built with it cannot start under an address-space limit: the next case runs in the other
// builds (make test), not in make sanitize.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool address_sanitized = true;
#else
constexpr bool address_sanitized = false;
#endif

// std::bad_alloc says nothing of its cause; the programs name what they were building.
BOOST_AUTO_TEST_CASE(running_out_of_memory_names_what_was_being_built,
                     *boost::unit_test::enable_if<!address_sanitized>()) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 20, 17);
  // About 130 million parameters (520 MB) under a limit of 400 MB of address space.
  const Run result = run(dir, "ulimit -v 400000; " + translate + " train --train-src " + dir.file("train.src") +
                                  " --train-tgt " + dir.file("train.tgt") + " --valid-src " + dir.file("train.src") +
                                  " --valid-tgt " + dir.file("train.tgt") + " --out " + dir.file("big") +
                                  " --emb 8 --hidden 2048 --threads 1 --max-steps 1");
  BOOST_TEST(result.status == 1, result.err);
  BOOST_TEST(contains(result.err, "out of memory while building the model (std::bad_alloc)"), result.err);
}

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

// The fields of "a ||| b ||| c": split at " ||| ".
std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  for (std::size_t start = 0;;) {
    const std::size_t bar = line.find(" ||| ", start);
    fields.push_back(line.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) return fields;
    start = bar + 5;
  }
}

// "2-0 1-1": the source position of each output word, in order; a test failure for a pair out
// of order or not of the form i-j.
std::vector<std::size_t> aligned_sources(const std::string& line) {
  std::vector<std::size_t> sources;
  for (const std::string& pair : models::split_tokens(line)) {
    const std::size_t dash = pair.find('-');
    BOOST_TEST_REQUIRE(dash != std::string::npos, pair);
    BOOST_TEST(std::stoul(pair.substr(dash + 1)) == sources.size(), line);
    sources.push_back(std::stoul(pair.substr(0, dash)));
  }
  return sources;
}

}  // namespace

// The decoding options of translate, each changing what it should: n-best lists in Marian's
// format, the penalties reaching the scores, the output lengths, alignments and <unk>
// replacement.
BOOST_AUTO_TEST_CASE(translate_decoding_options_change_what_they_should) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 200, 20);
  write_reversal_corpus(dir, "valid", 20, 21);
  // Four words of six in each vocabulary (--max-vocab counts the four specials): the others
  // are <unk>, a third of the target tokens, so the model writes <unk> too.
  const Run trained = run(dir, translate_train_any(dir, "m", 12) + " --emb 16 --hidden 32 --lr 0.01 --max-vocab 8");
  BOOST_TEST_REQUIRE(trained.status == 0, trained.err);
  // On the model's tokens, which the alignments count.
  const std::string model = translate + " translate --model " + dir.file("m") + " --threads 1 --output-form tokens";
  const std::string input = "a b c\n\nd e f a\nf e\n";

  // --n-best 3: three distinct hypotheses per non-empty line, numbered by input line, the
  // scores falling; with --length-penalty none the score is the log-probability (F0).
  const Run listed = run(dir, model + " --beam 3 --n-best 3", input);
  BOOST_TEST_REQUIRE(listed.status == 0, listed.err);
  const std::vector<std::string> entries = lines_of(listed.out);
  BOOST_TEST_REQUIRE(entries.size() == 9u, listed.out);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::vector<std::string> fields = fields_of(entries[i]);
    BOOST_TEST_REQUIRE(fields.size() == 4u, entries[i]);
    BOOST_TEST(fields[0] == std::to_string(std::vector<std::size_t>{0, 2, 3}[i / 3]), entries[i]);
    BOOST_TEST(fields[2].rfind("F0= ", 0) == 0u, entries[i]);
    if (i % 3 > 0) {
      const std::vector<std::string> previous = fields_of(entries[i - 1]);
      BOOST_TEST(std::stod(fields[3]) <= std::stod(previous[3]), entries[i - 1] << " then " << entries[i]);
      BOOST_TEST(fields[1] != previous[1]);
    }
  }
  const Run best = run(dir, model + " --beam 3", input);
  BOOST_TEST(fields_of(entries[0])[1] == lines_of(best.out)[0]);  // the list starts with the translation
  for (const std::string& entry : lines_of(run(dir, model + " --beam 3 --n-best 2 --length-penalty none", input).out)) {
    BOOST_TEST(fields_of(entry)[2] == "F0= " + fields_of(entry)[3], entry);
  }
  // The coverage penalty lowers the score of a hypothesis that left a source word with less
  // than one step's attention: with one step, the attention (summing to 1) gives one of the
  // two or more source words at most 1/2, a penalty of at least log 2.
  for (const std::string& entry : lines_of(run(dir, model + " --beam 3 --n-best 2 --length-penalty none" +
                                                        " --max-output-length 1 --coverage-penalty 1",
                                                    input)
                                                .out)) {
    const double log_p = std::stod(fields_of(entry)[2].substr(4)), score = std::stod(fields_of(entry)[3]);
    BOOST_TEST(score <= log_p - std::log(2.0) + 1e-4, entry);
  }
  // gnmt divides by ((5 + length) / 6)^alpha.
  for (const std::string& entry : lines_of(run(dir, model + " --beam 3 --n-best 2 --length-penalty gnmt", input).out)) {
    const double log_p = std::stod(fields_of(entry)[2].substr(4)), score = std::stod(fields_of(entry)[3]);
    const double length = static_cast<double>(models::split_tokens(fields_of(entry)[1]).size() + 1);
    BOOST_TEST(std::abs(score - log_p / ((5 + length) / 6)) <= 1e-3, entry);  // printed with four decimals
  }

  // Output lengths: two-word inputs translate to fewer than four words, unless at least four
  // are asked for; at most one word when capped.
  const std::string pairs = "a b\nc d\nb a\n";
  const std::vector<std::string> plain = lines_of(run(dir, model, pairs).out);
  BOOST_TEST_REQUIRE(plain.size() == 3u);
  for (const std::string& line : plain) BOOST_TEST_REQUIRE(models::split_tokens(line).size() < 4u, line);
  for (const std::string& line : lines_of(run(dir, model + " --min-output-length 4", pairs).out)) {
    BOOST_TEST(models::split_tokens(line).size() >= 4u, line);
  }
  for (const std::string& line : lines_of(run(dir, model + " --beam 2 --max-output-length 1", pairs).out)) {
    BOOST_TEST(models::split_tokens(line).size() <= 1u, line);
  }

  // Alignments: one line per input line, a pair per output word; soft ones, a group of source
  // weights per output word. With --replace-unk each <unk> becomes the source word aligned to it.
  const Run aligned = run(dir, model + " --alignments " + dir.file("hard.txt"), input);
  BOOST_TEST_REQUIRE(aligned.status == 0, aligned.err);
  const std::vector<std::string> translations = lines_of(aligned.out), alignments = lines_of(read_file(dir.file("hard.txt")));
  const std::vector<std::string> sources = lines_of(input);
  BOOST_TEST_REQUIRE(alignments.size() == 4u);
  BOOST_TEST(alignments[1] == "");
  const Run replaced = run(dir, model + " --replace-unk", input);
  BOOST_TEST_REQUIRE(replaced.status == 0, replaced.err);
  std::size_t unknown = 0;
  for (std::size_t line = 0; line < 4; ++line) {
    const models::Tokens words = models::split_tokens(translations[line]), source = models::split_tokens(sources[line]);
    const models::Tokens with_words = models::split_tokens(lines_of(replaced.out)[line]);
    const std::vector<std::size_t> positions = aligned_sources(alignments[line]);
    BOOST_TEST_REQUIRE(positions.size() == words.size(), alignments[line] << " for " << translations[line]);
    BOOST_TEST_REQUIRE(with_words.size() == words.size());
    for (std::size_t j = 0; j < words.size(); ++j) {
      BOOST_TEST_REQUIRE(positions[j] < source.size());
      unknown += words[j] == "<unk>";
      BOOST_TEST(with_words[j] == (words[j] == "<unk>" ? source[positions[j]] : words[j]));
    }
  }
  BOOST_TEST(unknown > 0u, "no <unk> to replace in " << aligned.out);
  const Run soft = run(dir, model + " --alignments " + dir.file("soft.txt") + " --soft-alignments", input);
  BOOST_TEST_REQUIRE(soft.status == 0, soft.err);
  const std::vector<std::string> groups = lines_of(read_file(dir.file("soft.txt")));
  BOOST_TEST_REQUIRE(groups.size() == 4u);
  for (std::size_t line = 0; line < 4; ++line) {
    const models::Tokens weights = models::split_tokens(groups[line]);
    BOOST_TEST(weights.size() == models::split_tokens(translations[line]).size());
    for (const std::string& group : weights) {
      BOOST_TEST(std::count(group.begin(), group.end(), ',') + 1 == std::ptrdiff_t(models::split_tokens(sources[line]).size()),
                 group);
    }
  }

  // Flags that contradict each other are refused before the model is read.
  const std::vector<std::pair<std::string, std::vector<std::string>>> refused{
      {" --beam 2 --n-best 3", {"--n-best 3", "--beam is 2"}},
      {" --min-output-length 5 --max-output-length 4", {"--min-output-length 5", "--max-output-length 4"}},
      {" --soft-alignments", {"--soft-alignments needs --alignments"}},
      {" --alignments " + dir.file("absent/a.txt"), {"--alignments", "does not exist"}},
      {" --length-penalty gmnt", {"--length-penalty", "gmnt", "none, avg, gnmt"}}};
  for (const auto& [flags, named] : refused) {
    const Run result = run(dir, model + flags, input);
    BOOST_TEST(result.status == 2, flags << ": " << result.err);
    for (const std::string& part : named) BOOST_TEST(contains(result.err, part), result.err);
  }
}

// Checks that the weights file `mean` holds the element-wise mean of files `a` and `b`, as
// average computes it (in double, rounded once), and that a and b differ, else it proves nothing.
void check_mean_of_two(const std::string& a_path, const std::string& b_path, const std::string& mean_path) {
  const safetensors::File one = safetensors::File::read(a_path), two = safetensors::File::read(b_path),
                          mean = safetensors::File::read(mean_path);
  BOOST_TEST_REQUIRE(mean.names() == one.names());
  bool differed = false;
  for (const std::string& name : one.names()) {
    const Array<float> a = one.floats<float>(name), b = two.floats<float>(name), m = mean.floats<float>(name);
    differed = differed || a != b;
    for (std::size_t i = 0; i < a.size(); ++i) {
      BOOST_TEST(m.data()[i] == static_cast<float>((double(a.data()[i]) + double(b.data()[i])) / 2), name << " " << i);
    }
  }
  BOOST_TEST(differed);
}

// average: the mean of the weights of models of one configuration, in a new directory that
// eval and translate load; other configurations and existing directories are refused.
BOOST_AUTO_TEST_CASE(average_writes_the_mean_of_the_weights_into_a_new_directory) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 60, 22);
  write_reversal_corpus(dir, "valid", 10, 23);
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "one") + " --max-steps 3").status == 0);
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "two") + " --max-steps 5 --seed 9").status == 0);
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "lstm") + " --max-steps 1 --cell lstm").status == 0);
  const std::string average = translate + " average --model " + dir.file("one") + " --model " + dir.file("two");
  const Run averaged = run(dir, average + " --out " + dir.file("mean"));
  BOOST_TEST_REQUIRE(averaged.status == 0, averaged.err);
  BOOST_TEST(contains(averaged.out, "2 models"), averaged.out);
  BOOST_TEST((entries(dir.file("mean")) ==
              std::set<std::string>{"config.json", "source.vocab.json", "target.vocab.json", "model.safetensors"}));
  check_mean_of_two(dir.file("one/model.safetensors"), dir.file("two/model.safetensors"), dir.file("mean/model.safetensors"));
  BOOST_TEST(read_file(dir.file("mean/config.json")) == read_file(dir.file("one/config.json")));
  const Run eval = run(dir, translate + " eval --model " + dir.file("mean") + " --src " + dir.file("valid.src") +
                                " --ref " + dir.file("valid.tgt") + " --threads 1");
  BOOST_TEST(eval.status == 0, eval.err);
  BOOST_TEST(run(dir, translate + " translate --model " + dir.file("mean"), "a b\n").status == 0);

  std::filesystem::create_directory(dir.file("empty"));
  BOOST_TEST(run(dir, average + " --out " + dir.file("empty")).status == 0);  // an empty directory may be the new one
  BOOST_TEST(entries(dir.file("empty")).size() == 4u);
  const std::vector<std::pair<std::string, std::vector<std::string>>> refused{
      {average + " --out " + dir.file("mean"), {"--out " + dir.file("mean") + " exists", "never replaces"}},
      {translate + " average --model " + dir.file("one") + " --out " + dir.file("x"), {"at least two --model", "1 given"}},
      {average + " --model " + dir.file("lstm") + " --out " + dir.file("x"),
       {dir.file("lstm") + "/config.json differs from " + dir.file("one") + "/config.json", "one configuration"}}};
  for (const auto& [command, named] : refused) {
    const Run result = run(dir, command);
    BOOST_TEST(result.status == 2, command << ": " << result.err);
    for (const std::string& part : named) BOOST_TEST(contains(result.err, part), result.err);
  }
  const Run missing = run(dir, average + " --model " + dir.file("absent") + " --out " + dir.file("x"));
  BOOST_TEST(missing.status == 1, missing.err);
  BOOST_TEST(contains(missing.err, dir.file("absent") + "/config.json"), missing.err);
  BOOST_TEST(!std::filesystem::exists(dir.file("x")));
  BOOST_TEST((entries(dir.file("mean")).size() == 4u));  // the refused average left it as it was
}

// quantize: a new directory whose weight matrices are int8 with row scales, or bf16, which
// eval and translate load and run in that format; what it refuses, and files it cannot trust.
BOOST_AUTO_TEST_CASE(quantize_writes_int8_and_bf16_models_that_eval_and_translate_load) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 60, 22);
  write_reversal_corpus(dir, "valid", 10, 23);
  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "float") + " --max-steps 3").status == 0);
  const safetensors::File original = safetensors::File::read(dir.file("float/model.safetensors"));
  const std::string quantize = translate + " quantize --model " + dir.file("float");
  for (const std::string dtype : {"int8", "bf16"}) {
    BOOST_TEST_CONTEXT(dtype) {
      const Run quantized = run(dir, quantize + " --dtype " + dtype + " --out " + dir.file(dtype));
      BOOST_TEST_REQUIRE(quantized.status == 0, quantized.err);
      BOOST_TEST((entries(dir.file(dtype)) ==
                  std::set<std::string>{"config.json", "source.vocab.json", "target.vocab.json", "model.safetensors"}));
      const safetensors::File file = safetensors::File::read(dir.file(dtype + "/model.safetensors"));
      BOOST_TEST(file.metadata().at("weight_format") == dtype);
      BOOST_TEST(safetensors::dtype_name(file.entry("output.weight").dtype) == (dtype == "int8" ? "I8" : "BF16"));
      BOOST_TEST(safetensors::dtype_name(file.entry("output.bias").dtype) == "F32");
      BOOST_TEST((file.floats<float>("output.bias") == original.floats<float>("output.bias")));
      // Each weight within half a step of its row's rounding of the float value.
      const Array<float> weight = original.floats<float>("output.weight");
      const Array<float> rounded = dequantized(file).floats<float>("output.weight");
      const std::size_t columns = weight.shape()[1];
      for (std::size_t i = 0; i < weight.size(); ++i) {
        const float* row = weight.data() + i / columns * columns;
        const float step = dtype == "int8" ? *std::max_element(row, row + columns, [](float a, float b) { return std::abs(a) < std::abs(b); }) / 127
                                           : std::ldexp(weight.data()[i], -7);
        BOOST_TEST_REQUIRE(std::abs(rounded.data()[i] - weight.data()[i]) <= std::abs(step) / 2 * 1.0001F, i);
      }
      const Run eval = run(dir, translate + " eval --model " + dir.file(dtype) + " --src " + dir.file("valid.src") + " --ref " +
                                    dir.file("valid.tgt") + " --threads 1");
      BOOST_TEST(eval.status == 0, eval.err);
      BOOST_TEST(contains(eval.out, "BLEU"), eval.out);
      const Run translated = run(dir, translate + " translate --model " + dir.file(dtype) + " --beam 3", "a b\nc d e\n");
      BOOST_TEST(translated.status == 0, translated.err);
      BOOST_TEST(std::count(translated.out.begin(), translated.out.end(), '\n') == 2);
      const Run again = run(dir, translate + " quantize --model " + dir.file(dtype) + " --dtype int8 --out " + dir.file("x"));
      BOOST_TEST(again.status == 2, again.err);
      BOOST_TEST(contains(again.err, "holds " + dtype + " weights already"), again.err);
    }
  }
  const Run exists = run(dir, quantize + " --dtype int8 --out " + dir.file("int8"));
  BOOST_TEST(exists.status == 2, exists.err);
  BOOST_TEST(contains(exists.err, "never replaces"), exists.err);
  BOOST_TEST(run(dir, quantize + " --dtype int4 --out " + dir.file("x")).status == 2);
  BOOST_TEST(!std::filesystem::exists(dir.file("x")));

  // An int8 file whose scales are gone, and one whose format is unknown: file errors naming them.
  const safetensors::File int8 = safetensors::File::read(dir.file("int8/model.safetensors"));
  for (const std::string broken : {"no-scales", "unknown-format"}) {
    std::filesystem::copy(dir.file("int8"), dir.file(broken));
    safetensors::Writer writer;
    for (const std::string& name : int8.names()) {
      if (broken == "no-scales" && name == "output.weight_scale") continue;
      if (safetensors::dtype_name(int8.entry(name).dtype) == std::string("I8")) {
        writer.add(name, int8.stored<std::int8_t>(name));
      } else {
        writer.add(name, int8.floats<float>(name));
      }
    }
    writer.set_metadata("weight_format", broken == "no-scales" ? "int8" : "int4");
    writer.write(dir.file(broken + "/model.safetensors"));
    const Run refused = run(dir, translate + " translate --model " + dir.file(broken), "a b\n");
    BOOST_TEST(refused.status == 1, refused.err);
    BOOST_TEST(contains(refused.err, dir.file(broken + "/model.safetensors")), refused.err);
    BOOST_TEST(contains(refused.err, broken == "no-scales" ? "no 'output.weight_scale'" : "weight format 'int4'"), refused.err);
  }
}

// train --keep-epochs N keeps the weights of the last N epochs, a resumed run going on from
// them, and average --last N takes their mean, as OpenNMT's and Marian's users average the
// last checkpoints of a run.
BOOST_AUTO_TEST_CASE(average_last_takes_the_mean_of_the_epochs_a_run_kept) {
  TempDir dir;
  write_reversal_corpus(dir, "train", 60, 22);
  write_reversal_corpus(dir, "valid", 10, 23);
  const Run trained = run(dir, translate_train(dir, "run") + " --keep-epochs 2");
  BOOST_TEST_REQUIRE(trained.status == 0, trained.err);
  BOOST_TEST((entries(dir.file("run/epochs")) == std::set<std::string>{"epoch-2.safetensors", "epoch-3.safetensors"}));
  const Run resumed = run(dir, translate_train(dir, "run", 4) + " --keep-epochs 2 --resume");
  BOOST_TEST_REQUIRE(resumed.status == 0, resumed.err);
  BOOST_TEST((entries(dir.file("run/epochs")) == std::set<std::string>{"epoch-3.safetensors", "epoch-4.safetensors"}));

  const std::string average = translate + " average --model " + dir.file("run");
  const Run averaged = run(dir, average + " --last 2 --out " + dir.file("mean"));
  BOOST_TEST_REQUIRE(averaged.status == 0, averaged.err);
  BOOST_TEST(contains(averaged.out, "2 epochs"), averaged.out);
  check_mean_of_two(dir.file("run/epochs/epoch-3.safetensors"), dir.file("run/epochs/epoch-4.safetensors"),
                    dir.file("mean/model.safetensors"));
  BOOST_TEST(run(dir, translate + " translate --model " + dir.file("mean"), "a b\n").status == 0);

  BOOST_TEST_REQUIRE(run(dir, translate_train(dir, "plain") + " --max-steps 2").status == 0);
  const std::vector<std::pair<std::string, std::vector<std::string>>> refused{
      {average + " --last 3 --out " + dir.file("x"), {"--last 3", dir.file("run/epochs") + " keeps the weights of 2 epochs"}},
      {average + " --last 1 --out " + dir.file("x"), {"--last 1", "at least 2"}},
      {translate + " average --model " + dir.file("plain") + " --last 2 --out " + dir.file("x"),
       {"keeps the weights of 0 epochs", "--keep-epochs"}},
      {average + " --model " + dir.file("plain") + " --last 2 --out " + dir.file("x"), {"one --model, not 2"}}};
  for (const auto& [command, named] : refused) {
    const Run result = run(dir, command);
    BOOST_TEST(result.status == 2, command << ": " << result.err);
    for (const std::string& part : named) BOOST_TEST(contains(result.err, part), result.err);
  }
  BOOST_TEST(!std::filesystem::exists(dir.file("x")));
}

// The tab-separated fields of a line of predict's output (label, probability).
std::vector<std::string> fields_of_tab(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream stream(line);
  for (std::string field; std::getline(stream, field, '\t');) fields.push_back(field);
  return fields;
}

// The user's own sentences: a model trained with --tokenizer moses (the default) on
// corpus-form text reads "Wiese." as the two known tokens "wiese" and "." and writes
// ordinary text; one trained with --tokenizer space, as models before, reads "wiese." as one
// unknown token.
BOOST_AUTO_TEST_CASE(a_users_own_sentences_are_read_as_the_corpus_and_written_as_text) {
  TempDir dir;
  write_german_copy_corpus(dir, "train", 300, 30);
  write_german_copy_corpus(dir, "valid", 20, 31);
  const std::string train = translate_train_any(dir, "m", 10) + " --emb 16 --hidden 32 --lr 0.01 --target-lang de";
  const Run trained = run(dir, train);
  BOOST_TEST_REQUIRE(trained.status == 0, trained.err);
  BOOST_TEST(contains(read_file(dir.file("m/source.vocab.json")), "\"normalization\": \"moses-lowercase-de-v1\""));
  const std::string model = translate + " translate --model " + dir.file("m") + " --threads 1";
  const std::string sentence = "Ein Hund rennt über die Wiese.\n";

  // Seven source tokens, each with its attention weight in every output word's row.
  const Run soft = run(dir, model + " --alignments " + dir.file("soft.txt") + " --soft-alignments", sentence);
  BOOST_TEST_REQUIRE(soft.status == 0, soft.err);
  for (const std::string& row : models::split_tokens(read_file(dir.file("soft.txt")))) {
    BOOST_TEST(std::count(row.begin(), row.end(), ',') == 6, row);
  }
  // Copied, so read as known words, and written as a sentence.
  const Run text = run(dir, model, sentence);
  BOOST_TEST(text.out == "Ein hund rennt über die wiese.\n", text.err);
  const Run tokens = run(dir, model + " --output-form tokens", sentence);
  BOOST_TEST(tokens.out == "ein hund rennt über die wiese .\n", tokens.err);

  // eval reads raw references the same way: plain text and the corpus form score alike.
  dir.write("plain.src", "Ein Hund rennt über die Wiese.\nDie Katze springt.\n");
  dir.write("plain.ref", "Ein Hund rennt über die Wiese.\nDie Katze springt.\n");
  dir.write("corpus.ref", "ein hund rennt über die wiese .\ndie katze springt .\n");
  const std::string eval = translate + " eval --model " + dir.file("m") + " --threads 1 --src " + dir.file("plain.src");
  const Run plain_scores = run(dir, eval + " --ref " + dir.file("plain.ref"));
  BOOST_TEST_REQUIRE(plain_scores.status == 0, plain_scores.err);
  BOOST_TEST(contains(plain_scores.out, "tok:13a|smooth:exp|version:xgrad-0.1.0 = 100.00"), plain_scores.out);
  BOOST_TEST(run(dir, eval + " --ref " + dir.file("corpus.ref")).out == plain_scores.out);
  BOOST_TEST(contains(run(dir, eval + " --ref " + dir.file("plain.ref") + " --tokenize none").out, "tok:none"));

  // The rule of the models before: "wiese." is one token, unknown, so it is not copied.
  BOOST_TEST_REQUIRE(run(dir, translate_train_any(dir, "old", 10) + " --emb 16 --hidden 32 --lr 0.01 --tokenizer space").status == 0);
  const Run old = run(dir, translate + " translate --model " + dir.file("old") + " --threads 1", sentence);
  BOOST_TEST(!contains(old.out, "wiese"), old.out);

  // xgrad-classify: whether "wiese" occurs, learned from corpus-form texts, found in raw ones.
  std::ostringstream tsv;
  tsv << "text\tlabel\n";
  for (const std::string& line : lines_of(read_file(dir.file("train.src")))) {
    tsv << line << '\t' << (contains(line, "wiese") ? "yes" : "no") << '\n';
  }
  dir.write("train.tsv", tsv.str());
  const std::string classify_train = classify + " train --train " + dir.file("train.tsv") +
                                     " --text-column text --emb 8 --hidden 8 --attention-size 8 --batch 16 --epochs 8" +
                                     " --threads 1 --min-freq 1 --lr 0.01 --out ";
  BOOST_TEST_REQUIRE(run(dir, classify_train + dir.file("c") + " --tokenizer moses --lang de").status == 0);
  const std::string users = "Ein Hund rennt über die Wiese.\nDie Katze springt über den Hund.\n";
  const std::vector<std::string> predicted =
      lines_of(run(dir, classify + " predict --threads 1 --model " + dir.file("c"), users).out);
  BOOST_TEST_REQUIRE(predicted.size() == 2u);
  BOOST_TEST(fields_of_tab(predicted[0]).front() == "yes", predicted[0]);
  BOOST_TEST(fields_of_tab(predicted[1]).front() == "no", predicted[1]);
  BOOST_TEST_REQUIRE(run(dir, classify_train + dir.file("c-old") + " --tokenizer space").status == 0);
  const std::vector<std::string> old_predicted =
      lines_of(run(dir, classify + " predict --threads 1 --model " + dir.file("c-old"), users).out);
  BOOST_TEST_REQUIRE(old_predicted.size() == 2u);
  BOOST_TEST(fields_of_tab(old_predicted[0]).front() == "no", old_predicted[0]);  // "wiese." is not "wiese"
}

namespace {

// A toy translation task with words of several letters, which subwords can cut: words of one
// to three syllables, the target the source in reverse order.
void write_syllable_corpus(const TempDir& dir, const std::string& name, std::size_t lines, std::uint64_t seed) {
  Generator generator(seed);
  const char* syllables[] = {"ka", "lo", "mi", "ne", "su"};
  std::vector<models::Tokens> sentences(lines);
  for (models::Tokens& sentence : sentences) {
    for (std::size_t k = 0, n = 2 + generator.below(3); k < n; ++k) {
      std::string word;
      for (std::size_t s = 0, m = 1 + generator.below(3); s < m; ++s) word += syllables[generator.below(5)];
      sentence.push_back(word);
    }
  }
  write_reversed_pairs(dir, name, sentences);
}

}  // namespace

// --subword: a SentencePiece model trained on both sides and saved in the model directory;
// a run resumed exactly; translate and eval reading words and writing words (never pieces),
// BLEU scored on those words; an existing .model given instead; and the errors of docs/errors.md.
BOOST_AUTO_TEST_CASE(translate_with_subwords_trains_resumes_evaluates_and_translates) {
  TempDir dir;
  write_syllable_corpus(dir, "train", 200, 31);
  write_syllable_corpus(dir, "valid", 20, 32);
  const std::string train = translate_train(dir, "whole") + " --subword unigram --vocab-size 40";
  const std::string parts = translate_train(dir, "parts") + " --subword unigram --vocab-size 40";
  const Run whole = run(dir, train + " --max-steps 20");
  BOOST_TEST_REQUIRE(whole.status == 0, whole.err);
  BOOST_TEST(contains(whole.out, "vocabularies 40 (source) and 40 (target)"), whole.out);
  BOOST_TEST(whole.err.find("trainer_interface") == std::string::npos, whole.err);  // SentencePiece's log stays quiet
  BOOST_TEST(entries(dir.file("whole")).contains("subword.model"));
  BOOST_TEST(contains(read_file(dir.file("whole/source.vocab.json")), "\"sentencepiece_model\": \"subword.model\""));
  BOOST_TEST_REQUIRE(run(dir, parts + " --max-steps 7").status == 0);
  const Run changed = run(dir, translate_train(dir, "parts") + " --subword bpe --vocab-size 40 --max-steps 20 --resume");
  BOOST_TEST(changed.status == 2);
  BOOST_TEST(contains(changed.err, "--subword unigram (given bpe)"), changed.err);
  const Run resumed = run(dir, parts + " --max-steps 20 --resume");
  BOOST_TEST_REQUIRE(resumed.status == 0, resumed.err);
  check_same_tensors(dir.file("whole/checkpoint.safetensors"), dir.file("parts/checkpoint.safetensors"));
  BOOST_TEST(read_file(dir.file("whole/subword.model")) == read_file(dir.file("parts/subword.model")));  // deterministic

  // translate reads words and writes words: "kamilosu" never occurs in training, and its
  // pieces come back as whole words, never as pieces.
  const std::string model = " --model " + dir.file("whole") + " --threads 1";
  const Run translated = run(dir, translate + " translate" + model + " --alignments " + dir.file("a.txt") +
                                      " --attention-svg " + dir.file("a.svg"),
                             "kamilosu ne\n\nlo kaka su\n");
  BOOST_TEST_REQUIRE(translated.status == 0, translated.err);
  BOOST_TEST(std::count(translated.out.begin(), translated.out.end(), '\n') == 3);
  BOOST_TEST(translated.out.find("\xE2\x96\x81") == std::string::npos, translated.out);  // no "▁"
  BOOST_TEST(contains(read_file(dir.file("a.svg")), "<svg"));
  // One line of alignments (between pieces) per input line, empty for the empty one.
  const std::vector<std::string> alignments = lines_of(read_file(dir.file("a.txt")));
  BOOST_TEST_REQUIRE(alignments.size() == 3u);
  BOOST_TEST(alignments[1].empty());
  const Run refused_unk = run(dir, translate + " translate" + model + " --replace-unk", "ka\n");
  BOOST_TEST(refused_unk.status == 2);
  BOOST_TEST(contains(refused_unk.err, "--replace-unk is for word vocabularies; " + dir.file("whole") + " has subword ones"),
             refused_unk.err);

  // eval scores the words translate writes: --tokenize none gives the BLEU of translate's
  // lines in the corpus form (--output-form tokens).
  const Run eval = run(dir, translate + " eval" + model + " --src " + dir.file("valid.src") + " --ref " +
                                dir.file("valid.tgt") + " --tokenize none");
  BOOST_TEST_REQUIRE(eval.status == 0, eval.err);
  const Run valid_translations =
      run(dir, translate + " translate" + model + " --output-form tokens", read_file(dir.file("valid.src")));
  BOOST_TEST_REQUIRE(valid_translations.status == 0, valid_translations.err);
  std::vector<models::Tokens> hypotheses, references;
  for (const std::string& line : lines_of(valid_translations.out)) hypotheses.push_back(models::split_tokens(line));
  for (const std::string& line : lines_of(read_file(dir.file("valid.tgt")))) references.push_back(models::split_tokens(line));
  const std::string word_bleu = models::corpus_bleu(hypotheses, references).to_string();
  BOOST_TEST(contains(eval.out, word_bleu.substr(std::string("BLEU").size()) + "\n"), eval.out << " should hold " << word_bleu);

  // An existing .model instead of training one: the same pieces, the same vocabulary files.
  const Run given = run(dir, translate_train(dir, "given") + " --subword-model " + dir.file("whole/subword.model") +
                                 " --max-steps 1");
  BOOST_TEST_REQUIRE(given.status == 0, given.err);
  BOOST_TEST(read_file(dir.file("given/subword.model")) == read_file(dir.file("whole/subword.model")));
  BOOST_TEST(read_file(dir.file("given/target.vocab.json")) == read_file(dir.file("whole/target.vocab.json")));

  // Subword models average like word models, their .model compared and copied.
  const Run averaged = run(dir, translate + " average --model " + dir.file("whole") + " --model " + dir.file("parts") +
                                    " --out " + dir.file("mean"));
  BOOST_TEST_REQUIRE(averaged.status == 0, averaged.err);
  BOOST_TEST(entries(dir.file("mean")).contains("subword.model"));
  BOOST_TEST(run(dir, translate + " translate --model " + dir.file("mean"), "ka lo\n").status == 0);
}

BOOST_AUTO_TEST_CASE(subword_errors_get_their_exit_codes_and_messages) {
  TempDir dir;
  write_syllable_corpus(dir, "train", 40, 33);
  write_syllable_corpus(dir, "valid", 5, 34);
  write_presence_tsv(dir, "train.tsv", 60, 35);
  dir.write("garbage.model", "this is no SentencePiece model");
  const std::vector<std::tuple<std::string, int, std::vector<std::string>>> cases{
      {translate_train(dir, "m") + " --subword bpe --vocab-size 5000", 2,
       {"--vocab-size 5000: SentencePiece cannot train 5000 bpe pieces on " + dir.file("train.src") + " and " +
        dir.file("train.tgt") + ": "}},
      {translate_train(dir, "m") + " --subword unigram --vocab-size 5", 2, {"--vocab-size 5: SentencePiece cannot train 5"}},
      {translate_train(dir, "m") + " --vocab-size 40", 2, {"--vocab-size 40 needs --subword unigram or bpe"}},
      {translate_train(dir, "m") + " --subword bpe --subword-model " + dir.file("garbage.model"), 2,
       {"--subword", "--subword-model"}},
      {translate_train(dir, "m") + " --subword-model " + dir.file("absent.model"), 1, {dir.file("absent.model")}},
      {translate_train(dir, "m") + " --subword-model " + dir.file("garbage.model"), 1,
       {dir.file("garbage.model") + ": not a SentencePiece model"}},
      {classify + " train --train " + dir.file("train.tsv") + " --text-column text --out " + dir.file("c") +
           " --subword unigram --vocab-size 3000",
       2, {"--vocab-size 3000: SentencePiece cannot train 3000 unigram pieces on " + dir.file("train.tsv")}},
  };
  for (const auto& [command, status, named] : cases) {
    const Run result = run(dir, command);
    BOOST_TEST(result.status == status, command << ": " << result.err);
    for (const std::string& part : named) BOOST_TEST(contains(result.err, part), result.err);
  }
  BOOST_TEST(!std::filesystem::exists(dir.file("m")));  // refused runs write nothing
  BOOST_TEST(!std::filesystem::exists(dir.file("c")));

  // A classifier's model (no <sos> or <eos>) given to a translator; a model directory whose
  // subword.model is missing or broken.
  BOOST_TEST_REQUIRE(run(dir, classify + " train --train " + dir.file("train.tsv") + " --text-column text --emb 8 --hidden 8" +
                                  " --attention-size 8 --max-steps 1 --subword bpe --vocab-size 12 --out " + dir.file("c"))
                         .status == 0);
  const Run misnumbered = run(dir, translate_train(dir, "m") + " --subword-model " + dir.file("c/subword.model"));
  BOOST_TEST(misnumbered.status == 1);
  BOOST_TEST(contains(misnumbered.err, dir.file("c/subword.model") + ": id 2 is"), misnumbered.err);
  BOOST_TEST(contains(misnumbered.err, "<pad>, <unk>, <sos>, <eos>"), misnumbered.err);
  std::filesystem::copy(dir.file("c"), dir.file("c-broken"));
  dir.write("c-broken/subword.model", "broken");
  const Run broken = run(dir, classify + " predict --model " + dir.file("c-broken"), "a b\n");
  BOOST_TEST(broken.status == 1);
  BOOST_TEST(contains(broken.err, dir.file("c-broken/subword.model") + ": not a SentencePiece model"), broken.err);
  std::filesystem::remove(dir.file("c-broken/subword.model"));
  const Run missing = run(dir, classify + " predict --model " + dir.file("c-broken"), "a b\n");
  BOOST_TEST(missing.status == 1);
  BOOST_TEST(contains(missing.err, dir.file("c-broken/subword.model")), missing.err);

  // A Transformer reads at most --max-positions pieces; --max-length counts words.
  const Run too_many_pieces =
      run(dir, classify + " train --train " + dir.file("train.tsv") + " --text-column text --arch transformer" +
                   " --d-model 8 --heads 2 --ff-size 16 --encoder-layers 1 --max-positions 6 --max-length 6" +
                   " --subword bpe --vocab-size 10 --max-steps 1 --out " + dir.file("t"));
  BOOST_TEST(too_many_pieces.status == 1);
  BOOST_TEST(contains(too_many_pieces.err, dir.file("train.tsv") + ":"), too_many_pieces.err);
  BOOST_TEST(contains(too_many_pieces.err, " pieces; the model reads at most 6 (its --max-positions)"), too_many_pieces.err);
}

// xgrad-classify with --subword: trains, resumes exactly, evaluates and predicts, its
// attention drawn over pieces.
BOOST_AUTO_TEST_CASE(classify_with_subwords_trains_resumes_evaluates_and_predicts) {
  TempDir dir;
  write_presence_tsv(dir, "train.tsv", 300, 36);
  write_presence_tsv(dir, "valid.tsv", 40, 37);
  const std::string train = classify + " train --train " + dir.file("train.tsv") + " --valid " + dir.file("valid.tsv") +
                            " --text-column text --emb 8 --hidden 8 --attention-size 8 --batch 16 --epochs 3 --threads 1" +
                            " --subword bpe --vocab-size 12";
  const Run whole = run(dir, train + " --out " + dir.file("whole") + " --max-steps 30");
  BOOST_TEST_REQUIRE(whole.status == 0, whole.err);
  BOOST_TEST(contains(whole.out, "12 pieces"), whole.out);
  BOOST_TEST(contains(read_file(dir.file("whole/vocab.json")), "\"sentencepiece_model\": \"subword.model\""));
  BOOST_TEST_REQUIRE(run(dir, train + " --out " + dir.file("parts") + " --max-steps 11").status == 0);
  BOOST_TEST_REQUIRE(run(dir, train + " --out " + dir.file("parts") + " --max-steps 30 --resume").status == 0);
  check_same_tensors(dir.file("whole/checkpoint.safetensors"), dir.file("parts/checkpoint.safetensors"));

  const Run eval = run(dir, classify + " eval --model " + dir.file("whole") + " --data " + dir.file("valid.tsv") +
                                " --text-column text");
  BOOST_TEST(eval.status == 0, eval.err);
  BOOST_TEST(contains(eval.out, "accuracy"), eval.out);
  const Run predicted = run(dir, classify + " predict --model " + dir.file("whole") + " --explain-svg " + dir.file("e.svg"),
                            "a x b\nc d\n");
  BOOST_TEST(predicted.status == 0, predicted.err);
  BOOST_TEST(std::count(predicted.out.begin(), predicted.out.end(), '\t') == 2, predicted.out);
  BOOST_TEST(contains(read_file(dir.file("e.svg")), "<svg"));
}

#ifdef XGRAD_MPIEXEC
namespace {

// The largest difference between the model weights of two checkpoints (their "model." tensors).
float largest_difference(const std::string& a_path, const std::string& b_path) {
  const safetensors::File a = safetensors::File::read(a_path), b = safetensors::File::read(b_path);
  BOOST_TEST_REQUIRE(a.names() == b.names());
  float largest = 0;
  for (const std::string& name : a.names()) {
    if (!name.starts_with("model.")) continue;
    const Array<float> x = a.floats<float>(name), y = b.floats<float>(name);
    for (std::size_t i = 0; i < x.size(); ++i) largest = std::max(largest, std::abs(x.data()[i] - y.data()[i]));
  }
  return largest;
}

// The numbers of a CSV log's rows but the last three (speed, seconds, skipped steps), which
// depend on the run and not on what it learned.
std::vector<std::vector<double>> learned_columns(const std::string& log) {
  std::vector<std::vector<double>> rows;
  const std::vector<std::string> lines = lines_of(log);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::vector<double> row;
    std::istringstream cells(lines[i]);
    for (std::string cell; std::getline(cells, cell, ',');) row.push_back(std::stod(cell));
    row.resize(row.size() - 3);
    rows.push_back(row);
  }
  return rows;
}

const std::string mpirun = std::string(XGRAD_MPIEXEC) + " --oversubscribe --allow-run-as-root -np 2 ";

}  // namespace

// mpirun -np 2 <program> train: two ranks on halves of the same global batches end with the
// weights of one process on the whole batches (no dropout, which draws differently per
// rank), rank 0 alone writes the run and its output, and a rank that fails ends the job.
BOOST_AUTO_TEST_CASE(programs_under_mpirun_train_data_parallel_as_one_process) {
  TempDir dir;
  write_presence_tsv(dir, "train.tsv", 60, 21);
  write_presence_tsv(dir, "valid.tsv", 20, 22);
  write_reversal_corpus(dir, "train", 60, 23);
  write_reversal_corpus(dir, "valid", 10, 24);
  const std::vector<std::pair<std::string, std::string>> programs{
      {"classify", classify + " train --train " + dir.file("train.tsv") + " --valid " + dir.file("valid.tsv") +
                       " --text-column text --emb 8 --hidden 8 --dropout 0 --word-dropout 0 --batch 16 --epochs 2"
                       " --threads 1 --out "},
      {"translate", translate + " train --train-src " + dir.file("train.src") + " --train-tgt " + dir.file("train.tgt") +
                        " --valid-src " + dir.file("valid.src") + " --valid-tgt " + dir.file("valid.tgt") +
                        " --batch 16 --epochs 2 --threads 1 --min-freq 1 --emb 8 --hidden 8 --dropout 0 --out "}};
  for (const auto& [name, train] : programs) {
    const Run alone = run(dir, train + dir.file(name + "-alone"));
    BOOST_TEST_REQUIRE(alone.status == 0, alone.err);
    const Run ranks = run(dir, mpirun + train + dir.file(name + "-ranks"));
    BOOST_TEST_REQUIRE(ranks.status == 0, ranks.err);
    const float difference =
        largest_difference(dir.file(name + "-alone/checkpoint.safetensors"), dir.file(name + "-ranks/checkpoint.safetensors"));
    // Adam moves a weight by about the rate, 1e-3, a step, whatever the gradient's scale; the
    // gradients' rounding differences (sums of 16 examples split 8 + 8) move the updates by
    // far less. A wrong share would train on other data and differ by whole steps.
    BOOST_TEST(difference <= 1e-4f, name << ": the weights differ by up to " << difference);
    // Adam hides the gradient's scale; the logged losses show it: each rank's share must be
    // weighted by its part of the batch, not summed as if each were the whole.
    const std::vector<std::vector<double>> alone_log = learned_columns(read_file(dir.file(name + "-alone/log.csv"))),
                                           ranks_log = learned_columns(read_file(dir.file(name + "-ranks/log.csv")));
    BOOST_TEST_REQUIRE(alone_log.size() == 2u);
    BOOST_TEST_REQUIRE(ranks_log.size() == 2u);
    for (std::size_t row = 0; row < 2; ++row) {
      for (std::size_t column = 0; column < alone_log[row].size(); ++column) {
        BOOST_TEST(std::abs(alone_log[row][column] - ranks_log[row][column]) <= 1e-4 * (1 + std::abs(alone_log[row][column])),
                   name << " log row " << row << " column " << column);
      }
    }
    // One "best ..." line: rank 1 printed nothing.
    BOOST_TEST(std::count(ranks.out.begin(), ranks.out.end(), '\n') == std::count(alone.out.begin(), alone.out.end(), '\n'),
               ranks.out);
  }
  // A run resumed with another number of ranks goes on as it would have in one process: the
  // checkpoint holds the global batches' position, not the ranks.
  std::string third_epoch = programs[0].second;
  third_epoch.replace(third_epoch.find("--epochs 2"), 10, "--epochs 3");
  std::filesystem::copy(dir.file("classify-alone"), dir.file("classify-alone-2"), std::filesystem::copy_options::recursive);
  const Run on_one = run(dir, third_epoch + dir.file("classify-alone") + " --resume");
  BOOST_TEST_REQUIRE(on_one.status == 0, on_one.err);
  const Run on_two = run(dir, mpirun + third_epoch + dir.file("classify-alone-2") + " --resume");
  BOOST_TEST_REQUIRE(on_two.status == 0, on_two.err);
  BOOST_TEST(largest_difference(dir.file("classify-alone/checkpoint.safetensors"),
                                dir.file("classify-alone-2/checkpoint.safetensors")) <= 1e-4f);
  BOOST_TEST(learned_columns(read_file(dir.file("classify-alone-2/log.csv"))).size() == 3u);

  // A check that fails on rank 0 (its --out holds a run) ends rank 1 too, with rank 0's code.
  const Run refused = run(dir, mpirun + programs[0].second + dir.file("classify-ranks"));
  BOOST_TEST(refused.status == 2, refused.err);
  BOOST_TEST(contains(refused.err, "already holds a training run"), refused.err);
  // Each rank would train a SentencePiece model of its own.
  const Run subword = run(dir, mpirun + programs[0].second + dir.file("subword") + " --subword unigram --vocab-size 40");
  BOOST_TEST(subword.status == 2, subword.err);
  BOOST_TEST(contains(subword.err, "--subword-model FILE"), subword.err);
}
#endif
