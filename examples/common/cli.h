#pragma once
// A small declarative command-line parser for the example programs. Each option is bound to
// a variable whose initial value is the default; parsing checks types and ranges and stores
// the values, so that a program reads its settings from a plain struct:
//
//   TrainSettings train;  // members with default initialisers
//   cli::Program program("xgrad-translate", "Attention-based translation on Multi30K.");
//   cli::Command& command = program.subcommand("train", "Train a model.");
//   command.path("--train-src", train.source, "FILE", "tokenised source sentences").required();
//   command.size("--epochs", train.epochs, "N", "passes over the training data").range(1, 1000);
//   command.choice("--cell", train.cell, {"gru", "lstm"}, "recurrent cell");
//   command.flag("--resume", train.resume, "continue from the checkpoint in --out");
//   return cli::run_main(program, argc, argv, [&](const std::string& name) { ... return 0; });
//
// Options are written `--name value` or `--name=value`. `--help` (or `-h`) prints the usage
// of the program or of the subcommand it follows. Every mistake is a UsageError naming the
// option, the value given and what was expected; run_main turns it into exit code 2.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xgrad::cli {

// A command line the program cannot accept (exit code 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by Program::parse when --help was given; `text` is the usage to print (exit code 0).
class HelpRequested : public std::exception {
 public:
  explicit HelpRequested(std::string text) : text_(std::move(text)) {}
  const char* what() const noexcept override { return text_.c_str(); }
  const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
};

// One declared option. The setters return the option, so that declarations chain.
class Option {
 public:
  virtual ~Option() = default;
  Option& required();

  const std::string& name() const noexcept { return name_; }
  bool is_required() const noexcept { return required_; }
  const std::string& help() const noexcept { return help_; }
  // "--epochs N": the option as the usage shows it.
  std::string synopsis() const;
  // "passes over the data; 1..1000 (default 10)": the help with the accepted values and the
  // default or "(required)".
  std::string explanation() const;

 protected:
  // `default_text`: the bound variable's initial value as text, empty for none.
  Option(std::string name, std::string metavar, std::string help, std::string default_text);

 private:
  friend class Command;
  // Parses and stores `value`; UsageError on a bad value.
  virtual void set(std::string_view value) = 0;
  virtual bool takes_value() const { return true; }
  // Whether the option may be given more than once (otherwise a UsageError).
  virtual bool repeatable() const { return false; }
  // The accepted values ("1..1000"), for help and errors; empty if unrestricted.
  virtual std::string constraint() const { return {}; }

  std::string name_;
  std::string metavar_;
  std::string help_;
  std::string default_text_;
  bool required_ = false;
};

// Integers with an inclusive range: signed (std::int64_t) or counts and sizes (std::size_t,
// --epochs, --batch, --hidden), which reject a minus sign. Instantiated for those two types.
template <class I>
class IntegerOption : public Option {
 public:
  IntegerOption(std::string name, I& target, std::string metavar, std::string help);
  IntegerOption& range(I min, I max);

 private:
  void set(std::string_view value) override;
  std::string constraint() const override;
  I& target_;
  I min_ = std::numeric_limits<I>::min();
  I max_ = std::numeric_limits<I>::max();
};
using SignedOption = IntegerOption<std::int64_t>;
using SizeOption = IntegerOption<std::size_t>;

// Finite real numbers (--lr, --dropout) with inclusive or exclusive bounds.
class RealOption : public Option {
 public:
  RealOption(std::string name, double& target, std::string metavar, std::string help);
  // min <= value <= max (either may be infinite)
  RealOption& range(double min, double max);
  // min < value <= max
  RealOption& above(double min, double max = std::numeric_limits<double>::infinity());

 private:
  void set(std::string_view value) override;
  std::string constraint() const override;
  double& target_;
  double min_;
  double max_;
  bool min_exclusive_ = false;
};

class StringOption : public Option {
 public:
  StringOption(std::string name, std::string& target, std::string metavar, std::string help);

 private:
  void set(std::string_view value) override;
  std::string& target_;
};

// A file or directory name (not checked for existence: the program reports what it needs).
class PathOption : public Option {
 public:
  PathOption(std::string name, std::filesystem::path& target, std::string metavar, std::string help);

 private:
  void set(std::string_view value) override;
  std::filesystem::path& target_;
};

// A file or directory name that may be given several times (--model A --model B), each
// appended in the order given.
class PathListOption : public Option {
 public:
  PathListOption(std::string name, std::vector<std::filesystem::path>& target, std::string metavar, std::string help);

 private:
  void set(std::string_view value) override;
  bool repeatable() const override { return true; }
  std::vector<std::filesystem::path>& target_;
};

// One of a fixed list of names (--cell gru|lstm).
class ChoiceOption : public Option {
 public:
  ChoiceOption(std::string name, std::string& target, std::vector<std::string> choices, std::string help);

 private:
  void set(std::string_view value) override;
  std::string& target_;
  std::vector<std::string> choices_;
};

// A switch without a value (--resume): present sets the variable to true.
class FlagOption : public Option {
 public:
  FlagOption(std::string name, bool& target, std::string help);

 private:
  void set(std::string_view value) override;
  bool takes_value() const override { return false; }
  bool& target_;
};

// A set of options: a program without subcommands, or one subcommand. Option names start
// with "--"; declaring a name twice is std::invalid_argument.
class Command {
 public:
  Command(std::string name, std::string description);
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;
  virtual ~Command() = default;

  SignedOption& integer(std::string name, std::int64_t& target, std::string metavar, std::string help);
  SizeOption& size(std::string name, std::size_t& target, std::string metavar, std::string help);
  RealOption& real(std::string name, double& target, std::string metavar, std::string help);
  StringOption& text(std::string name, std::string& target, std::string metavar, std::string help);
  PathOption& path(std::string name, std::filesystem::path& target, std::string metavar, std::string help);
  PathListOption& paths(std::string name, std::vector<std::filesystem::path>& target, std::string metavar,
                        std::string help);
  ChoiceOption& choice(std::string name, std::string& target, std::vector<std::string> choices, std::string help);
  FlagOption& flag(std::string name, bool& target, std::string help);
  // Declares that `first` and `second` (both declared already) cannot be given together.
  void exclusive(const std::string& first, const std::string& second);
  // Declares that `option` applies only when `selector` has `value` (given, or as its
  // default): given otherwise, it is a UsageError naming both (--pooling with --arch rnn).
  void only_with(const std::string& option, const std::string& selector, const std::string& value);

  const std::string& name() const noexcept { return name_; }
  const std::string& description() const noexcept { return description_; }
  // "usage: <invocation> [options]", the description and one line per option.
  std::string usage(const std::string& invocation) const;

 protected:
  friend class Program;
  bool has_options() const noexcept { return !options_.empty(); }
  // Sets the options from `arguments`; `invocation` ("xgrad-translate train") starts errors.
  // HelpRequested on --help, UsageError on any mistake or a missing required option.
  void parse_options(const std::vector<std::string>& arguments, const std::string& invocation) const;

 private:
  template <class O, class... Args>
  O& add(std::string name, Args&&... args);
  Option* find(std::string_view name) const;

  std::string name_;
  std::string description_;
  std::vector<std::unique_ptr<Option>> options_;
  std::vector<std::pair<const Option*, const Option*>> exclusive_pairs_;
  struct Condition {
    const Option* option;
    const Option* selector;
    std::string value;
  };
  std::vector<Condition> conditions_;
};

// The whole command line: either options of its own, or subcommands (then the first
// argument names one), not both.
class Program : public Command {
 public:
  Program(std::string name, std::string description);

  Command& subcommand(std::string name, std::string description);

  // Parses argv[1..] and returns the subcommand chosen ("" for a program without
  // subcommands). HelpRequested on --help, UsageError on any mistake.
  std::string parse(int argc, const char* const* argv) const;
  std::string parse(const std::vector<std::string>& arguments) const;
  // The program's usage: its options, or its subcommands.
  std::string usage() const;

 private:
  std::vector<std::unique_ptr<Command>> subcommands_;
};

// Flushes standard output; an xgrad::file_error naming it when anything written there was
// lost (a full disk, a closed stream), so that a program never ends well with lost output.
// Programs that answer line by line call it after each batch; run_main calls it last.
void flush_standard_output();

// Refuses (UsageError naming `flag`) an output file that cannot be written however long the
// program works first: a directory, or a name in a directory that does not exist. An empty
// path (the flag not given) passes.
void refuse_unwritable_output_file(const std::string& flag, const std::filesystem::path& path);

// What main() returns: parses the command line and runs `body(subcommand)`. --help prints to
// `out` and gives 0; a UsageError gives 2 and any other exception 1, both with
// "<program>: <message>" on `err`; so does output lost on the way to standard output
// (flush_standard_output). A standard stream the program was started without (`>&-`) is
// reopened read-only on /dev/null first: no file the program opens can take its number and
// receive its output, and writes to it fail, to be reported.
int run_main(const Program& program, int argc, const char* const* argv,
             const std::function<int(const std::string& subcommand)>& body);
int run_main(const Program& program, int argc, const char* const* argv,
             const std::function<int(const std::string& subcommand)>& body, std::ostream& out, std::ostream& err);

}  // namespace xgrad::cli
