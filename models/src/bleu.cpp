#include "xgrad/models/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "sacrebleu_conventions.h"
#include "xgrad/framework/errors.h"
#include "xgrad/models/python_text.h"

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

// Python's str.replace: every non-overlapping occurrence, left to right.
void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The ASCII symbols tokenizer_re.py's first rule splits off, its class
// [\{-\~\[-\` -\&\(-\+\:-\@\/]: all ASCII punctuation but the apostrophe, comma, hyphen and
// period (and the space, which it pads harmlessly).
bool is_split_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= '!' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}

// One pass of Python's re.sub with a two-character pattern `first second` whose replacement
// puts spaces where `pad` says, scanning left to right and resuming after each match.
// Working on bytes gives the same text as Python's code points: the patterns' classes are
// ASCII or "not an ASCII digit", and a multi-byte character's bytes are all "not a digit"
// and never "." or ",", so a match can neither start nor end inside one differently.
template <typename First, typename Second>
std::string substitute_pairs(const std::string& text, First first, Second second, const char* pad) {
  std::string out;
  out.reserve(text.size() + text.size() / 2);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i + 1 < text.size() && first(text[i]) && second(text[i + 1])) {
      for (const char* p = pad; *p != '\0'; ++p) out.push_back(*p == '1' ? text[i] : *p == '2' ? text[i + 1] : *p);
      ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

std::string to_string(BleuTokenizer tokenizer) {
  switch (tokenizer) {
    case BleuTokenizer::none:
      return "none";
    case BleuTokenizer::mteval_13a:
      return "13a";
  }
  throw std::invalid_argument("to_string: unnamed BleuTokenizer");
}

std::string tokenize_13a(std::string_view line) {
  std::string text(line);
  replace_all(text, "<skipped>", "");
  replace_all(text, "-\n", "");
  replace_all(text, "\n", " ");
  replace_all(text, "&quot;", "\"");
  replace_all(text, "&amp;", "&");
  replace_all(text, "&lt;", "<");
  replace_all(text, "&gt;", ">");

  std::string padded = " ";
  for (const char c : text) {
    if (is_split_symbol(c)) {
      padded.append({' ', c, ' '});
    } else {
      padded.push_back(c);
    }
  }
  padded.push_back(' ');
  const auto not_digit = [](char c) { return !is_digit(c); };
  const auto period_or_comma = [](char c) { return c == '.' || c == ','; };
  // The patterns in tokenizer_re.py's order: ([^0-9])([\.,]) -> "\1 \2 ", ([\.,])([^0-9]) ->
  // " \1 \2", ([0-9])(-) -> "\1 \2 ".
  padded = substitute_pairs(padded, not_digit, period_or_comma, "1 2 ");
  padded = substitute_pairs(padded, period_or_comma, not_digit, " 1 2");
  padded = substitute_pairs(padded, is_digit, [](char c) { return c == '-'; }, "1 2 ");
  return python_collapse_whitespace(padded);
}

Tokens bleu_tokens(std::string_view line, const BleuOptions& options) {
  std::string text = options.lowercase ? python_lower(line) : std::string(line);
  text = python_rstrip(text);
  if (options.tokenize == BleuTokenizer::mteval_13a) text = tokenize_13a(text);
  return python_split(text);
}

BleuScore corpus_bleu(const std::vector<Tokens>& hypotheses, const std::vector<Tokens>& references) {
  require_same_count("corpus_bleu", hypotheses.size(), references.size());
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

BleuScore corpus_bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references,
                      const BleuOptions& options) {
  require_same_count("corpus_bleu", hypotheses.size(), references.size());
  require_utf8_lines("corpus_bleu", hypotheses, references);
  std::vector<Tokens> hypothesis_tokens, reference_tokens;
  for (const std::string& line : hypotheses) hypothesis_tokens.push_back(bleu_tokens(line, options));
  for (const std::string& line : references) reference_tokens.push_back(bleu_tokens(line, options));
  return corpus_bleu(hypothesis_tokens, reference_tokens);
}

// sacreBLEU puts its own version here, because a metric's numbers are only as comparable as
// the implementations that computed them. These numbers are xgrad's, so the field names
// xgrad and its version: writing a sacreBLEU version would claim sacreBLEU computed them.
// That they agree with sacreBLEU 2.6.0 is what test_sacrebleu checks against its fixtures.
std::string signature_version() { return "xgrad-" XGRAD_VERSION; }

std::string bleu_signature(const BleuOptions& options) {
  return "nrefs:1|case:" + signature_case(options.lowercase) + "|eff:no|tok:" + to_string(options.tokenize) +
         "|smooth:exp|version:" + signature_version();
}

std::string to_string(const BleuScore& score, const BleuOptions& options) {
  const std::string line = score.to_string();  // "BLEU = ..."
  const std::size_t name = std::string_view("BLEU").size();
  return line.substr(0, name) + '|' + bleu_signature(options) + line.substr(name);
}

std::string BleuScore::to_string() const {
  char line[256];
  std::snprintf(line, sizeof line, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %zu ref_len = %zu)", score,
                precisions[0], precisions[1], precisions[2], precisions[3], brevity_penalty, length_ratio, hypothesis_length,
                reference_length);
  return line;
}

}  // namespace xgrad::models
