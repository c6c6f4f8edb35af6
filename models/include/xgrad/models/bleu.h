#pragma once
// Corpus BLEU-4 (Papineni et al. 2002) computed exactly as sacreBLEU 2 computes it with one
// reference and smooth_method="exp": sacrebleu.corpus_bleu(hypotheses, [references],
// tokenize=..., lowercase=...) on plain text, with its default tokeniser "13a" or "none"; and
// on tokens already split, as training validates on the vocabulary's tokens.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/models/corpus.h"

namespace xgrad::models {

inline constexpr std::size_t bleu_max_order = 4;

struct BleuScore {
  double score = 0.0;                                 // 0..100
  std::array<double, bleu_max_order> precisions{};    // n-gram precisions in percent (smoothed)
  std::array<std::size_t, bleu_max_order> matches{};  // clipped n-gram matches, n = 1..4
  std::array<std::size_t, bleu_max_order> totals{};   // hypothesis n-grams, n = 1..4
  double brevity_penalty = 0.0;
  double length_ratio = 0.0;  // hypothesis_length / reference_length (0 without reference tokens)
  std::size_t hypothesis_length = 0;
  std::size_t reference_length = 0;

  // sacreBLEU's line without the signature:
  // "BLEU = 27.53 60.1/33.8/20.6/13.0 (BP = 1.000 ratio = 1.012 hyp_len = 12 ref_len = 12)"
  std::string to_string() const;
};

// sacreBLEU's `tokenize` values that xgrad implements.
enum class BleuTokenizer {
  none,        // "none": the text is split at whitespace as it is
  mteval_13a,  // "13a", sacreBLEU's default and what papers report: the rules of WMT's mteval-v13a.pl
};
// The name in the signature: "none", "13a".
std::string to_string(BleuTokenizer tokenizer);

struct BleuOptions {
  BleuTokenizer tokenize = BleuTokenizer::mteval_13a;
  bool lowercase = false;  // Python's str.lower() on both sides first (python_text.h)
};

// sacreBLEU's Tokenizer13a on one line: "<skipped>" and "-\n" removed, other newlines made
// spaces, &quot; &amp; &lt; &gt; unescaped; then ASCII punctuation and symbols split off
// (not the apostrophe, hyphen, period or comma), a period or comma split off unless it stands
// between digits ("1,000.5" stays whole, "end." does not), a hyphen split off after a digit,
// and whitespace collapsed to single spaces. std::invalid_argument for text that is not UTF-8.
std::string tokenize_13a(std::string_view line);

// The tokens BLEU counts for one line as sacreBLEU preprocesses it: lower-cased if asked,
// trailing whitespace stripped, tokenised, split at (Python's) whitespace.
Tokens bleu_tokens(std::string_view line, const BleuOptions& options);

// The signature sacreBLEU prints with the score, naming what decides the number:
// "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:xgrad-0.1.0".
std::string bleu_signature(const BleuOptions& options);
// sacreBLEU's text output: "BLEU|<signature> = 27.53 60.1/33.8/20.6/13.0 (BP = ...)".
std::string to_string(const BleuScore& score, const BleuOptions& options);

// hypotheses[i] is scored against references[i]; different counts are std::invalid_argument.
// Precisions with no match are smoothed as 100 / (2^k * total) for the k-th such order
// (sacreBLEU's "exp"); with no match at any order the score and all precisions are 0.
BleuScore corpus_bleu(const std::vector<Tokens>& hypotheses, const std::vector<Tokens>& references);
// The same on plain text, each line preprocessed by bleu_tokens. A line that is not UTF-8 is
// std::invalid_argument naming the function, the side and the line's index.
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                      const BleuOptions& options);

}  // namespace xgrad::models
