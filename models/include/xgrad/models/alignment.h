#pragma once
// Word alignments read off a translation's attention: for each output word, the source word
// its decoding step attended to most (hard alignments, in the Pharaoh "i-j" format of Moses
// and fast_align) or the whole attention row (soft ones); and <unk> replaced by that source
// word (Luong et al. 2015), which recovers names and numbers a word vocabulary does not hold.

#include <cstddef>
#include <string>
#include <vector>

#include "xgrad/models/search.h"
#include "xgrad/models/vocabulary.h"

namespace xgrad::models {

// A translation token by token: its words (Vocabulary::held_tokens with drop_specials, so
// <unk> stays), or with a subword vocabulary its pieces ("▁hund" "e": alignments are then
// between pieces, as Marian's are), and, for each, the decoding step, that is the row of
// Translation::attention, that produced it.
struct TranslatedWords {
  Tokens words;
  std::vector<std::size_t> steps;
};
TranslatedWords translated_words(const Translation& translation, const Vocabulary& target);

// For each word, the source position its step attended to most (the first of equal weights).
std::vector<std::size_t> most_attended_sources(const Translation& translation, const TranslatedWords& words);

// "0-0 2-1 1-2": source position - word position, for each word in order.
std::string pharaoh_alignment(const std::vector<std::size_t>& sources);

// One group per word, its step's attention over the source positions, comma-separated, with
// three decimals ("0.912,0.088 0.200,0.800"), as Marian's soft alignments.
std::string soft_alignment(const Translation& translation, const TranslatedWords& words);

// The words with each <unk> replaced by the source word at its most attended position
// (sources, from most_attended_sources over the same words).
Tokens replace_unknown_words(const TranslatedWords& words, const std::vector<std::size_t>& sources,
                             const Tokens& source_words);

}  // namespace xgrad::models
