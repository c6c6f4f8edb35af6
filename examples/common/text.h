#pragma once
// Turning a line a user typed into the tokens the corpora use.

#include <cstddef>
#include <string>

#include <xgrad/models/corpus.h>

namespace xgrad::cli {

// Lower-cases ASCII and the Latin-1 letters of UTF-8 text (Ä -> ä), as the corpora were
// prepared, and splits it at white space.
models::Tokens normalised_tokens(const std::string& line);

// The normalised tokens of line `line_number` of standard input; a file_error naming
// <stdin>:line when it is not UTF-8 or has more than `max_length` tokens (--max-length).
models::Tokens standard_input_tokens(const std::string& line, std::size_t line_number, std::size_t max_length);

}  // namespace xgrad::cli
