#define BOOST_TEST_MODULE example_common
#include "xgrad_test.h"

#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "cli.h"

using xgrad::testing::TempDir;
using namespace xgrad;
using namespace xgrad::cli;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The settings of `xgrad-translate train`, declared as the program declares them.
struct TrainSettings {
  std::filesystem::path train_source, train_target, valid_source, valid_target, out;
  std::size_t epochs = 10;
  std::size_t batch = 64;
  std::size_t embedding = 256;
  std::size_t hidden = 512;
  std::size_t layers = 1;
  std::string cell = "gru";
  std::string attention = "bahdanau";
  double dropout = 0.2;
  double learning_rate = 1e-3;
  double clip = 1.0;
  std::size_t seed = 1;
  std::size_t threads = 1;
  std::size_t max_steps = 0;
  double time_budget = 0.0;
  bool resume = false;
  std::int64_t offset = 0;
};

struct TranslateProgram {
  TrainSettings train;
  std::filesystem::path model, input;
  Program program{"xgrad-translate", "Attention-based translation on Multi30K."};

  TranslateProgram() {
    Command& command = program.subcommand("train", "Train a model.");
    command.path("--train-src", train.train_source, "FILE", "training source sentences").required();
    command.path("--train-tgt", train.train_target, "FILE", "training target sentences").required();
    command.path("--valid-src", train.valid_source, "FILE", "validation source sentences").required();
    command.path("--valid-tgt", train.valid_target, "FILE", "validation target sentences").required();
    command.path("--out", train.out, "DIR", "output directory").required();
    command.size("--epochs", train.epochs, "N", "passes over the data").range(1, 1000);
    command.size("--batch", train.batch, "N", "sentences per batch").range(1, 4096);
    command.size("--emb", train.embedding, "N", "embedding size").range(1, 4096);
    command.size("--hidden", train.hidden, "N", "hidden size").range(1, 4096);
    command.size("--layers", train.layers, "N", "recurrent layers").range(1, 8);
    command.choice("--cell", train.cell, {"gru", "lstm"}, "recurrent cell");
    command.choice("--attention", train.attention, {"bahdanau", "luong", "none"}, "attention");
    command.real("--dropout", train.dropout, "P", "dropout probability").range(0.0, 0.9);
    command.real("--lr", train.learning_rate, "X", "learning rate").above(0.0, 10.0);
    command.real("--clip", train.clip, "X", "gradient norm clip").above(0.0);
    command.size("--seed", train.seed, "N", "random seed");
    command.size("--threads", train.threads, "N", "threads").range(1, 256);
    command.size("--max-steps", train.max_steps, "N", "stop after N steps (0: no limit)");
    command.real("--time-budget", train.time_budget, "MIN", "stop after MIN minutes (0: no limit)").range(0.0, 1e6);
    command.flag("--resume", train.resume, "continue from the checkpoint in --out");
    command.integer("--offset", train.offset, "K", "a signed setting").range(-5, 5);
    Command& translate = program.subcommand("translate", "Translate a file.");
    translate.path("--model", model, "DIR", "trained model").required();
    translate.path("--input", input, "FILE", "sentences to translate").required();
  }
};

const std::vector<std::string> required_train = {"train",       "--train-src", "a.de",  "--train-tgt", "a.en", "--valid-src",
                                                 "v.de",        "--valid-tgt", "v.en",  "--out",       "run"};

std::vector<std::string> train_with(std::vector<std::string> extra) {
  std::vector<std::string> arguments = required_train;
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return arguments;
}

std::string usage_error(const std::vector<std::string>& arguments) {
  TranslateProgram translate;
  try {
    translate.program.parse(arguments);
  } catch (const UsageError& e) {
    return e.what();
  }
  BOOST_FAIL("no UsageError for the arguments");
  return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(command_line)

BOOST_AUTO_TEST_CASE(a_full_train_command_line_sets_every_option) {
  TranslateProgram translate;
  const std::string chosen = translate.program.parse(train_with(
      {"--epochs", "12", "--batch=128", "--emb", "300", "--hidden", "400", "--layers", "2", "--cell", "lstm", "--attention",
       "luong", "--dropout", "0.3", "--lr", "5e-4", "--clip", "5", "--seed", "18446744073709551615", "--threads", "2",
       "--max-steps", "100", "--time-budget", "1.5", "--resume", "--offset", "-3"}));
  const TrainSettings& train = translate.train;
  BOOST_TEST(chosen == "train");
  BOOST_TEST(train.train_source == "a.de");
  BOOST_TEST(train.valid_target == "v.en");
  BOOST_TEST(train.out == "run");
  BOOST_TEST(train.epochs == 12u);
  BOOST_TEST(train.batch == 128u);
  BOOST_TEST(train.embedding == 300u);
  BOOST_TEST(train.hidden == 400u);
  BOOST_TEST(train.layers == 2u);
  BOOST_TEST(train.cell == "lstm");
  BOOST_TEST(train.attention == "luong");
  BOOST_TEST(train.dropout == 0.3);
  BOOST_TEST(train.learning_rate == 5e-4);
  BOOST_TEST(train.clip == 5.0);
  BOOST_TEST(train.seed == 18446744073709551615u);
  BOOST_TEST(train.threads == 2u);
  BOOST_TEST(train.max_steps == 100u);
  BOOST_TEST(train.time_budget == 1.5);
  BOOST_TEST(train.resume);
  BOOST_TEST(train.offset == -3);
}

BOOST_AUTO_TEST_CASE(options_not_given_keep_their_defaults) {
  TranslateProgram translate;
  translate.program.parse(required_train);
  BOOST_TEST(translate.train.epochs == 10u);
  BOOST_TEST(translate.train.cell == "gru");
  BOOST_TEST(translate.train.dropout == 0.2);
  BOOST_TEST(!translate.train.resume);

  TranslateProgram other;
  BOOST_TEST(other.program.parse({"translate", "--model", "run", "--input", "test.de"}) == "translate");
  BOOST_TEST(other.model == "run");
}

BOOST_AUTO_TEST_CASE(help_shows_usage_of_the_program_and_of_each_command) {
  TranslateProgram translate;
  try {
    translate.program.parse({"--help"});
    BOOST_FAIL("no HelpRequested");
  } catch (const HelpRequested& help) {
    BOOST_TEST(contains(help.text(), "usage: xgrad-translate <command> [options]"), help.text());
    BOOST_TEST(contains(help.text(), "  train       Train a model.\n"), help.text());
    BOOST_TEST(contains(help.text(), "  translate   Translate a file.\n"), help.text());
  }
  try {
    translate.program.parse({"train", "--epochs", "3", "-h"});
    BOOST_FAIL("no HelpRequested");
  } catch (const HelpRequested& help) {
    const std::string& text = help.text();
    BOOST_TEST(contains(text, "usage: xgrad-translate train [options]"), text);
    BOOST_TEST(contains(text, "--train-src FILE"), text);
    BOOST_TEST(contains(text, "training source sentences (required)"), text);
    BOOST_TEST(contains(text, "passes over the data; 1..1000 (default 10)"), text);
    BOOST_TEST(contains(text, "--cell gru|lstm"), text);
    BOOST_TEST(contains(text, "recurrent cell (default gru)"), text);
    BOOST_TEST(contains(text, "dropout probability; in [0, 0.9] (default 0.2)"), text);
    BOOST_TEST(contains(text, "learning rate; in (0, 10] (default 0.001)"), text);
    BOOST_TEST(contains(text, "gradient norm clip; > 0 (default 1)"), text);
    BOOST_TEST(contains(text, "--resume "), text);
  }
}

BOOST_AUTO_TEST_CASE(mistakes_name_the_option_the_value_and_what_was_expected) {
  const auto check = [](const std::vector<std::string>& arguments, const std::vector<std::string>& parts) {
    const std::string message = usage_error(arguments);
    for (const std::string& part : parts) BOOST_TEST(contains(message, part), "'" << part << "' not in: " << message);
  };
  check(train_with({"--epoch", "3"}), {"unknown option '--epoch'", "did you mean --epochs?", "xgrad-translate train --help"});
  check(train_with({"--epochs"}), {"--epochs: missing value; expected --epochs N"});
  check(train_with({"--epochs", "three"}), {"--epochs: not a non-negative integer: 'three'", "1..1000"});
  check(train_with({"--epochs", "-2"}), {"--epochs: not a non-negative integer: '-2'"});
  check(train_with({"--epochs", "0"}), {"--epochs: out of range: '0'; expected an integer in 1..1000"});
  check(train_with({"--seed", "18446744073709551616"}), {"--seed: out of range: '18446744073709551616'"});
  check(train_with({"--offset", "9"}), {"--offset: out of range: '9'; expected an integer in -5..5"});
  check(train_with({"--offset", "2x"}), {"--offset: not an integer: '2x'"});
  check(train_with({"--dropout", "0.95"}), {"--dropout: out of range: '0.95'; expected a number in [0, 0.9]"});
  check(train_with({"--lr", "0"}), {"--lr: out of range: '0'; expected a number in (0, 10]"});
  check(train_with({"--lr", "fast"}), {"--lr: not a finite number: 'fast'"});
  check(train_with({"--clip", "nan"}), {"--clip: not a finite number: 'nan'"});
  check(train_with({"--cell", "rnn"}), {"--cell: unknown choice 'rnn'; expected one of gru, lstm"});
  check(train_with({"--resume=yes"}), {"--resume takes no value, got '--resume=yes'"});
  check(train_with({"--epochs", "2", "--epochs", "3"}), {"--epochs is given more than once"});
  check(train_with({"extra"}), {"unexpected argument 'extra'"});
  check({"translate", "--model=", "--input", "in.de"}, {"--model: empty path"});
  check({"train", "--train-src", "a.de"}, {"missing required option --train-tgt FILE (training target sentences)"});
  check({"trian"}, {"unknown command 'trian'; did you mean train?", "expected one of train, translate"});
  check({}, {"missing command; expected one of train, translate"});
}

BOOST_AUTO_TEST_CASE(run_main_maps_outcomes_to_exit_codes) {
  TranslateProgram translate;
  std::ostringstream out;
  std::ostringstream err;
  const auto run = [&](std::vector<const char*> argv, const std::function<int(const std::string&)>& body) {
    out.str("");
    err.str("");
    argv.insert(argv.begin(), "xgrad-translate");
    return run_main(translate.program, static_cast<int>(argv.size()), argv.data(), body, out, err);
  };
  const auto never = [](const std::string&) -> int { throw std::logic_error("the body must not run"); };

  BOOST_TEST(run({"--help"}, never) == 0);
  BOOST_TEST(contains(out.str(), "usage: xgrad-translate <command>"));
  BOOST_TEST(err.str().empty());

  BOOST_TEST(run({"train", "--epochs", "x"}, never) == 2);
  BOOST_TEST(contains(err.str(), "xgrad-translate: --epochs: not a non-negative integer: 'x'"), err.str());

  BOOST_TEST(run({"translate", "--model", "m", "--input", "in.de"},
                 [](const std::string& command) { return command == "translate" ? 7 : 0; }) == 7);
  BOOST_TEST(run({"translate", "--model", "m", "--input", "in.de"},
                 [](const std::string&) -> int { throw file_error("m/model.safetensors: cannot open"); }) == 1);
  BOOST_TEST(err.str() == "xgrad-translate: m/model.safetensors: cannot open\n");
}

BOOST_AUTO_TEST_CASE(a_program_without_subcommands_parses_its_own_options) {
  std::filesystem::path data;
  std::size_t epochs = 20;
  Program program("xgrad-quickstart", "A question classifier.");
  program.path("--data", data, "DIR", "data directory").required();
  program.size("--epochs", epochs, "N", "epochs").range(1, 100);
  BOOST_TEST(program.parse({"--data", "d", "--epochs", "3"}) == "");
  BOOST_TEST(data == "d");
  BOOST_TEST(epochs == 3u);
  BOOST_TEST(contains(program.usage(), "usage: xgrad-quickstart [options]"));
  BOOST_CHECK_THROW(program.subcommand("train", "Train."), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(declaration_mistakes_are_rejected) {
  bool flag = false;
  std::string cell = "rnn";
  Program program("p", "d");
  Command& command = program.subcommand("run", "Run.");
  command.flag("--x", flag, "x");
  BOOST_CHECK_THROW(command.flag("--x", flag, "again"), std::invalid_argument);
  BOOST_CHECK_THROW(command.flag("x", flag, "no dashes"), std::invalid_argument);
  BOOST_CHECK_THROW(command.choice("--cell", cell, {"gru", "lstm"}, "default not a choice"), std::invalid_argument);
  BOOST_CHECK_THROW(program.subcommand("run", "twice"), std::invalid_argument);
  BOOST_CHECK_THROW(command.exclusive("--x", "--y"), std::invalid_argument);
  BOOST_CHECK_THROW(command.exclusive("--x", "--x"), std::invalid_argument);
  BOOST_CHECK_THROW(command.only_with("--x", "--y", "on"), std::invalid_argument);
  BOOST_CHECK_THROW(command.only_with("--x", "--x", "on"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(an_option_of_one_choice_is_refused_with_the_others) {
  std::string arch = "rnn", pooling = "attention";
  std::size_t hidden = 8;
  Program program("xgrad-classify", "A classifier.");
  Command& train = program.subcommand("train", "Train.");
  train.choice("--arch", arch, {"rnn", "transformer"}, "architecture");
  train.size("--hidden", hidden, "N", "rnn: hidden size");
  train.choice("--pooling", pooling, {"attention", "mean"}, "transformer: pooling");
  train.only_with("--hidden", "--arch", "rnn");
  train.only_with("--pooling", "--arch", "transformer");
  program.parse({"train", "--hidden", "16"});
  BOOST_TEST(hidden == 16u);
  program.parse({"train", "--arch", "transformer", "--pooling", "mean"});
  BOOST_TEST(pooling == "mean");
  program.parse({"train", "--arch=rnn", "--hidden=4"});
  BOOST_TEST(hidden == 4u);
  const auto refusal = [&](const std::vector<std::string>& arguments) {
    try {
      program.parse(arguments);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  BOOST_TEST(refusal({"train", "--pooling", "mean"}) ==
             "--pooling needs --arch transformer; --arch is rnn (the default) (see 'xgrad-classify train --help')");
  BOOST_TEST(refusal({"train", "--hidden", "8", "--arch", "transformer"}) ==
             "--hidden needs --arch rnn; --arch is transformer (see 'xgrad-classify train --help')");
}

BOOST_AUTO_TEST_CASE(exclusive_options_are_refused_together_and_accepted_alone) {
  std::filesystem::path valid;
  double split = 0.1;
  Program program("xgrad-classify", "A classifier.");
  Command& train = program.subcommand("train", "Train.");
  train.path("--valid", valid, "FILE", "validation data");
  train.real("--valid-split", split, "X", "fraction held out").above(0, 0.9);
  train.exclusive("--valid", "--valid-split");
  BOOST_TEST(contains(train.usage("xgrad-classify train"), "fraction held out; in (0, 0.9] (default 0.1)"));
  program.parse({"train", "--valid-split", "0.2"});
  BOOST_TEST(split == 0.2);
  program.parse({"train", "--valid", "v.tsv"});
  BOOST_TEST(valid == "v.tsv");
  try {
    program.parse({"train", "--valid-split", "0.3", "--valid", "v.tsv"});
    BOOST_FAIL("both options were accepted");
  } catch (const UsageError& e) {
    BOOST_TEST(contains(e.what(), "give either --valid or --valid-split, not both (see 'xgrad-classify train --help')"), e.what());
  }
}

BOOST_AUTO_TEST_SUITE_END()

// A list option takes every occurrence in order; a plain option given twice stays refused.
BOOST_AUTO_TEST_CASE(a_path_list_option_may_be_given_several_times) {
  std::vector<std::filesystem::path> models;
  std::filesystem::path out;
  Program program("xgrad-translate", "Translation.");
  Command& average = program.subcommand("average", "Average.");
  average.paths("--model", models, "DIR", "a model directory; give one per model").required();
  average.path("--out", out, "DIR", "the new directory");
  program.parse({"average", "--model", "a", "--model=b", "--out", "c", "--model", "d"});
  BOOST_TEST((models == std::vector<std::filesystem::path>{"a", "b", "d"}));
  try {
    program.parse({"average", "--model", "e", "--out", "c", "--out", "f"});
    BOOST_FAIL("--out twice was accepted");
  } catch (const UsageError& e) {
    BOOST_TEST(contains(e.what(), "--out is given more than once"), e.what());
  }
  try {
    program.parse({"average", "--model", "a", "--model="});
    BOOST_FAIL("an empty --model was accepted");
  } catch (const UsageError& e) {
    BOOST_TEST(contains(e.what(), "--model: empty path"), e.what());
  }
}
