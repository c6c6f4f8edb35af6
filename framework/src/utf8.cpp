#include "xgrad/framework/utf8.h"

#include <algorithm>
#include <cstdio>

#include "xgrad/framework/errors.h"

namespace xgrad {

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
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(static_cast<unsigned char>(text[*offset])));
  throw file_error(detail::message(label, ":", line, ":", *offset - line_start + 1, ": invalid UTF-8 (byte ", byte,
                                   "); text inputs must be UTF-8"));
}

}  // namespace xgrad
