#include "xgrad/models/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "xgrad/framework/errors.h"

namespace xgrad::models {
namespace {

// An n-gram of token ids; the unused tail holds `unused`, so n-grams of different orders
// never compare equal.
using Ngram = std::array<std::uint32_t, bleu_max_order>;
constexpr std::uint32_t unused = std::numeric_limits<std::uint32_t>::max();

std::size_t order_of(const Ngram& ngram) {
  return static_cast<std::size_t>(std::find(ngram.begin(), ngram.end(), unused) - ngram.begin());
}

class NgramExtractor {
 public:
  // Every n-gram of orders 1..4 of `tokens`, sorted, so that matching is a merge.
  std::vector<Ngram> sorted_ngrams(const Tokens& tokens) {
    std::vector<std::uint32_t> ids;
    ids.reserve(tokens.size());
    for (const std::string& token : tokens) {
      ids.push_back(ids_.try_emplace(token, static_cast<std::uint32_t>(ids_.size())).first->second);
    }
    std::vector<Ngram> ngrams;
    for (std::size_t n = 1; n <= bleu_max_order; ++n) {
      for (std::size_t start = 0; start + n <= ids.size(); ++start) {
        Ngram ngram;
        ngram.fill(unused);
        std::copy_n(ids.begin() + static_cast<std::ptrdiff_t>(start), n, ngram.begin());
        ngrams.push_back(ngram);
      }
    }
    std::sort(ngrams.begin(), ngrams.end());
    return ngrams;
  }

 private:
  std::unordered_map<std::string_view, std::uint32_t> ids_;
};

// sacreBLEU's my_log: log, with log(0) floored to a large negative number.
double floored_log(double value) { return value == 0.0 ? -9999999999.0 : std::log(value); }

}  // namespace

BleuScore corpus_bleu(const std::vector<Tokens>& hypotheses, const std::vector<Tokens>& references) {
  if (hypotheses.size() != references.size()) {
    throw std::invalid_argument(detail::message("corpus_bleu: ", hypotheses.size(), " hypotheses but ", references.size(),
                                                " references; each hypothesis needs one reference"));
  }
  BleuScore result;
  NgramExtractor extractor;
  for (std::size_t i = 0; i < hypotheses.size(); ++i) {
    result.hypothesis_length += hypotheses[i].size();
    result.reference_length += references[i].size();
    const std::vector<Ngram> hypothesis = extractor.sorted_ngrams(hypotheses[i]);
    const std::vector<Ngram> reference = extractor.sorted_ngrams(references[i]);
    for (const Ngram& ngram : hypothesis) ++result.totals[order_of(ngram) - 1];
    // The multiset intersection counts each n-gram min(hypothesis count, reference count) times.
    auto h = hypothesis.begin();
    auto r = reference.begin();
    while (h != hypothesis.end() && r != reference.end()) {
      if (*h < *r) {
        ++h;
      } else if (*r < *h) {
        ++r;
      } else {
        ++result.matches[order_of(*h) - 1];
        ++h;
        ++r;
      }
    }
  }

  const double hypothesis_length = static_cast<double>(result.hypothesis_length);
  const double reference_length = static_cast<double>(result.reference_length);
  result.length_ratio = result.reference_length > 0 ? hypothesis_length / reference_length : 0.0;
  result.brevity_penalty = 1.0;
  if (result.hypothesis_length < result.reference_length) {
    result.brevity_penalty = result.hypothesis_length > 0 ? std::exp(1.0 - reference_length / hypothesis_length) : 0.0;
  }
  if (std::all_of(result.matches.begin(), result.matches.end(), [](std::size_t m) { return m == 0; })) return result;

  // The arithmetic follows sacreBLEU's compute_bleu step by step, so the doubles agree.
  double smoothing = 1.0;
  for (std::size_t n = 0; n < bleu_max_order; ++n) {
    if (result.totals[n] == 0) break;
    const double total = static_cast<double>(result.totals[n]);
    if (result.matches[n] == 0) {
      smoothing *= 2.0;
      result.precisions[n] = 100.0 / (smoothing * total);
    } else {
      result.precisions[n] = 100.0 * static_cast<double>(result.matches[n]) / total;
    }
  }
  double log_sum = 0.0;
  for (const double precision : result.precisions) log_sum += floored_log(precision);
  result.score = result.brevity_penalty * std::exp(log_sum / static_cast<double>(bleu_max_order));
  return result;
}

std::string BleuScore::to_string() const {
  char line[256];
  std::snprintf(line, sizeof line, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %zu ref_len = %zu)", score,
                precisions[0], precisions[1], precisions[2], precisions[3], brevity_penalty, length_ratio, hypothesis_length,
                reference_length);
  return line;
}

}  // namespace xgrad::models
