#pragma once
// chrF (Popović 2015) and chrF++ (Popović 2017), computed exactly as sacreBLEU 2 computes
// them with one reference: sacrebleu.corpus_chrf(hypotheses, [references]) with its
// defaults, character n-grams up to 6 on the text without whitespace, counted in Unicode
// characters (not bytes), beta 2, and sacreBLEU's "effective order": an order that neither
// side has is left out of the averages (its eps_smoothing=False, "eff:yes").

#include <cstddef>
#include <string>
#include <vector>

namespace xgrad::models {

struct ChrfOptions {
  std::size_t char_order = 6;  // character n-grams 1..char_order
  std::size_t word_order = 0;  // word n-grams 1..word_order; 2 makes chrF++
  std::size_t beta = 2;        // recall weighs beta times as much as precision
  bool lowercase = false;      // Python's str.lower() on both sides first (python_text.h)
};

// The n-grams of one order, summed over the corpus.
struct ChrfCounts {
  std::size_t hypothesis = 0;  // hypothesis n-grams (of sentences whose reference has any)
  std::size_t reference = 0;   // reference n-grams
  std::size_t matches = 0;     // min(hypothesis, reference) count of each n-gram
};

struct ChrfScore {
  double score = 0.0;               // 0..100
  std::vector<ChrfCounts> counts;   // character orders 1..char_order, then word orders 1..word_order
};

// hypotheses[i] is scored against references[i]. Different counts, or a line that is not
// UTF-8, are std::invalid_argument naming the function (and the line).
ChrfScore corpus_chrf(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                      const ChrfOptions& options = {});

// The signature sacreBLEU prints with the score:
// "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:xgrad-0.1.0".
std::string chrf_signature(const ChrfOptions& options);
// sacreBLEU's text output: "chrF2|<signature> = 52.34" ("chrF2++|..." with word order 2).
std::string to_string(const ChrfScore& score, const ChrfOptions& options);

}  // namespace xgrad::models
