#pragma once
// Text normalisation: how raw text becomes the tokens a vocabulary holds, and how tokens
// become text again. A vocabulary records the rule its tokens were normalised with
// (vocabulary.h), and applies it to every sentence it counts or encodes, so that a saved
// model reads its input exactly as at training time.
//
// A rule takes a line as a user writes it to the "corpus form" of its training data: tokens
// separated by single spaces. Applied to text already in that form it changes nothing (it is
// a fixed point there, or nearly: test_user_text measures it on the corpora), so corpora
// already split into tokens and raw lines give the same tokens. A rule's name stands for one
// mapping forever: a model saved with it must read text the same way in every later build,
// so a different mapping is a new rule with a new version.

#include <string>
#include <string_view>

#include "xgrad/models/corpus.h"

namespace xgrad::models {

enum class TextNormalization {
  // Lower-cases ASCII and the upper-case Latin-1 letters of UTF-8 text (Ä -> ä) token by
  // token, and does nothing else: text must come already tokenised as Multi30K, SST-2 and
  // TREC are. Its output cannot be turned back into ordinary text.
  lowercase_latin1_v1,
  // Raw text as Multi30K's *.lc.norm.tok.* files were made from it with the Moses scripts, in
  // English or German (the languages differ in apostrophes and abbreviations):
  //   1. Moses' XML escapes (&amp; &#124; &lt; &gt; &apos; &quot; &#91; &#93;) read back, so
  //      that corpus-form text is a fixed point;
  //   2. Unicode NFKC (ICU's), not NFC: users' text comes with full-width letters, ligatures
  //      (ﬁ), "…", no-break and other compatibility spaces, superscript digits, which NFKC
  //      folds to the plain characters the corpus has, and SentencePiece's default
  //      normalisation is NFKC too;
  //   3. normalize-punctuation.perl's quotes and dashes („“”«»‚ and ‘’ outside words to ",
  //      ‘’´ inside words to ', – to -, — to " - ", '' to "), and where a period or comma
  //      goes beside a closing quote (inside in English, outside in German);
  //   4. tokenizer.perl (not its aggressive hyphen splitting, as the corpus): every character
  //      but letters, digits and . ' ` , - stands alone; "..." stands alone; commas stand
  //      alone but between digits ("1,000" and "3.5" stay whole); English keeps "'s", "'t",
  //      "'re" ... on the word after the apostrophe ("dog 's", "don 't"), German splits every
  //      apostrophe off; a final period stands alone but after an abbreviation ("Mr.", "z.B.",
  //      "U.S.", an initial "F.", a German ordinal "3."), or before a lower-case word, or at
  //      the end of the line;
  //      URLs (http://, https://, www.) stay whole;
  //   5. lower case (Python's str.lower, python_text.h), after tokenising, whose decisions
  //      depend on case ("Wiese. Zwei" ends a sentence, "Mr. Smith" does not);
  //   6. Moses' escapes again.
  // Where tokenizer.perl is not a fixed point on its own output the rule keeps the corpus
  // form: an English clitic after a space ("'s") stays whole. The inverse (ordinary_text)
  // detokenises as detokenizer.perl does and capitalises the first letter.
  moses_lowercase_en_v1,
  moses_lowercase_de_v1,
  // English raw text as SST-2 and TREC are tokenised, with the Penn Treebank's conventions:
  // moses_lowercase_en_v1 without the escapes (steps 1 and 6), with "n't" split off as its
  // own token ("does n't") besides "'s", "'m", "'d", "'ll", "'re", "'ve" ("it 's"); double
  // quotes as `` where they open and '' where they close, single ones as ` and '; — as --.
  // An apostrophe inside a word ("o'fallon"), before a number ("'70s") or in "'em" and
  // "'n'" stays.
  penn_lowercase_en_v1,
};

// The rule of model directories written before rules were recorded.
inline constexpr TextNormalization unrecorded_text_normalization = TextNormalization::lowercase_latin1_v1;

// Names as saved beside a model ("lowercase-latin1-v1", "moses-lowercase-en-v1",
// "moses-lowercase-de-v1", "penn-lowercase-en-v1").
std::string to_string(TextNormalization rule);
// std::invalid_argument naming the name and listing the known rules.
TextNormalization text_normalization_from_string(std::string_view name);

// The Moses rule for a language code: "en" or "de"; std::invalid_argument naming the code
// and the languages there are rules for.
TextNormalization moses_rule(std::string_view language);

// `text` with `rule` applied: its corpus form. Text that is not UTF-8 is std::invalid_argument
// naming the function and the byte offset (the Moses rules; lowercase_latin1_v1 maps bytes).
std::string normalised(std::string_view text, TextNormalization rule);
// The tokens of a raw line: normalised, then split at white space.
Tokens normalised_tokens(std::string_view line, TextNormalization rule);
// The tokens of a sentence already split at white space (a corpus line): those of the line
// its tokens make.
Tokens normalised_tokens(const Tokens& sentence, TextNormalization rule);

// Whether `rule` knows how to turn its tokens back into ordinary text (all but lowercase_latin1_v1).
bool restores_ordinary_text(TextNormalization rule);
// The inverse for output: corpus-form tokens as ordinary text ("a dog 's ball ." -> "A dog's
// ball."): escapes read back, detokenised as Moses' detokenizer.perl does (no space before
// . , ? ! : ; ) or a clitic, none after ( or a currency sign, quotes paired), and the first
// letter capitalised, because the corpus was lower-cased; a recaser that does only that
// (names stay lower case). Rules that cannot restore text join the tokens with single spaces.
std::string ordinary_text(const Tokens& tokens, TextNormalization rule);

}  // namespace xgrad::models
