#pragma once
// Text normalisation: how raw text becomes the tokens a vocabulary holds. A vocabulary records
// the rule its tokens were normalised with (vocabulary.h), and applies it to every token it
// counts or encodes, so that a saved model reads its input exactly as at training time.
//
// Every rule maps each whitespace-separated token on its own and never makes or removes
// whitespace, so corpora already split into tokens and raw lines give the same tokens. A
// rule's name stands for one mapping forever: a model saved with it must read text the same
// way in every later build, so a different mapping is a new rule with a new version.

#include <string>
#include <string_view>

#include "xgrad/models/corpus.h"

namespace xgrad::models {

enum class TextNormalization {
  // Lower-cases ASCII and the upper-case Latin-1 letters of UTF-8 text (Ä -> ä), as Multi30K,
  // SST-2 and TREC were prepared.
  lowercase_latin1_v1,
};

// The rule of model directories written before rules were recorded.
inline constexpr TextNormalization unrecorded_text_normalization = TextNormalization::lowercase_latin1_v1;

// Names as saved beside a model ("lowercase-latin1-v1").
std::string to_string(TextNormalization rule);
// std::invalid_argument naming the name and listing the known rules.
TextNormalization text_normalization_from_string(std::string_view name);

// `text` with `rule` applied.
std::string normalised(std::string_view text, TextNormalization rule);
// The tokens of a raw line: normalised, then split at white space.
Tokens normalised_tokens(std::string_view line, TextNormalization rule);

}  // namespace xgrad::models
