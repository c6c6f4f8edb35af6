#pragma once
// Reading the text corpora the example programs train on: tokenised sentence files, aligned
// sentence pairs for translation, and labelled texts (TSV with a header) for classification.
// Every failure is an xgrad::file_error naming the file, and the line where there is one;
// text that is not UTF-8 is one (naming file:line:column).

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace xgrad::models {

// The tokens of one sentence.
using Tokens = std::vector<std::string>;

// Splits already tokenised text on runs of whitespace (space, tab, CR, LF, FF, VT), as
// Python's str.split() does for ASCII text.
Tokens split_tokens(std::string_view text);
// Tokens joined by single spaces.
std::string join_tokens(const Tokens& tokens);

// One tokenised sentence per line, in file order; a blank line gives an empty sentence so
// that line N of the result is line N of the file. A final newline does not start a line.
std::vector<Tokens> read_sentences(const std::string& path);

// No limit on the tokens of a sentence or text.
inline constexpr std::size_t unlimited_length = std::numeric_limits<std::size_t>::max();

struct ParallelCorpus {
  std::vector<Tokens> source;
  std::vector<Tokens> target;
  // Lines where the source or the target (or both) had no tokens; such pairs are skipped.
  std::size_t skipped_empty = 0;
  // Lines where a side had more than max_length tokens; such pairs are skipped too, so that
  // one stray line cannot make a batch (and its memory) as long as itself.
  std::size_t skipped_long = 0;
};

// Line N of `source_path` translates line N of `target_path`. A missing file or different
// line counts is a file_error naming both files (and both counts).
ParallelCorpus read_parallel_corpus(const std::string& source_path, const std::string& target_path,
                                    std::size_t max_length = unlimited_length);
// The same for texts already in memory; the names stand for the files in messages.
ParallelCorpus parse_parallel_corpus(std::string_view source_text, std::string_view target_text,
                                     const std::string& source_name, const std::string& target_name,
                                     std::size_t max_length = unlimited_length);

// Which header columns hold the text and the label.
struct TsvColumns {
  std::string text = "sentence";
  std::string label = "label";
};

struct LabelledTexts {
  std::string path;
  std::vector<Tokens> texts;
  std::vector<std::string> labels;
  // The 1-based file line of each example (the header is line 1), for error messages.
  std::vector<std::size_t> lines;
  // Texts of more than max_length tokens, left out.
  std::size_t skipped_long = 0;
};

// A tab-separated file whose first line names the columns. A missing column name, a line
// with a different number of columns than the header, or an empty text or label is a
// file_error naming path:line. Texts longer than `max_length` tokens are skipped and counted.
LabelledTexts read_labelled_tsv(const std::string& path, const TsvColumns& columns = {},
                                std::size_t max_length = unlimited_length);
// The same for text already in memory; `name` stands for the file in messages.
LabelledTexts parse_labelled_tsv(std::string_view text, const std::string& name, const TsvColumns& columns = {},
                                 std::size_t max_length = unlimited_length);

}  // namespace xgrad::models
