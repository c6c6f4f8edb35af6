#pragma once
// Text inputs (corpora, JSON files, standard input) must be UTF-8: what is not is refused
// where it is read, with the file, line and column, rather than failing later inside a JSON
// writer or parser with a message about its internals.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace xgrad {

// The byte offset of the first byte that is not part of a well-formed UTF-8 sequence
// (overlong forms, surrogates and code points above U+10FFFF are ill-formed, as for
// Python's decoder and JSON parsers); nullopt when all of `text` is UTF-8.
std::optional<std::size_t> invalid_utf8_offset(std::string_view text);

// A file_error "label:line:column: invalid UTF-8 (byte 0xNN)" for the first ill-formed byte
// of `text`, whose first line is line `first_line` of the file labelled `label`.
void require_utf8(std::string_view text, const std::string& label, std::size_t first_line = 1);

}  // namespace xgrad
