#pragma once
// Turning a line a user typed into the tokens the corpora use.

#include <string>

#include <xgrad/models/corpus.h>

namespace xgrad::cli {

// Lower-cases ASCII and the Latin-1 letters of UTF-8 text (Ä -> ä), as the corpora were
// prepared, and splits it at white space.
models::Tokens normalised_tokens(const std::string& line);

}  // namespace xgrad::cli
