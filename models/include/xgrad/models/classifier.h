#pragma once
// What every sequence classifier gives the programs (Classifier), and the recurrent one
// (SequenceClassifier); the Transformer encoder's is in transformer_classifier.h. A model
// directory's config.json names the architecture (model_directory.h).
//
// SequenceClassifier, an attention-pooling sequence classifier assembled from public layers only:
//   Embedding -> dropout -> (bi)LSTM, GRU or RNN over variable-length, masked batches
//   -> attention pooling: a learned query attends over the encoder states (additive
//      self-attentive pooling by default, multi-head as an option); padding is masked
//   -> dropout -> Linear -> logits over any number of classes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/layers/attention.h"
#include "xgrad/layers/dropout.h"
#include "xgrad/layers/embedding.h"
#include "xgrad/layers/linear.h"
#include "xgrad/layers/rnn.h"
#include "xgrad/models/batching.h"

namespace xgrad::models {

enum class PoolingKind { additive, multihead };

std::string to_string(PoolingKind pooling);
PoolingKind pooling_kind_from_string(const std::string& name);  // std::invalid_argument listing the choices

struct ClassifierOptions {
  std::size_t vocabulary = 0;
  std::size_t classes = 0;
  std::size_t embedding_size = 128;
  std::size_t hidden_size = 256;  // per direction
  std::size_t layers = 1;
  bool bidirectional = true;
  nn::CellKind cell = nn::CellKind::lstm;
  PoolingKind pooling = PoolingKind::additive;
  std::size_t attention_size = 128;  // additive pooling
  std::size_t attention_heads = 4;   // multi-head pooling; must divide the encoder output size
  double dropout = 0.5;
  std::int64_t pad_id = 0;
};

std::string to_json(const ClassifierOptions& options);
ClassifierOptions classifier_options_from_json(const std::string& text);
// About how many parameters the options ask for; what the configuration limits are checked against.
double estimated_parameters(const ClassifierOptions& options);

template <class T>
struct Classification {
  Tensor<T> logits;     // [B, classes]
  Tensor<T> attention;  // [B, T]: the pooling weights over each sequence's tokens (0 on padding)
};

template <class T = float>
class Classifier : public nn::Module<T> {
 public:
  // batch: token ids [B, T] padded with the pad id, and B lengths in [1, T] (shape_error
  // naming the model and the shapes otherwise).
  virtual Classification<T> forward(const PaddedBatch& batch) const = 0;
  // Mean cross-entropy of the batch's labels (ids in [0, classes)).
  Tensor<T> loss(const PaddedBatch& batch, const Indices& labels, double label_smoothing = 0.0) const;
  // "rnn" or "transformer", as config.json records it.
  virtual std::string architecture() const = 0;
  // The model's options as JSON text (without the architecture, which the model directory adds).
  virtual std::string configuration() const = 0;
  // The longest text the model reads (a Transformer's max_positions); SIZE_MAX for no limit.
  virtual std::size_t max_length() const = 0;
};

template <class T = float>
class SequenceClassifier final : public Classifier<T> {
 public:
  explicit SequenceClassifier(const ClassifierOptions& options);

  Classification<T> forward(const PaddedBatch& batch) const override;
  std::string architecture() const override { return "rnn"; }
  std::string configuration() const override { return to_json(options_); }
  std::size_t max_length() const override;

  const ClassifierOptions& options() const noexcept { return options_; }

  Tensor<T> query;  // [1, 1, query size]: the learned question the pooling asks of every position

 private:
  ClassifierOptions options_;
  nn::Embedding<T> embedding_;
  nn::Dropout<T> dropout_;
  std::unique_ptr<nn::RecurrentLayer<T>> encoder_;
  std::unique_ptr<nn::Attention<T>> pooling_;
  nn::Linear<T> output_;
};

}  // namespace xgrad::models
