#pragma once
// The text preparation of the Moses scripts that made the Multi30K corpus files
// (normalize-punctuation.perl, tokenizer.perl, and the inverse, detokenizer.perl), as the
// rules of text.h need them: raw text to the corpus form and back. Private to text.cpp,
// which names the rules and says what each promises.

#include <string>
#include <string_view>

#include "xgrad/models/corpus.h"

namespace xgrad::models::moses {

// Where tokenizer.perl and detokenizer.perl treat the languages differently: the apostrophe
// (English keeps "'s" and "'t" on the following word; the other languages split every
// apostrophe off) and the abbreviations whose period is kept.
enum class Language { english, german };
// How the tokens are written: as Moses' tokenizer.perl writes them (Multi30K: "doesn 't",
// the escapes &apos; &quot; ...), or with the Penn Treebank's conventions (SST-2 and TREC:
// "does n't", `` and '' for quotes, -- for dashes, no escapes).
enum class Style { moses, penn };

// A raw line as the corpus files hold it: Moses' escapes read back, NFKC, Moses'
// punctuation normalisation, Moses' tokenisation, lower case, Moses' escapes (the Penn
// style: without the escapes, with its own quotes and apostrophes); tokens joined by single
// spaces. std::invalid_argument naming the byte when it is not UTF-8.
std::string corpus_form(std::string_view line, Language language, Style style);

// The inverse for output: the tokens of a corpus-form line as ordinary text (escapes read
// back, detokenised as detokenizer.perl does, its first letter capitalised).
std::string ordinary_text(const Tokens& tokens, Language language, Style style);

}  // namespace xgrad::models::moses
