#pragma once
// Reading the lines a user types.

#include <cstddef>
#include <string>

#include <xgrad/models/text.h>

namespace xgrad::cli {

// The tokens of line `line_number` of standard input under `rule` (the model's vocabulary's);
// a file_error naming <stdin>:line when it is not UTF-8 or has more than `max_length` tokens
// (--max-length).
models::Tokens standard_input_tokens(const std::string& line, std::size_t line_number, std::size_t max_length,
                                     models::TextNormalization rule);

}  // namespace xgrad::cli
