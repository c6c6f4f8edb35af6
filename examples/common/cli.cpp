#include "cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <type_traits>

#include <xgrad/framework/errors.h>
#include <xgrad/training/distributed.h>
#include <xgrad/training/trainer.h>

namespace xgrad::cli {
namespace {

template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

std::string joined(const std::vector<std::string>& names, const char* separator) {
  std::string result;
  for (const std::string& name : names) {
    if (!result.empty()) result += separator;
    result += name;
  }
  return result;
}

std::string real_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

// Parses all of `text` as a T with std::from_chars; nullopt if any of it is not a T, and
// `out_of_range` set when it is a number too large for T.
template <class T>
std::optional<T> parse_number(std::string_view text, bool& out_of_range) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  out_of_range = error == std::errc::result_out_of_range;
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// "; did you mean --epochs?" when one of `names` is within two edits of `given`.
std::string suggestion(std::string_view given, const std::vector<std::string>& names) {
  const std::string* best = nullptr;
  std::size_t best_distance = 3;
  for (const std::string& name : names) {
    const std::size_t distance = edit_distance(given, name);
    if (distance < best_distance) {
      best = &name;
      best_distance = distance;
    }
  }
  return best ? concat("; did you mean ", *best, "?") : std::string();
}

bool is_help(std::string_view argument) { return argument == "--help" || argument == "-h"; }

// Two-column listing: names padded to a common width, then their explanations.
std::string columns(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::size_t width = 0;
  for (const auto& [left, right] : rows) width = std::max(width, left.size());
  std::string text;
  for (const auto& [left, right] : rows) {
    text += "  " + left + std::string(width - left.size() + 3, ' ') + right + "\n";
  }
  return text;
}

}  // namespace

// ---- Option ----

Option::Option(std::string name, std::string metavar, std::string help, std::string default_text)
    : name_(std::move(name)), metavar_(std::move(metavar)), help_(std::move(help)), default_text_(std::move(default_text)) {
  if (name_.size() < 3 || name_.compare(0, 2, "--") != 0) {
    throw std::invalid_argument(concat("cli: option name '", name_, "' must start with --"));
  }
}

Option& Option::required() {
  required_ = true;
  return *this;
}

std::string Option::synopsis() const { return takes_value() ? name_ + " " + metavar_ : name_; }

std::string Option::explanation() const {
  std::string text = help_;
  const std::string accepted = constraint();
  if (!accepted.empty()) text += "; " + accepted;
  if (required_) {
    text += " (required)";
  } else if (!default_text_.empty()) {
    text += " (default " + default_text_ + ")";
  }
  return text;
}

// ---- typed options ----

template <class I>
IntegerOption<I>::IntegerOption(std::string name, I& target, std::string metavar, std::string help)
    : Option(std::move(name), std::move(metavar), std::move(help), std::to_string(target)), target_(target) {}

template <class I>
IntegerOption<I>& IntegerOption<I>::range(I min, I max) {
  min_ = min;
  max_ = max;
  return *this;
}

template <class I>
std::string IntegerOption<I>::constraint() const {
  if (min_ == std::numeric_limits<I>::min() && max_ == std::numeric_limits<I>::max()) return {};
  return concat(min_, "..", max_);
}

template <class I>
void IntegerOption<I>::set(std::string_view value) {
  const char* kind = std::is_signed_v<I> ? "an integer" : "a non-negative integer";
  bool too_large = false;
  const std::optional<I> number = parse_number<I>(value, too_large);
  if (!number || *number < min_ || *number > max_) {
    const std::string range = constraint();
    throw UsageError(concat(name(), ": ", number || too_large ? "out of range" : concat("not ", kind), ": '", value,
                            "'; expected ", range.empty() ? kind : "an integer in " + range));
  }
  target_ = *number;
}

template class IntegerOption<std::int64_t>;
template class IntegerOption<std::size_t>;

RealOption::RealOption(std::string name, double& target, std::string metavar, std::string help)
    : Option(std::move(name), std::move(metavar), std::move(help), real_text(target)),
      target_(target),
      min_(-std::numeric_limits<double>::infinity()),
      max_(std::numeric_limits<double>::infinity()) {}

RealOption& RealOption::range(double min, double max) {
  min_ = min;
  max_ = max;
  min_exclusive_ = false;
  return *this;
}

RealOption& RealOption::above(double min, double max) {
  range(min, max);
  min_exclusive_ = true;
  return *this;
}

std::string RealOption::constraint() const {
  const bool has_min = std::isfinite(min_);
  const bool has_max = std::isfinite(max_);
  if (has_min && has_max) return concat("in ", min_exclusive_ ? "(" : "[", real_text(min_), ", ", real_text(max_), "]");
  if (has_min) return concat(min_exclusive_ ? "> " : ">= ", real_text(min_));
  if (has_max) return concat("<= ", real_text(max_));
  return {};
}

void RealOption::set(std::string_view value) {
  bool too_large = false;
  const std::optional<double> number = parse_number<double>(value, too_large);
  const bool is_number = number && std::isfinite(*number);
  const bool inside = is_number && (min_exclusive_ ? *number > min_ : *number >= min_) && *number <= max_;
  if (!inside) {
    const std::string range = constraint();
    throw UsageError(concat(name(), ": ", is_number ? "out of range" : "not a finite number", ": '", value,
                            "'; expected a number", range.empty() ? "" : " " + range));
  }
  target_ = *number;
}

StringOption::StringOption(std::string name, std::string& target, std::string metavar, std::string help)
    : Option(std::move(name), std::move(metavar), std::move(help), target), target_(target) {}

void StringOption::set(std::string_view value) { target_ = value; }

PathOption::PathOption(std::string name, std::filesystem::path& target, std::string metavar, std::string help)
    : Option(std::move(name), std::move(metavar), std::move(help), target.string()), target_(target) {}

void PathOption::set(std::string_view value) {
  if (value.empty()) throw UsageError(concat(name(), ": empty path; expected a file or directory name"));
  target_ = std::filesystem::path(value);
}

ChoiceOption::ChoiceOption(std::string name, std::string& target, std::vector<std::string> choices, std::string help)
    : Option(std::move(name), joined(choices, "|"), std::move(help), target), target_(target), choices_(std::move(choices)) {
  if (choices_.empty()) throw std::invalid_argument(concat("cli: option ", this->name(), " has no choices"));
  if (!target_.empty() && std::find(choices_.begin(), choices_.end(), target_) == choices_.end()) {
    throw std::invalid_argument(concat("cli: the default '", target_, "' of ", this->name(), " is not one of its choices"));
  }
}

void ChoiceOption::set(std::string_view value) {
  if (std::find(choices_.begin(), choices_.end(), value) == choices_.end()) {
    throw UsageError(concat(name(), ": unknown choice '", value, "'; expected one of ", joined(choices_, ", ")));
  }
  target_ = value;
}

PathListOption::PathListOption(std::string name, std::vector<std::filesystem::path>& target, std::string metavar,
                               std::string help)
    : Option(std::move(name), std::move(metavar), std::move(help), ""), target_(target) {}

void PathListOption::set(std::string_view value) {
  if (value.empty()) throw UsageError(concat(name(), ": empty path; expected a file or directory name"));
  target_.emplace_back(value);
}

FlagOption::FlagOption(std::string name, bool& target, std::string help)
    : Option(std::move(name), "", std::move(help), ""), target_(target) {}

void FlagOption::set(std::string_view) { target_ = true; }

// ---- Command ----

Command::Command(std::string name, std::string description)
    : name_(std::move(name)), description_(std::move(description)) {}

template <class O, class... Args>
O& Command::add(std::string name, Args&&... args) {
  if (find(name)) throw std::invalid_argument(concat("cli: option ", name, " is declared twice in '", name_, "'"));
  auto option = std::make_unique<O>(std::move(name), std::forward<Args>(args)...);
  O& result = *option;
  options_.push_back(std::move(option));
  return result;
}

SignedOption& Command::integer(std::string name, std::int64_t& target, std::string metavar, std::string help) {
  return add<SignedOption>(std::move(name), target, std::move(metavar), std::move(help));
}

SizeOption& Command::size(std::string name, std::size_t& target, std::string metavar, std::string help) {
  return add<SizeOption>(std::move(name), target, std::move(metavar), std::move(help));
}

RealOption& Command::real(std::string name, double& target, std::string metavar, std::string help) {
  return add<RealOption>(std::move(name), target, std::move(metavar), std::move(help));
}

StringOption& Command::text(std::string name, std::string& target, std::string metavar, std::string help) {
  return add<StringOption>(std::move(name), target, std::move(metavar), std::move(help));
}

PathOption& Command::path(std::string name, std::filesystem::path& target, std::string metavar, std::string help) {
  return add<PathOption>(std::move(name), target, std::move(metavar), std::move(help));
}

PathListOption& Command::paths(std::string name, std::vector<std::filesystem::path>& target, std::string metavar,
                               std::string help) {
  return add<PathListOption>(std::move(name), target, std::move(metavar), std::move(help));
}

ChoiceOption& Command::choice(std::string name, std::string& target, std::vector<std::string> choices, std::string help) {
  return add<ChoiceOption>(std::move(name), target, std::move(choices), std::move(help));
}

FlagOption& Command::flag(std::string name, bool& target, std::string help) {
  return add<FlagOption>(std::move(name), target, std::move(help));
}

void Command::exclusive(const std::string& first, const std::string& second) {
  const Option* first_option = find(first);
  const Option* second_option = find(second);
  if (!first_option || !second_option || first_option == second_option) {
    throw std::invalid_argument(concat("cli: exclusive(", first, ", ", second, ") needs two declared options of ", name()));
  }
  exclusive_pairs_.emplace_back(first_option, second_option);
}

void Command::only_with(const std::string& option, const std::string& selector, const std::string& value) {
  const Option* conditional = find(option);
  const Option* selecting = find(selector);
  if (!conditional || !selecting || conditional == selecting) {
    throw std::invalid_argument(concat("cli: only_with(", option, ", ", selector, ") needs two declared options of ", name()));
  }
  conditions_.push_back({conditional, selecting, value});
}

Option* Command::find(std::string_view name) const {
  for (const auto& option : options_) {
    if (option->name() == name) return option.get();
  }
  return nullptr;
}

std::string Command::usage(const std::string& invocation) const {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& option : options_) rows.emplace_back(option->synopsis(), option->explanation());
  rows.emplace_back("-h, --help", "show this help and exit");
  return concat("usage: ", invocation, " [options]\n\n", description_, "\n\noptions:\n", columns(rows));
}

void Command::parse_options(const std::vector<std::string>& arguments, const std::string& invocation) const {
  if (std::any_of(arguments.begin(), arguments.end(), is_help)) throw HelpRequested(usage(invocation));
  const std::string hint = concat(" (see '", invocation, " --help')");
  std::map<const Option*, std::string> given;  // with the values as written
  for (std::size_t i = 0; i < arguments.size(); ++i) {
    const std::string& argument = arguments[i];
    if (argument.compare(0, 2, "--") != 0) throw UsageError(concat("unexpected argument '", argument, "'", hint));
    const std::size_t equals = argument.find('=');
    const std::string name = argument.substr(0, equals);
    Option* option = find(name);
    if (!option) {
      std::vector<std::string> names;
      for (const auto& candidate : options_) names.push_back(candidate->name());
      throw UsageError(concat("unknown option '", name, "'", suggestion(name, names), hint));
    }
    if (given.contains(option) && !option->repeatable()) throw UsageError(concat(name, " is given more than once", hint));
    std::string value;
    if (!option->takes_value()) {
      if (equals != std::string::npos) throw UsageError(concat(name, " takes no value, got '", argument, "'", hint));
    } else if (equals != std::string::npos) {
      value = argument.substr(equals + 1);
    } else if (i + 1 < arguments.size()) {
      value = arguments[++i];
    } else {
      throw UsageError(concat(name, ": missing value; expected ", option->synopsis(), hint));
    }
    try {
      option->set(value);
    } catch (const UsageError& e) {
      throw UsageError(e.what() + hint);
    }
    given.emplace(option, value);
  }
  for (const auto& [first, second] : exclusive_pairs_) {
    if (given.contains(first) && given.contains(second)) {
      throw UsageError(concat("give either ", first->name(), " or ", second->name(), ", not both", hint));
    }
  }
  for (const auto& [option, selector, value] : conditions_) {
    if (!given.contains(option)) continue;
    const auto selected = given.find(selector);
    const std::string& actual = selected == given.end() ? selector->default_text_ : selected->second;
    if (actual != value) {
      throw UsageError(concat(option->name(), " needs ", selector->name(), " ", value, "; ", selector->name(), " is ", actual,
                              selected == given.end() ? " (the default)" : "", hint));
    }
  }
  for (const auto& option : options_) {
    if (option->is_required() && !given.contains(option.get())) {
      throw UsageError(concat("missing required option ", option->synopsis(), " (", option->help(), ")", hint));
    }
  }
}

// ---- Program ----

Program::Program(std::string name, std::string description) : Command(std::move(name), std::move(description)) {}

Command& Program::subcommand(std::string name, std::string description) {
  if (has_options()) throw std::invalid_argument(concat("cli: ", this->name(), " has options of its own, so no subcommands"));
  for (const auto& existing : subcommands_) {
    if (existing->name() == name) throw std::invalid_argument(concat("cli: subcommand ", name, " is declared twice"));
  }
  subcommands_.push_back(std::make_unique<Command>(std::move(name), std::move(description)));
  return *subcommands_.back();
}

std::string Program::parse(int argc, const char* const* argv) const {
  return parse(std::vector<std::string>(argv + std::min(argc, 1), argv + argc));
}

std::string Program::parse(const std::vector<std::string>& arguments) const {
  if (subcommands_.empty()) {
    parse_options(arguments, name());
    return {};
  }
  if (has_options()) throw std::logic_error(concat("cli: ", name(), " has both options and subcommands"));
  std::vector<std::string> names;
  for (const auto& command : subcommands_) names.push_back(command->name());
  const std::string hint = concat(" (see '", name(), " --help')");
  if (arguments.empty()) throw UsageError(concat("missing command; expected one of ", joined(names, ", "), hint));
  if (is_help(arguments[0])) throw HelpRequested(usage());
  for (const auto& command : subcommands_) {
    if (command->name() == arguments[0]) {
      command->parse_options(std::vector<std::string>(arguments.begin() + 1, arguments.end()), name() + " " + command->name());
      return command->name();
    }
  }
  throw UsageError(concat("unknown command '", arguments[0], "'", suggestion(arguments[0], names), "; expected one of ",
                          joined(names, ", "), hint));
}

std::string Program::usage() const {
  if (subcommands_.empty()) return Command::usage(name());
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& command : subcommands_) rows.emplace_back(command->name(), command->description());
  return concat("usage: ", name(), " <command> [options]\n\n", description(), "\n\ncommands:\n", columns(rows), "\nRun '",
                name(), " <command> --help' for the options of a command.\n");
}

// ---- main ----

int run_main(const Program& program, int argc, const char* const* argv,
             const std::function<int(const std::string& subcommand)>& body) {
  // Under mpirun every rank runs the program; rank 0 speaks for the job, the others print
  // only their errors, and a rank that fails ends them all (they would wait for it).
  distributed::ProcessGroup& group = distributed::world();
  if (group.rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr) group.abort(1);
  const int status = run_main(program, argc, argv, body, std::cout, std::cerr);
  if (status != 0 && group.size() > 1) group.abort(status);
  return status;
}

namespace {

void reserve_closed_standard_streams() {
  for (const int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
    // open() returns the lowest free number, which is `fd` itself once the ones below are open.
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) ::open("/dev/null", O_RDONLY);
  }
}

}  // namespace

void flush_standard_output() {
  errno = 0;
  std::cout.flush();
  const bool flushed = std::fflush(stdout) == 0;
  const int reason = errno;
  if (flushed && !std::ferror(stdout) && std::cout) return;
  throw file_error(concat("standard output: writing failed (", reason ? std::strerror(reason) : "an earlier write",
                          "); output was lost"));
}

void refuse_unwritable_output_file(const std::string& flag, const std::filesystem::path& path) {
  if (path.empty()) return;
  std::error_code ignored;  // what cannot be inspected is left to the write to report
  if (std::filesystem::is_directory(path, ignored)) throw UsageError(concat(flag, " ", path.string(), " is a directory"));
  const std::filesystem::path parent = path.parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent, ignored)) {
    throw UsageError(concat(flag, " ", path.string(), ": the directory ", parent.string(), " does not exist"));
  }
}

int run_main(const Program& program, int argc, const char* const* argv,
             const std::function<int(const std::string& subcommand)>& body, std::ostream& out, std::ostream& err) {
  reserve_closed_standard_streams();
  try {
    int status = 0;
    try {
      status = body(program.parse(argc, argv));
    } catch (const HelpRequested& help) {
      out << help.text();
    }
    flush_standard_output();
    return status;
  } catch (const UsageError& e) {
    err << program.name() << ": " << e.what() << std::endl;
    return 2;
  } catch (const training::resume_error& e) {  // the run's data or --batch does not fit its checkpoint
    err << program.name() << ": " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    err << program.name() << ": " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace xgrad::cli
