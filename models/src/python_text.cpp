#include "xgrad/models/python_text.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include <cstdio>
#include <optional>
#include <stdexcept>

#include "python_case_tables.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/utf8.h"

namespace xgrad::models {
namespace {

// The code points of `text`, or std::invalid_argument naming `function` and the first byte
// that is not part of a well-formed UTF-8 sequence.
std::u32string decode_utf8(std::string_view text, const char* function) {
  if (const std::optional<std::size_t> offset = invalid_utf8_offset(text)) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[*offset])));
    throw std::invalid_argument(detail::message(function, ": the text is not UTF-8 at byte ", *offset, " (", byte, ")"));
  }
  std::u32string code_points;
  code_points.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    // Well-formed (checked above): the lead byte gives the length and its payload bits.
    const std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    char32_t code_point = length == 1 ? lead : lead & (0x7F >> length);
    for (std::size_t k = 1; k < length; ++k) code_point = (code_point << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    code_points.push_back(code_point);
    i += length;
  }
  return code_points;
}

// Appends a code point that decode_utf8 produced, or a case mapping of one (always a Unicode
// scalar value), as UTF-8.
void append_utf8(std::string& out, char32_t code_point) {
  const auto byte = [&](char32_t bits) { out.push_back(static_cast<char>(bits)); };
  if (code_point < 0x80) {
    byte(code_point);
  } else if (code_point < 0x800) {
    byte(0xC0 | (code_point >> 6));
    byte(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    byte(0xE0 | (code_point >> 12));
    byte(0x80 | ((code_point >> 6) & 0x3F));
    byte(0x80 | (code_point & 0x3F));
  } else {
    byte(0xF0 | (code_point >> 18));
    byte(0x80 | ((code_point >> 12) & 0x3F));
    byte(0x80 | ((code_point >> 6) & 0x3F));
    byte(0x80 | (code_point & 0x3F));
  }
}

constexpr char32_t capital_sigma = 0x3A3, small_sigma = 0x3C3, final_sigma = 0x3C2;
constexpr char32_t capital_i_with_dot = 0x130, combining_dot_above = 0x307;

bool in_ranges(char32_t code_point, const auto& ranges) {
  // The last range starting at or before the code point is the only one that can hold it.
  auto after = std::upper_bound(ranges.begin(), ranges.end(), code_point,
                                [](char32_t c, const python_case::Range& range) { return c < range.first; });
  return after != ranges.begin() && code_point <= std::prev(after)->last;
}

// The one-code-point lower case (the code point itself when it has none).
char32_t simple_lower(char32_t code_point) {
  const auto& runs = python_case::lowercase_runs;
  auto after = std::upper_bound(runs.begin(), runs.end(), code_point,
                                [](char32_t c, const python_case::LowercaseRun& run) { return c < run.first; });
  if (after == runs.begin()) return code_point;
  const python_case::LowercaseRun& run = *std::prev(after);
  if (code_point > run.last || (code_point - run.first) % run.stride != 0) return code_point;
  return static_cast<char32_t>(static_cast<std::int64_t>(code_point) + run.offset);
}

// CPython's handle_capital_sigma: final when a cased letter precedes the sigma and none
// follows it, looking past case-ignorable code points (apostrophes, combining marks) both ways.
bool ends_a_word(const std::u32string& text, std::size_t sigma) {
  const auto is_ignorable = [](char32_t c) { return in_ranges(c, python_case::case_ignorable); };
  std::size_t before = sigma;
  while (before > 0 && is_ignorable(text[before - 1])) --before;
  if (before == 0 || !in_ranges(text[before - 1], python_case::cased)) return false;
  std::size_t after = sigma + 1;
  while (after < text.size() && is_ignorable(text[after])) ++after;
  return after == text.size() || !in_ranges(text[after], python_case::cased);
}

}  // namespace

bool is_python_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::u32string python_characters(std::string_view text) { return decode_utf8(text, "python_characters"); }

Tokens python_split(std::string_view text) {
  Tokens tokens;
  bool in_token = false;
  for (const char32_t c : decode_utf8(text, "python_split")) {
    if (is_python_whitespace(c)) {
      in_token = false;
      continue;
    }
    if (!in_token) tokens.emplace_back();
    append_utf8(tokens.back(), c);
    in_token = true;
  }
  return tokens;
}

std::string python_collapse_whitespace(std::string_view text) { return join_tokens(python_split(text)); }

std::string python_rstrip(std::string_view text) {
  std::u32string code_points = decode_utf8(text, "python_rstrip");
  while (!code_points.empty() && is_python_whitespace(code_points.back())) code_points.pop_back();
  std::string stripped;
  for (const char32_t c : code_points) append_utf8(stripped, c);
  return stripped;
}

std::string python_lower(std::string_view text) {
  const std::u32string code_points = decode_utf8(text, "python_lower");
  std::string lowered;
  lowered.reserve(text.size());
  for (std::size_t i = 0; i < code_points.size(); ++i) {
    const char32_t c = code_points[i];
    if (c == capital_i_with_dot) {
      append_utf8(lowered, U'i');
      append_utf8(lowered, combining_dot_above);
    } else if (c == capital_sigma) {
      append_utf8(lowered, ends_a_word(code_points, i) ? final_sigma : small_sigma);
    } else {
      append_utf8(lowered, simple_lower(c));
    }
  }
  return lowered;
}

}  // namespace xgrad::models
