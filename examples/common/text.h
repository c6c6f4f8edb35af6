#pragma once
// Reading the lines a user types, and choosing how a new model prepares its text.

#include <cstddef>
#include <string>
#include <vector>

#include <xgrad/models/text.h>

#include "cli.h"

namespace xgrad::cli {

// The tokens of line `line_number` of standard input under `rule` (the model's vocabulary's);
// a file_error naming <stdin>:line when it is not UTF-8 or has more than `max_length` tokens
// (--max-length).
models::Tokens standard_input_tokens(const std::string& line, std::size_t line_number, std::size_t max_length,
                                     models::TextNormalization rule);

// --tokenizer, as fairseq names it: "moses" reads raw text as the Multi30K files were made
// from it (models::moses_rule of the language: Moses punctuation and tokens, NFKC, lower case,
// escapes); "penn" reads raw English as SST-2 and TREC are tokenised (penn-lowercase-en-v1:
// "does n't", `` and ''); both write detokenised text. "space" reads text already tokenised,
// split at spaces and lower-cased (lowercase-latin1-v1, what models before the option read).
// Declares it on a train command, with the choices the program offers, the first the default.
void declare_tokenizer_flag(Command& command, std::string& tokenizer, const std::vector<std::string>& choices);
// The rule --tokenizer gives for text in `language` ("en" or "de"; penn reads English alone).
models::TextNormalization text_rule(const std::string& tokenizer, const std::string& language);

}  // namespace xgrad::cli
