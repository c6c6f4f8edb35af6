#pragma once
// What the programs do with data they cannot use: lines skipped while reading are counted
// and reported, a data set left empty is an error that says why, and running out of memory
// names what was being built.

#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>

namespace xgrad::cli {

// Why lines of a data file were left out.
struct SkippedLines {
  std::size_t empty = 0;     // a side of a pair without tokens
  std::size_t too_long = 0;  // more tokens than --max-length
};

// Prints "FILES: skipped N lines ..." on standard output when any line was skipped.
void report_skipped(const std::string& files, const SkippedLines& skipped, std::size_t max_length);

// A file_error when nothing is left of `files` (`kept` is 0), naming them and how many lines
// were skipped for which reason: training on nothing, or an accuracy of 0% and a perplexity
// of NaN measured on nothing, would otherwise pass for results.
void require_examples(std::size_t kept, const std::string& files, const SkippedLines& skipped, std::size_t max_length);

// std::bad_alloc turned into a message naming what was being built (exit code 1).
class OutOfMemory : public std::runtime_error {
 public:
  explicit OutOfMemory(const std::string& what)
      : std::runtime_error("out of memory while building " + what +
                           " (std::bad_alloc); lower --max-length, --batch or the model's sizes, or free memory") {}
};

// Runs `build`, naming `what` it builds if memory runs out.
template <class Build>
decltype(auto) building(const std::string& what, Build&& build) {
  try {
    return build();
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(what);
  }
}

}  // namespace xgrad::cli
