#include "xgrad/models/chrf.h"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string_view>
#include <unordered_map>

#include "sacrebleu_conventions.h"
#include "xgrad/models/corpus.h"
#include "xgrad/models/python_text.h"

namespace xgrad::models {
namespace {

template <typename Ngram>
using NgramCounts = std::unordered_map<Ngram, std::size_t>;

// Python's string.punctuation, which sacreBLEU's _remove_punctuation splits off words.
bool is_ascii_punctuation(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') || (c >= '{' && c <= '~');
}

// sacreBLEU's _remove_punctuation (after Popović's chrF++.py): a word of more than one
// character loses one punctuation character, the last if it is one, else the first, which
// becomes a word of its own. Looking at bytes is looking at characters here: a word's first or
// last byte is ASCII punctuation only if that whole character is, and a one-character word
// that takes several bytes has no ASCII punctuation to split off.
Tokens chrf_words(std::string_view text) {
  Tokens words;
  for (std::string& word : python_split(text)) {
    if (word.size() > 1 && is_ascii_punctuation(word.back())) {
      const char last = word.back();
      word.pop_back();
      words.push_back(std::move(word));
      words.emplace_back(1, last);
    } else if (word.size() > 1 && is_ascii_punctuation(word.front())) {
      words.emplace_back(1, word.front());
      words.push_back(word.substr(1));
    } else {
      words.push_back(std::move(word));
    }
  }
  return words;
}

// The characters of `text` without its whitespace (sacreBLEU's "".join(line.split())).
std::u32string characters_without_whitespace(std::string_view text) {
  std::u32string characters = python_characters(text);
  std::erase_if(characters, is_python_whitespace);
  return characters;
}

NgramCounts<std::u32string_view> character_ngrams(const std::u32string& characters, std::size_t n) {
  NgramCounts<std::u32string_view> counts;
  for (std::size_t start = 0; start + n <= characters.size(); ++start) {
    ++counts[std::u32string_view(characters).substr(start, n)];
  }
  return counts;
}

// Word n-grams keyed by their words joined with spaces, as sacreBLEU keys them (words hold
// no whitespace, so different n-grams never share a key).
NgramCounts<std::string> word_ngrams(const Tokens& words, std::size_t n) {
  NgramCounts<std::string> counts;
  for (std::size_t start = 0; start + n <= words.size(); ++start) {
    ++counts[join_tokens(Tokens(words.begin() + static_cast<std::ptrdiff_t>(start),
                                words.begin() + static_cast<std::ptrdiff_t>(start + n)))];
  }
  return counts;
}

// sacreBLEU's _get_match_statistics: a hypothesis's n-grams count only where the
// reference has n-grams of that order.
template <typename Ngram>
ChrfCounts match(const NgramCounts<Ngram>& hypothesis, const NgramCounts<Ngram>& reference) {
  ChrfCounts counts;
  std::size_t hypothesis_total = 0;
  for (const auto& [ngram, count] : hypothesis) {
    hypothesis_total += count;
    if (const auto found = reference.find(ngram); found != reference.end()) counts.matches += std::min(count, found->second);
  }
  for (const auto& [ngram, count] : reference) counts.reference += count;
  counts.hypothesis = reference.empty() ? 0 : hypothesis_total;
  return counts;
}

// sacreBLEU's _compute_f_score without eps_smoothing, step by step so that the doubles agree:
// precision and recall averaged over the orders both sides have, then their F-beta.
double f_score(const std::vector<ChrfCounts>& counts, std::size_t beta) {
  const double factor = static_cast<double>(beta * beta);
  double precision = 0.0, recall = 0.0;
  std::size_t effective_order = 0;
  for (const ChrfCounts& order : counts) {
    if (order.hypothesis == 0 || order.reference == 0) continue;
    precision += static_cast<double>(order.matches) / static_cast<double>(order.hypothesis);
    recall += static_cast<double>(order.matches) / static_cast<double>(order.reference);
    ++effective_order;
  }
  if (effective_order == 0) return 0.0;
  precision /= static_cast<double>(effective_order);
  recall /= static_cast<double>(effective_order);
  if (precision + recall == 0.0) return 0.0;
  double score = (1.0 + factor) * precision * recall;
  score /= factor * precision + recall;
  return 100.0 * score;
}

}  // namespace

ChrfScore corpus_chrf(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                      const ChrfOptions& options) {
  require_same_count("corpus_chrf", hypotheses.size(), references.size());
  require_utf8_lines("corpus_chrf", hypotheses, references);
  ChrfScore result;
  result.counts.resize(options.char_order + options.word_order);
  const auto add = [&](std::size_t order, const ChrfCounts& sentence) {
    result.counts[order].hypothesis += sentence.hypothesis;
    result.counts[order].reference += sentence.reference;
    result.counts[order].matches += sentence.matches;
  };
  for (std::size_t i = 0; i < hypotheses.size(); ++i) {
    const std::string hypothesis = options.lowercase ? python_lower(hypotheses[i]) : hypotheses[i];
    const std::string reference = options.lowercase ? python_lower(references[i]) : references[i];
    const std::u32string hypothesis_characters = characters_without_whitespace(hypothesis);
    const std::u32string reference_characters = characters_without_whitespace(reference);
    for (std::size_t n = 1; n <= options.char_order; ++n) {
      add(n - 1, match(character_ngrams(hypothesis_characters, n), character_ngrams(reference_characters, n)));
    }
    if (options.word_order == 0) continue;
    const Tokens hypothesis_words = chrf_words(hypothesis), reference_words = chrf_words(reference);
    for (std::size_t n = 1; n <= options.word_order; ++n) {
      add(options.char_order + n - 1, match(word_ngrams(hypothesis_words, n), word_ngrams(reference_words, n)));
    }
  }
  result.score = f_score(result.counts, options.beta);
  return result;
}

std::string chrf_signature(const ChrfOptions& options) {
  return "nrefs:1|case:" + signature_case(options.lowercase) + "|eff:yes|nc:" + std::to_string(options.char_order) +
         "|nw:" + std::to_string(options.word_order) + "|space:no|version:" + signature_version();
}

std::string to_string(const ChrfScore& score, const ChrfOptions& options) {
  char value[32];
  std::snprintf(value, sizeof value, "%.2f", score.score);
  return "chrF" + std::to_string(options.beta) + std::string(options.word_order, '+') + "|" + chrf_signature(options) +
         " = " + value;
}

}  // namespace xgrad::models
