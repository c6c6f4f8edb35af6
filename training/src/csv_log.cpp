#include "xgrad/training/csv_log.h"

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "xgrad/framework/errors.h"

namespace xgrad::training {
namespace {

std::string joined_row(const std::vector<CsvCell>& cells) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) line += ',';
    line += cells[i].text();
  }
  return line;
}

struct ExistingLog {
  std::string header;
  bool ends_with_newline = true;
};

// The header and the ending of a log that is already there (nullopt for none, or an empty file).
std::optional<ExistingLog> read_existing(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (std::filesystem::exists(path)) throw file_error(detail::message(path, ": cannot open the existing log for reading"));
    return std::nullopt;
  }
  ExistingLog existing;
  if (!std::getline(in, existing.header)) return std::nullopt;
  if (!existing.header.empty() && existing.header.back() == '\r') existing.header.pop_back();
  in.clear();
  in.seekg(-1, std::ios::end);
  char last = '\n';
  in.get(last);
  existing.ends_with_newline = last == '\n';
  return existing;
}

}  // namespace

CsvCell::CsvCell(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  text_ = text;
}

CsvCell::CsvCell(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    text_ = text;
    return;
  }
  text_.push_back('"');
  for (const char c : text) {
    if (c == '"') text_ += '"';
    text_ += c;
  }
  text_ += '"';
}

CsvLog::CsvLog(std::string path, const std::vector<std::string>& columns) : path_(std::move(path)), column_count_(columns.size()) {
  if (columns.empty()) throw std::invalid_argument(detail::message("CsvLog ", path_, ": there must be at least one column"));
  const std::string header = joined_row(std::vector<CsvCell>(columns.begin(), columns.end()));
  const std::optional<ExistingLog> existing = read_existing(path_);
  if (existing && existing->header != header) {
    throw file_error(detail::message(path_, ": the log's header is '", existing->header, "' but this run writes '", header,
                                     "'; use another output directory or move the old log away"));
  }
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw file_error(detail::message(path_, ": cannot open the log for writing"));
  if (!existing) {
    out_ << header << '\n';
  } else if (!existing->ends_with_newline) {
    out_ << '\n';  // a crash cut the last row short; the next row starts on its own line
  }
  out_.flush();
  if (!out_) throw file_error(detail::message(path_, ": writing the header failed"));
}

void CsvLog::append(const std::vector<CsvCell>& row) {
  if (row.size() != column_count_) {
    throw std::invalid_argument(detail::message("CsvLog ", path_, ": a row of ", row.size(), " fields for ", column_count_,
                                                " columns"));
  }
  out_ << joined_row(row) << '\n';
  out_.flush();
  if (!out_) throw file_error(detail::message(path_, ": writing a row failed"));
}

}  // namespace xgrad::training
