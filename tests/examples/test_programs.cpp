// The command-line programs, run as a user runs them: exit code 0 for success and --help, 2
// for a usage error, 1 for a data error, each with a message naming the flag or file; eval,
// translate and predict print what they promise; and a run stopped and resumed with
// --resume ends with exactly the weights and optimizer state of an uninterrupted run.
#define BOOST_TEST_MODULE programs
#include "xgrad_test.h"

#include <sys/wait.h>

#include <sstream>

using namespace xgrad;
using xgrad::testing::TempDir;

namespace {

struct Run {
  int status;
  std::string out;
  std::string err;
};

// Runs a shell command line with standard output and error captured in files of `dir`.
Run run(const TempDir& dir, const std::string& command, const std::string& input = "") {
  const std::string in = dir.write("stdin.txt", input);
  const int raw = std::system((command + " < " + in + " > " + dir.file("stdout.txt") + " 2> " + dir.file("stderr.txt")).c_str());
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, read_file(dir.file("stdout.txt")), read_file(dir.file("stderr.txt"))};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A toy translation task: the target is the source reversed.
void write_reversal_corpus(const TempDir& dir, const std::string& name, std::size_t lines, std::uint64_t seed) {
  Generator generator(seed);
  std::ostringstream source, target;
  const char* words[] = {"a", "b", "c", "d", "e", "f"};
  for (std::size_t i = 0; i < lines; ++i) {
    std::vector<std::string> sentence;
    for (std::size_t k = 0, n = 2 + generator.below(4); k < n; ++k) sentence.push_back(words[generator.below(6)]);
    for (std::size_t k = 0; k < sentence.size(); ++k) source << (k ? " " : "") << sentence[k];
    for (std::size_t k = sentence.size(); k-- > 0;) target << sentence[k] << (k ? " " : "");
    source << '\n';
    target << '\n';
  }
  dir.write(name + ".src", source.str());
  dir.write(name + ".tgt", target.str());
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

std::string translate_train(const TempDir& dir, const std::string& out) {
  return translate + " train --train-src " + dir.file("train.src") + " --train-tgt " + dir.file("train.tgt") +
         " --valid-src " + dir.file("valid.src") + " --valid-tgt " + dir.file("valid.tgt") + " --out " + dir.file(out) +
         " --emb 8 --hidden 8 --batch 16 --epochs 3 --threads 1 --min-freq 1";
}

}  // namespace

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
  BOOST_TEST((contains(eval.out, "BLEU = ") && contains(eval.out, "perplexity")), eval.out);
  Run translated = run(dir, translate + " translate --model " + dir.file("whole") + " --attention-svg " + dir.file("a.svg"),
                       "a b c\n\nD E F\n");
  BOOST_TEST(translated.status == 0, translated.err);
  BOOST_TEST(std::count(translated.out.begin(), translated.out.end(), '\n') == 3);  // one line per input line
  BOOST_TEST(contains(read_file(dir.file("a.svg")), "<svg"));
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
