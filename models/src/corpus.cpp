#include "xgrad/models/corpus.h"

#include <algorithm>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/file_io.h"
#include "xgrad/framework/utf8.h"

namespace xgrad::models {
namespace {

constexpr std::string_view whitespace = " \t\r\n\f\v";

// The lines of `text` without their line ends ("\n" or "\r\n"); a final newline does not
// start another line.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = line.find('\t', start);
    fields.push_back(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return fields;
    start = end + 1;
  }
}

std::string_view trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(whitespace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(whitespace) - first + 1);
}

std::string joined(const std::vector<std::string_view>& names) {
  std::string result;
  for (const std::string_view name : names) {
    if (!result.empty()) result += ", ";
    result += name;
  }
  return result;
}

// The position of the header column `name`, which must occur exactly once.
std::size_t column_index(const std::vector<std::string_view>& header, const std::string& name, const std::string& path) {
  const auto found = std::find(header.begin(), header.end(), name);
  if (found == header.end()) {
    throw file_error(detail::message(path, ":1: no column named '", name, "'; the header has ", joined(header)));
  }
  if (std::find(found + 1, header.end(), name) != header.end()) {
    throw file_error(detail::message(path, ":1: the header names column '", name, "' more than once"));
  }
  return static_cast<std::size_t>(found - header.begin());
}

}  // namespace

Tokens split_tokens(std::string_view text) {
  Tokens tokens;
  std::size_t start = text.find_first_not_of(whitespace);
  while (start != std::string_view::npos) {
    const std::size_t end = text.find_first_of(whitespace, start);
    tokens.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    start = text.find_first_not_of(whitespace, end);
  }
  return tokens;
}

std::string join_tokens(const Tokens& tokens) {
  std::string result;
  for (const std::string& token : tokens) {
    if (!result.empty()) result += ' ';
    result += token;
  }
  return result;
}

namespace {
std::vector<Tokens> sentences_of(std::string_view text, const std::string& name) {
  require_utf8(text, name);
  std::vector<Tokens> sentences;
  for (const std::string_view line : split_lines(text)) sentences.push_back(split_tokens(line));
  return sentences;
}
}  // namespace

std::vector<Tokens> read_sentences(const std::string& path) { return sentences_of(read_file(path), path); }

ParallelCorpus read_parallel_corpus(const std::string& source_path, const std::string& target_path,
                                    std::size_t max_length) {
  std::string source, target;
  try {
    source = read_file(source_path);
    target = read_file(target_path);
  } catch (const file_error& e) {
    throw file_error(detail::message("parallel corpus (source ", source_path, ", target ", target_path, "): ", e.what()));
  }
  return parse_parallel_corpus(source, target, source_path, target_path, max_length);
}

ParallelCorpus parse_parallel_corpus(std::string_view source_text, std::string_view target_text,
                                     const std::string& source_name, const std::string& target_name,
                                     std::size_t max_length) {
  std::vector<Tokens> source = sentences_of(source_text, source_name);
  std::vector<Tokens> target = sentences_of(target_text, target_name);
  if (source.size() != target.size()) {
    throw file_error(detail::message("parallel corpus: source ", source_name, " has ", source.size(), " lines but target ",
                                     target_name, " has ", target.size(),
                                     "; line N of the source must translate line N of the target"));
  }
  ParallelCorpus corpus;
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i].empty() || target[i].empty()) {
      ++corpus.skipped_empty;
      continue;
    }
    if (source[i].size() > max_length || target[i].size() > max_length) {
      ++corpus.skipped_long;
      continue;
    }
    corpus.source.push_back(std::move(source[i]));
    corpus.target.push_back(std::move(target[i]));
  }
  return corpus;
}

LabelledTexts read_labelled_tsv(const std::string& path, const TsvColumns& columns, std::size_t max_length) {
  return parse_labelled_tsv(read_file(path), path, columns, max_length);
}

LabelledTexts parse_labelled_tsv(std::string_view text, const std::string& path, const TsvColumns& columns,
                                 std::size_t max_length) {
  require_utf8(text, path);
  const std::vector<std::string_view> lines = split_lines(text);
  if (lines.empty()) throw file_error(detail::message(path, ": the file is empty; expected a header line naming the columns"));
  const std::vector<std::string_view> header = split_fields(lines[0]);
  const std::size_t text_column = column_index(header, columns.text, path);
  const std::size_t label_column = column_index(header, columns.label, path);

  LabelledTexts data;
  data.path = path;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::size_t line_number = i + 1;
    const std::vector<std::string_view> fields = split_fields(lines[i]);
    if (fields.size() != header.size()) {
      throw file_error(detail::message(path, ":", line_number, ": ", fields.size(), " tab-separated columns but the header has ",
                                       header.size()));
    }
    Tokens tokens = split_tokens(fields[text_column]);
    if (tokens.empty()) throw file_error(detail::message(path, ":", line_number, ": empty text in column '", columns.text, "'"));
    const std::string_view label = trim(fields[label_column]);
    if (label.empty()) throw file_error(detail::message(path, ":", line_number, ": empty label in column '", columns.label, "'"));
    if (tokens.size() > max_length) {
      ++data.skipped_long;
      continue;
    }
    data.texts.push_back(std::move(tokens));
    data.labels.emplace_back(label);
    data.lines.push_back(line_number);
  }
  return data;
}

}  // namespace xgrad::models
