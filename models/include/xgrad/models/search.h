#pragma once
// Greedy and beam search over any decoder that gives one step's log-probabilities at a time
// (the attention RNN, a Transformer), so that every model decodes the same way.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/framework/random.h"
#include "xgrad/framework/sampling.h"
#include "xgrad/framework/tensor.h"
#include "xgrad/models/batching.h"

namespace xgrad::models {

struct Translation {
  std::vector<std::int64_t> tokens;  // without <sos>; ends before <eos>
  // What the search ranked it by: greedy and sampling, the log-probability; beam search,
  // hypothesis_score.
  double score = 0;
  Array<float> attention;      // [tokens.size() + 1 (the <eos> step, if produced), S]
  double log_probability = 0;  // of the tokens and the <eos>, if produced, under the decoder
};

// How beam search weighs a finished hypothesis's length |Y| (its tokens and <eos>) against
// its log-probability: short hypotheses have fewer factors below 1, and would win otherwise.
enum class LengthNormalization {
  none,     // log p
  average,  // log p / |Y|^alpha
  gnmt,     // log p / ((5 + |Y|)^alpha / (5 + 1)^alpha), Wu et al. 2016 (Google's NMT system)
};
// "none", "avg", "gnmt"; std::invalid_argument naming the value and the choices otherwise.
LengthNormalization length_normalization_from_string(const std::string& name);
const std::string& to_string(LengthNormalization normalization);

struct SearchOptions {
  std::size_t beam_size = 1;      // 1: greedy
  double length_penalty = 1.0;    // alpha of length_normalization
  double max_length_ratio = 2.0;  // decode at most ratio * source length + max_length_extra steps
  std::size_t max_length_extra = 10;
  LengthNormalization length_normalization = LengthNormalization::average;
  // beta of GNMT's coverage penalty, added to a beam hypothesis's score:
  // beta * sum over source words i of log(min(sum over steps t of attention(t, i), 1)), which
  // is below 0 for each source word the translation gave less than one step's attention.
  double coverage_penalty = 0.0;
  // <eos> is not allowed before this many tokens (unless the decoder allows nothing else).
  std::size_t min_output_length = 0;
  // At most this many tokens, whatever the source length (max_length_ratio, max_length_extra).
  std::size_t max_output_length = std::numeric_limits<std::size_t>::max();
  // How many hypotheses beam_search_n_best returns per sentence, from 1 to beam_size.
  std::size_t n_best = 1;
};

// A source word whose attention sums to less than this counts as this much covered: without
// a floor, a word no step attended to (local attention gives exact zeros outside its window)
// makes the penalty infinite, and every such hypothesis ties.
inline constexpr double min_coverage = 1e-6;

// The score beam search ranks a finished hypothesis by: its log-probability normalised for its
// length (tokens + 1, for the <eos> step, whether produced or not) as options.length_normalization
// and length_penalty say, plus the coverage penalty of its attention [steps, S].
double hypothesis_score(double log_probability, std::size_t tokens, const Array<float>& attention,
                        const SearchOptions& options);

// What a decoder gives for one step of N rows (hypotheses).
template <class T>
struct DecoderStep {
  Tensor<T> log_probs;  // [N, V]: log-probabilities of the next token
  Tensor<T> weights;    // [N, S]: attention over the source positions (padding included)
};

// A decoder the searches can drive one step at a time. The searches call it with gradients
// off; a row is one hypothesis, and the state it carries is the decoder's own.
template <class T = float>
class StepDecoder {
 public:
  // Whatever the decoder carries from one step to the next: encoder outputs, recurrent state,
  // cached keys and values.
  class State {
   public:
    virtual ~State() = default;
  };

  StepDecoder() = default;
  StepDecoder(const StepDecoder&) = delete;
  StepDecoder& operator=(const StepDecoder&) = delete;
  virtual ~StepDecoder() = default;

  virtual std::int64_t sos_id() const = 0;
  virtual std::int64_t eos_id() const = 0;
  virtual std::size_t vocabulary_size() const = 0;

  // Encodes a source batch of B sentences into the state of B * copies rows, row b * copies + k
  // being sentence b (beam search runs its hypotheses as one batch). shape_error for a source
  // batch the decoder cannot read.
  virtual std::unique_ptr<State> begin(const PaddedBatch& source, std::size_t copies) const = 0;
  // Step `position` (0 for the token after <sos>) for the previous token of every row.
  virtual DecoderStep<T> step(const Indices& previous, State& state, std::size_t position) const = 0;
  // Makes row r of the state a copy of row rows[r]: beams drop, keep and duplicate hypotheses.
  // The searches only move rows within a sentence's copies, so what depends on the source
  // alone may stay where it is.
  virtual void select(State& state, const Indices& rows) const = 0;
};

// One hypothesis per sentence, each step taking the most probable token, until <eos> or the
// length limits (SearchOptions: the lengths of the output and the ratio to the source). The
// beam size, the penalties and n_best are not read.
template <class T>
std::vector<Translation> greedy_search(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                       const SearchOptions& options = {});
// Like greedy_search, but each step draws the next token (sample_logits: temperature, top-k)
// with `generator`, for varied outputs (back-translation, generation); the same seed gives
// the same tokens. Temperature 0 is greedy_search. The score is the log-probability of the
// drawn tokens under the decoder (not the tempered distribution).
template <class T>
std::vector<Translation> sample_search(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                       const SamplingOptions& sampling, Generator& generator,
                                       const SearchOptions& options = {});
// Batched beam search: the beam_size hypotheses of each sentence run as one batch of
// B * beam_size rows; the best finished hypothesis by hypothesis_score wins. With beam_size 1
// it gives the tokens greedy_search gives. std::invalid_argument unless
// 1 <= beam_size <= the vocabulary.
template <class T>
std::vector<Translation> beam_search(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                     const SearchOptions& options);
// The same search, giving up to options.n_best finished hypotheses per sentence, best first
// (fewer only when the beam finished fewer); their token sequences differ.
// std::invalid_argument also unless 1 <= n_best <= beam_size.
template <class T>
std::vector<std::vector<Translation>> beam_search_n_best(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                                         const SearchOptions& options);

}  // namespace xgrad::models
