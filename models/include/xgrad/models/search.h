#pragma once
// Greedy and beam search over any decoder that gives one step's log-probabilities at a time
// (the attention RNN, a Transformer), so that every model decodes the same way.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "xgrad/framework/random.h"
#include "xgrad/framework/sampling.h"
#include "xgrad/framework/tensor.h"
#include "xgrad/models/batching.h"

namespace xgrad::models {

struct Translation {
  std::vector<std::int64_t> tokens;  // without <sos>; ends before <eos>
  double score = 0;                  // log-probability (beam: length-normalised)
  Array<float> attention;            // [tokens.size() + 1 (the <eos> step, if produced), S]
};

struct SearchOptions {
  std::size_t beam_size = 1;      // 1: greedy
  double length_penalty = 1.0;    // alpha: hypotheses are ranked by log p / length^alpha
  double max_length_ratio = 2.0;  // decode at most ratio * source length + max_length_extra steps
  std::size_t max_length_extra = 10;
};

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
// length limit (SearchOptions). options.beam_size is not read.
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
// B * beam_size rows; the best finished hypothesis by length-normalised score wins. With
// beam_size 1 it gives exactly what greedy_search gives. std::invalid_argument unless
// 1 <= beam_size <= the vocabulary.
template <class T>
std::vector<Translation> beam_search(const StepDecoder<T>& decoder, const PaddedBatch& source,
                                     const SearchOptions& options);

}  // namespace xgrad::models
