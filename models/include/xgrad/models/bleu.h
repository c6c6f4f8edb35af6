#pragma once
// Corpus BLEU-4 (Papineni et al. 2002) computed exactly as sacreBLEU computes it on text
// that is already tokenised: sacrebleu.corpus_bleu(hypotheses, [references],
// tokenize="none") with its defaults (one reference, case-sensitive, smooth_method="exp").

#include <array>
#include <cstddef>
#include <string>
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

// hypotheses[i] is scored against references[i]; different counts are std::invalid_argument.
// Precisions with no match are smoothed as 100 / (2^k * total) for the k-th such order
// (sacreBLEU's "exp"); with no match at any order the score and all precisions are 0.
BleuScore corpus_bleu(const std::vector<Tokens>& hypotheses, const std::vector<Tokens>& references);

}  // namespace xgrad::models
