#pragma once
// What every translation model gives the programs, the evaluation loops and the searches,
// whatever its architecture: the attention RNN (seq2seq.h) or the Transformer
// (transformer_translator.h). A model directory's config.json names the architecture
// (model_directory.h), so that `eval` and `translate` load either.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/framework/random.h"
#include "xgrad/framework/tensor.h"
#include "xgrad/layers/module.h"
#include "xgrad/models/batching.h"
#include "xgrad/models/search.h"

namespace xgrad::models {

// Source sentences are a PaddedBatch: ids [B, S] padded with the pad id, and B lengths >= 1.

// Teacher-forcing targets: decoder inputs start with <sos>, outputs end with <eos>; both are
// padded with the pad id.
struct TargetBatch {
  Indices inputs;   // [B, T]
  Indices outputs;  // [B, T]
};

struct TranslationLossOptions {
  double label_smoothing = 0.0;
  // The probability of feeding the reference token at a step; otherwise the model's own
  // previous prediction is fed (scheduled sampling). Below 1 only for models that decode
  // step by step in training (the RNN); the Transformer refuses it.
  double teacher_forcing = 1.0;
  Generator* generator = nullptr;  // draws the teacher-forcing coin; nullptr: the default generator
};

template <class T = float>
class Translator : public nn::Module<T> {
 public:
  // Mean cross-entropy per target token (padding excluded). shape_error for a source or
  // target batch of the wrong shape.
  virtual Tensor<T> loss(const PaddedBatch& source, const TargetBatch& target,
                         const TranslationLossOptions& options = {}) const = 0;
  // The decoder the searches drive; it refers to this model, which must outlive it.
  virtual std::unique_ptr<StepDecoder<T>> step_decoder() const = 0;
  // "rnn" or "transformer", as config.json records it.
  virtual std::string architecture() const = 0;
  // The model's options as JSON text (without the architecture, which the model directory adds).
  virtual std::string configuration() const = 0;
  virtual std::int64_t pad_id() const = 0;

  // Token-summed cross-entropy and the number of target tokens, for perplexity over a corpus;
  // records no graph.
  std::pair<double, std::size_t> evaluate_loss(const PaddedBatch& source, const TargetBatch& target) const;

  // Decodes a batch without recording a graph (search.h): greedy when beam_size is 1, beam
  // search otherwise. Call eval() first, or dropout stays active.
  std::vector<Translation> translate(const PaddedBatch& source, const SearchOptions& options = {}) const;
  std::vector<Translation> greedy(const PaddedBatch& source, const SearchOptions& options = {}) const;
  // Batched beam search (models::beam_search); with beam_size 1 it gives the tokens greedy gives.
  std::vector<Translation> beam_search(const PaddedBatch& source, const SearchOptions& options) const;
  // Up to options.n_best hypotheses per sentence, best first (models::beam_search_n_best); the
  // one of greedy when beam_size and n_best are 1.
  std::vector<std::vector<Translation>> translate_n_best(const PaddedBatch& source, const SearchOptions& options) const;
};

// The shape checks every translation model makes, naming `model` and the shapes: source ids
// [B, S] with B lengths in [1, S]; target inputs and outputs both [B, T] with T >= 1.
void check_source_batch(const char* model, const PaddedBatch& source);
void check_target_batch(const char* model, const PaddedBatch& source, const TargetBatch& target);

// The flat index (row * T + t) of every target position holding a real token, and those tokens.
std::pair<Indices, Indices> real_target_positions(const Indices& outputs, std::int64_t pad_id);

// The rows of a search's state for B sentences times `copies` hypotheses: row b * copies + k
// is sentence b. A tensor may hold several rows per sentence (keys split by head, b * H + h):
// each sentence's block of rows is repeated whole.
template <class T>
Tensor<T> repeat_sentence_rows(const Tensor<T>& rows, std::size_t sentences, std::size_t copies);
Mask repeat_sentence_rows(const Mask& rows, std::size_t copies);

}  // namespace xgrad::models
