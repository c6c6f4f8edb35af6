#pragma once
// A Transformer-encoder sequence classifier, assembled from layers/:
//   Embedding * sqrt(d_model) + positional encoding -> dropout
//   -> TransformerEncoder (padding masked in every self-attention, a final LayerNorm)
//   -> pooling: attention (a learned query attends over the encoder's outputs with
//      multi-head attention of the model's heads, as SequenceClassifier's multi-head pooling)
//      or mean (the mean of the real positions' outputs)
//   -> dropout -> Linear -> logits over any number of classes.
// The classification's pooling weights are the query's attention over the tokens, or 1 /
// length on every real token for mean pooling; both are 0 on padding.
//
// Parameter names: embedding.weight, positions.weight (learned positions only),
// encoder.layers.N.* and encoder.norm.* (PyTorch's nn.TransformerEncoder names), query and
// pooling.* (attention pooling only), output.weight and output.bias.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "xgrad/layers/attention.h"
#include "xgrad/layers/dropout.h"
#include "xgrad/layers/embedding.h"
#include "xgrad/layers/linear.h"
#include "xgrad/layers/positional_encoding.h"
#include "xgrad/layers/transformer.h"
#include "xgrad/models/classifier.h"
#include "xgrad/models/transformer_input.h"

namespace xgrad::models {

enum class TransformerPooling { attention, mean };

std::string to_string(TransformerPooling pooling);
TransformerPooling transformer_pooling_from_string(const std::string& name);  // std::invalid_argument listing the choices

struct TransformerClassifierOptions {
  std::size_t vocabulary = 0;
  std::size_t classes = 0;
  std::size_t model_size = 256;         // d_model
  std::size_t heads = 4;                // must divide model_size; also the attention pooling's
  std::size_t feedforward_size = 1024;  // dim_feedforward
  std::size_t encoder_layers = 3;
  double dropout = 0.1;
  nn::TransformerActivation activation = nn::TransformerActivation::relu;
  bool norm_first = true;  // pre-norm, as TransformerTranslatorOptions
  double layer_norm_eps = 1e-5;
  PositionKind positions = PositionKind::sinusoidal;
  std::size_t max_positions = 512;  // the longest text the model reads
  TransformerPooling pooling = TransformerPooling::attention;
  std::int64_t pad_id = 0;
};

// The options as JSON text and back (std::invalid_argument naming a missing or bad key).
std::string to_json(const TransformerClassifierOptions& options);
TransformerClassifierOptions transformer_classifier_options_from_json(const std::string& text);
// How many parameters the options ask for, which the configuration limits are checked against.
double estimated_parameters(const TransformerClassifierOptions& options);

template <class T = float>
class TransformerClassifier final : public Classifier<T> {
 public:
  // std::invalid_argument naming the option for options that cannot work.
  explicit TransformerClassifier(const TransformerClassifierOptions& options);

  // Also a shape_error for texts longer than max_positions.
  Classification<T> forward(const PaddedBatch& batch) const override;
  std::string architecture() const override { return "transformer"; }
  std::string configuration() const override { return to_json(options_); }
  std::size_t max_length() const override { return options_.max_positions; }

  const TransformerClassifierOptions& options() const noexcept { return options_; }

  Tensor<T> query;  // [1, 1, d_model], attention pooling only

 private:
  TransformerClassifierOptions options_;
  nn::Embedding<T> embedding_;
  std::unique_ptr<nn::SinusoidalPositionalEncoding<T>> sinusoidal_;
  std::unique_ptr<nn::LearnedPositionalEncoding<T>> positions_;
  nn::Dropout<T> dropout_;
  nn::TransformerEncoder<T> encoder_;
  std::unique_ptr<nn::MultiheadAttention<T>> pooling_;  // attention pooling only
  nn::Linear<T> output_;
};

}  // namespace xgrad::models
