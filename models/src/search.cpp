#include "xgrad/models/search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/reduce.h"

#include "configuration.h"

namespace xgrad::models {
namespace {

const config::KindNames<LengthNormalization> length_normalization_names{
    {LengthNormalization::none, "none"}, {LengthNormalization::average, "avg"}, {LengthNormalization::gnmt, "gnmt"}};

std::size_t decode_limit(std::size_t source_length, const SearchOptions& options) {
  const auto from_source =
      static_cast<std::size_t>(options.max_length_ratio * static_cast<double>(source_length)) + options.max_length_extra;
  return std::max<std::size_t>(1, std::min(from_source, options.max_output_length));
}

// The log-probabilities of a step whose outputs are still shorter than min_output_length:
// <eos> made impossible in every row where another token is possible (a decoder that allows
// only <eos>, as a Transformer at its last position, still ends).
template <class T>
Tensor<T> without_end(const Tensor<T>& log_probs, std::int64_t eos) {
  Array<T> values = log_probs.value();
  const std::size_t vocabulary = values.shape()[1];
  for (std::size_t r = 0; r < values.shape()[0]; ++r) {
    T* row = values.data() + r * vocabulary;
    bool another_possible = false;
    for (std::size_t v = 0; v < vocabulary && !another_possible; ++v) {
      another_possible = static_cast<std::int64_t>(v) != eos && row[v] != -std::numeric_limits<T>::infinity();
    }
    if (another_possible) row[eos] = -std::numeric_limits<T>::infinity();
  }
  return Tensor<T>(std::move(values));
}

// The step's log-probabilities with the minimum output length enforced at position t.
template <class T>
Tensor<T> allowed_log_probs(const DecoderStep<T>& step, std::size_t t, std::int64_t eos, const SearchOptions& options) {
  return t < options.min_output_length ? without_end(step.log_probs, eos) : step.log_probs;
}

std::size_t longest_decode(const PaddedBatch& source, const SearchOptions& options) {
  std::size_t longest = 0;
  for (std::size_t length : source.lengths) longest = std::max(longest, decode_limit(length, options));
  return longest;
}

// The first `length` weights of row `row` of [rows, S] attention weights.
template <class T>
std::vector<float> attention_row(const Array<T>& weights, std::size_t row, std::size_t length) {
  const std::size_t width = weights.shape()[1];
  std::vector<float> values(length);
  for (std::size_t s = 0; s < length; ++s) values[s] = static_cast<float>(weights.data()[row * width + s]);
  return values;
}

Array<float> attention_matrix(const std::vector<std::vector<float>>& rows, std::size_t length) {
  Array<float> matrix = Array<float>::from_shape({rows.size(), length});
  for (std::size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), matrix.data() + i * length);
  return matrix;
}

// One hypothesis per sentence, each step's token chosen by `pick` from the log-probabilities.
template <class T, class Pick>
std::vector<Translation> one_hypothesis_search(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                               const SearchOptions& options, Pick pick) {
  NoGradGuard no_graph;
  const std::unique_ptr<typename StepDecoder<T>::State> state = decoder.begin(source, 1);
  const std::size_t batch = source.lengths.size();
  std::vector<Translation> results(batch);
  std::vector<std::vector<std::vector<float>>> attention(batch);
  std::vector<bool> done(batch, false);
  const std::size_t longest = longest_decode(source, options);
  const std::int64_t eos = decoder.eos_id();
  Indices previous(Shape{batch}, decoder.sos_id());
  for (std::size_t t = 0; t < longest; ++t) {
    const DecoderStep<T> step = decoder.step(previous, *state, t);
    const Tensor<T> log_probs = allowed_log_probs(step, t, eos, options);
    const Indices next = pick(log_probs);
    bool all_done = true;
    for (std::size_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      const std::int64_t token = next(b);
      results[b].score += static_cast<double>(log_probs.value()(b, token));
      attention[b].push_back(attention_row(step.weights.value(), b, source.lengths[b]));
      done[b] = token == eos || t + 1 >= decode_limit(source.lengths[b], options);
      if (token != eos) results[b].tokens.push_back(token);
      previous(b) = token;
      all_done = all_done && done[b];
    }
    if (all_done) break;
  }
  for (std::size_t b = 0; b < batch; ++b) {
    results[b].attention = attention_matrix(attention[b], source.lengths[b]);
    results[b].log_probability = results[b].score;
  }
  return results;
}

}  // namespace

LengthNormalization length_normalization_from_string(const std::string& name) {
  return config::kind_named("length normalisation", name, length_normalization_names);
}

const std::string& to_string(LengthNormalization normalization) {
  return config::name_of(normalization, length_normalization_names);
}

double hypothesis_score(double log_probability, std::size_t tokens, const Array<float>& attention,
                        const SearchOptions& options) {
  const double length = static_cast<double>(tokens + 1), alpha = options.length_penalty;
  double score = log_probability;
  switch (options.length_normalization) {
    case LengthNormalization::none: break;
    case LengthNormalization::average: score /= std::pow(length, alpha); break;
    case LengthNormalization::gnmt: score /= std::pow((5 + length) / (5 + 1), alpha); break;
  }
  if (options.coverage_penalty != 0) {
    const std::size_t steps = attention.shape()[0], positions = attention.shape()[1];
    double penalty = 0;
    for (std::size_t i = 0; i < positions; ++i) {
      double coverage = 0;
      for (std::size_t t = 0; t < steps; ++t) coverage += static_cast<double>(attention.data()[t * positions + i]);
      penalty += std::log(std::clamp(coverage, min_coverage, 1.0));
    }
    score += options.coverage_penalty * penalty;
  }
  return score;
}

template <class T>
std::vector<Translation> greedy_search(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                       const SearchOptions& options) {
  return one_hypothesis_search(decoder, source, options, [](const Tensor<T>& log_probs) { return argmax(log_probs, -1); });
}

template <class T>
std::vector<Translation> sample_search(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                       const SamplingOptions& sampling, Generator& generator,
                                       const SearchOptions& options) {
  return one_hypothesis_search(decoder, source, options, [&](const Tensor<T>& log_probs) {
    return sample_logits(log_probs, sampling, generator);
  });
}

template <class T>
std::vector<std::vector<Translation>> beam_search_n_best(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                                         const SearchOptions& options) {
  const std::size_t width = options.beam_size, vocabulary = decoder.vocabulary_size();
  if (width == 0 || width > vocabulary) {
    throw std::invalid_argument(
        detail::message("beam search: beam size ", width, " must lie in [1, ", vocabulary, "] (the target vocabulary)"));
  }
  if (options.n_best == 0 || options.n_best > width) {
    throw std::invalid_argument(
        detail::message("beam search: n-best ", options.n_best, " must lie in [1, ", width, "] (the beam size)"));
  }
  NoGradGuard no_graph;
  // Row b * width + k holds hypothesis k of sentence b, so every row keeps its sentence.
  const std::unique_ptr<typename StepDecoder<T>::State> state = decoder.begin(source, width);
  const std::size_t batch = source.lengths.size(), rows = batch * width;

  struct Hypothesis {
    std::vector<std::int64_t> tokens;
    std::vector<std::vector<float>> attention;
    double log_prob = -std::numeric_limits<double>::infinity();
  };
  std::vector<Hypothesis> beams(rows);
  for (std::size_t b = 0; b < batch; ++b) beams[b * width].log_prob = 0;  // one live hypothesis to start
  std::vector<std::vector<Translation>> finished(batch);
  std::vector<bool> done(batch, false);
  const std::size_t longest = longest_decode(source, options);
  auto finish = [&](std::size_t b, Hypothesis hypothesis) {
    Array<float> attention = attention_matrix(hypothesis.attention, source.lengths[b]);
    const double score = hypothesis_score(hypothesis.log_prob, hypothesis.tokens.size(), attention, options);
    finished[b].push_back({std::move(hypothesis.tokens), score, std::move(attention), hypothesis.log_prob});
  };

  const std::int64_t sos = decoder.sos_id(), eos = decoder.eos_id();
  Indices previous(Shape{rows}, sos);
  for (std::size_t t = 0; t < longest; ++t) {
    const DecoderStep<T> step = decoder.step(previous, *state, t);
    const Tensor<T> allowed = allowed_log_probs(step, t, eos, options);
    const Array<T>& log_probs = allowed.value();
    std::vector<Hypothesis> next(rows);
    Indices origins = Indices::from_shape({rows});
    for (std::size_t r = 0; r < rows; ++r) origins(r) = static_cast<std::int64_t>(r);  // finished rows idle in place
    std::vector<std::pair<double, std::size_t>> candidates;
    for (std::size_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      candidates.clear();
      for (std::size_t k = 0; k < width; ++k) {
        const std::size_t row = b * width + k;
        if (std::isinf(beams[row].log_prob)) continue;
        const T* row_log_probs = log_probs.data() + row * vocabulary;
        for (std::size_t v = 0; v < vocabulary; ++v) {
          candidates.emplace_back(beams[row].log_prob + static_cast<double>(row_log_probs[v]), k * vocabulary + v);
        }
      }
      // The best 2k candidates always hold k that do not end the sentence.
      const std::size_t considered = std::min(candidates.size(), 2 * width);
      std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(considered), candidates.end(),
                        [](const auto& a, const auto& c) { return a.first > c.first; });
      const bool last_step = t + 1 >= decode_limit(source.lengths[b], options);
      std::size_t kept = 0;
      for (std::size_t i = 0; i < considered && kept < width && finished[b].size() < width; ++i) {
        const auto [log_prob, index] = candidates[i];
        const std::size_t origin = b * width + index / vocabulary;
        const auto token = static_cast<std::int64_t>(index % vocabulary);
        Hypothesis extended{beams[origin].tokens, beams[origin].attention, log_prob};
        extended.attention.push_back(attention_row(step.weights.value(), origin, source.lengths[b]));
        if (token != eos) extended.tokens.push_back(token);
        if (token == eos || last_step) {
          finish(b, std::move(extended));
          continue;
        }
        const std::size_t row = b * width + kept++;
        origins(row) = static_cast<std::int64_t>(origin);
        next[row] = std::move(extended);
      }
      done[b] = finished[b].size() >= width || last_step || kept == 0;
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    beams = std::move(next);
    for (std::size_t r = 0; r < rows; ++r) previous(r) = beams[r].tokens.empty() ? sos : beams[r].tokens.back();
    decoder.select(*state, origins);
  }
  for (std::vector<Translation>& hypotheses : finished) {
    // Stable: of equal scores, the first finished stays first.
    std::stable_sort(hypotheses.begin(), hypotheses.end(),
                     [](const Translation& a, const Translation& c) { return a.score > c.score; });
    hypotheses.resize(std::min(hypotheses.size(), options.n_best));
  }
  return finished;
}

template <class T>
std::vector<Translation> beam_search(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                     const SearchOptions& options) {
  SearchOptions best_only = options;
  best_only.n_best = 1;
  std::vector<Translation> best;
  for (std::vector<Translation>& hypotheses : beam_search_n_best(decoder, source, best_only)) {
    best.push_back(std::move(hypotheses.front()));
  }
  return best;
}

#define XGRAD_INSTANTIATE_SEARCH(T)                                                                                  \
  template std::vector<Translation> greedy_search(const StepDecoder<T>&, const PaddedBatch&, const SearchOptions&); \
  template std::vector<Translation> sample_search(const StepDecoder<T>&, const PaddedBatch&, const SamplingOptions&,  \
                                                  Generator&, const SearchOptions&);                                  \
  template std::vector<Translation> beam_search(const StepDecoder<T>&, const PaddedBatch&, const SearchOptions&);      \
  template std::vector<std::vector<Translation>> beam_search_n_best(const StepDecoder<T>&, const PaddedBatch&,       \
                                                                    const SearchOptions&);

XGRAD_INSTANTIATE_SEARCH(float)
XGRAD_INSTANTIATE_SEARCH(double)

}  // namespace xgrad::models
