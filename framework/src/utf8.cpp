#include "xgrad/framework/utf8.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "xgrad/framework/errors.h"

namespace xgrad {
namespace {

// "0xC3": how messages show a byte that is not UTF-8 (printing the byte itself would not be).
std::string hex_byte(char byte) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(byte)));
  return text;
}

}  // namespace

std::optional<std::size_t> invalid_utf8_offset(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  std::size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = byte(i);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // The allowed range of the second byte narrows for E0, ED, F0 and F4 (Unicode table 3-7):
    // that excludes overlong forms, surrogates and code points past U+10FFFF.
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return i;
    }
    if (i + 1 >= text.size() || byte(i + 1) < low || byte(i + 1) > high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if (i + k >= text.size() || byte(i + k) < 0x80 || byte(i + k) > 0xBF) return i;
    }
    i += length;
  }
  return std::nullopt;
}

void require_utf8(std::string_view text, const std::string& label, std::size_t first_line) {
  const std::optional<std::size_t> offset = invalid_utf8_offset(text);
  if (!offset) return;
  const std::string_view before = text.substr(0, *offset);
  const std::size_t line = first_line + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  const std::size_t line_start = before.rfind('\n') == std::string_view::npos ? 0 : before.rfind('\n') + 1;
  throw file_error(detail::message(label, ":", line, ":", *offset - line_start + 1, ": invalid UTF-8 (byte ",
                                   hex_byte(text[*offset]), "); text inputs must be UTF-8"));
}

std::u32string decode_utf8(std::string_view text) {
  if (const std::optional<std::size_t> offset = invalid_utf8_offset(text)) {
    throw std::invalid_argument(
        detail::message("decode_utf8: the text is not UTF-8 at byte ", *offset, " (", hex_byte(text[*offset]), ")"));
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

void append_utf8(std::string& out, char32_t code_point) {
  if (code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
    char name[16];
    std::snprintf(name, sizeof name, "U+%04X", static_cast<unsigned>(code_point));
    throw std::invalid_argument(detail::message("append_utf8: ", name, " is not a Unicode scalar value"));
  }
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

}  // namespace xgrad
