#pragma once
// A CSV log of a training run (one row per evaluation: epoch, step, losses, BLEU, speed...).
// Every row is flushed as it is written, so the log survives a crash; a resumed run reopens
// the same file and appends.

#include <concepts>
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xgrad::training {

// One field: an integer, a real (6 significant digits), text (quoted when it holds a comma,
// quote or line break) or empty (std::nullopt, for a value not measured this time).
class CsvCell {
 public:
  template <std::integral I>
  CsvCell(I value) : text_(std::to_string(value)) {}
  CsvCell(double value);
  CsvCell(std::string_view text);
  CsvCell(const char* text) : CsvCell(std::string_view(text)) {}
  CsvCell(const std::string& text) : CsvCell(std::string_view(text)) {}
  CsvCell(std::nullopt_t) {}

  // The field as written to the file.
  const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
};

class CsvLog {
 public:
  // Creates `path` with a header row naming `columns`, or, when it exists (a resumed run),
  // checks that its header is the same and appends; a different header is an
  // xgrad::file_error naming the file and both headers.
  CsvLog(std::string path, const std::vector<std::string>& columns);

  // Writes and flushes one row; a row with a different number of fields than there are
  // columns is std::invalid_argument, a failed write xgrad::file_error.
  void append(const std::vector<CsvCell>& row);

  const std::string& path() const noexcept { return path_; }
  std::size_t column_count() const noexcept { return column_count_; }

 private:
  std::string path_;
  std::size_t column_count_ = 0;
  std::ofstream out_;
};

}  // namespace xgrad::training
