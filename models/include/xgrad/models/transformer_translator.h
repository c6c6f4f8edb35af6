#pragma once
// A Transformer encoder-decoder for translation (Vaswani et al., 2017), assembled from layers/:
//   source   Embedding * sqrt(d_model) + positional encoding -> dropout -> TransformerEncoder
//   target   Embedding * sqrt(d_model) + positional encoding -> dropout -> TransformerDecoder
//            (causal self-attention, cross-attention over the encoder's output)
//   output   Linear d_model -> target vocabulary; with tie_output its weight is the target
//            embedding's (Press & Wolf, 2017), and only its bias is a parameter of its own
// Both stacks end with a LayerNorm. Source padding is masked in the encoder's
// self-attention and in the cross-attention; target padding is ignored by the loss, and the
// output projection runs only at real target positions. Decoding steps the decoder's
// key/value cache (TransformerDecoder::step) under the shared searches (search.h), so a
// step projects only the new token.
//
// Parameter names: source_embedding.weight (absent with share_embeddings: the source reads
// target_embedding.weight), target_embedding.weight, source_positions.weight and
// target_positions.weight (learned positions only), encoder.layers.N.* and encoder.norm.*,
// decoder.layers.N.* and decoder.norm.* (PyTorch's nn.Transformer names), and output.weight
// and output.bias, or with tie_output the bias alone as output_bias.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "xgrad/layers/dropout.h"
#include "xgrad/layers/embedding.h"
#include "xgrad/layers/linear.h"
#include "xgrad/layers/positional_encoding.h"
#include "xgrad/layers/transformer.h"
#include "xgrad/models/transformer_input.h"
#include "xgrad/models/translator.h"

namespace xgrad::models {

struct TransformerTranslatorOptions {
  std::size_t source_vocabulary = 0;
  std::size_t target_vocabulary = 0;
  std::size_t model_size = 256;         // d_model
  std::size_t heads = 4;                // must divide model_size
  std::size_t feedforward_size = 1024;  // dim_feedforward
  std::size_t encoder_layers = 3;
  std::size_t decoder_layers = 3;
  double dropout = 0.1;
  nn::TransformerActivation activation = nn::TransformerActivation::relu;
  // Pre-norm (x + f(norm(x))) trains stably without a long warm-up; PyTorch's default is
  // post-norm (norm(x + f(x))), the original paper's.
  bool norm_first = true;
  double layer_norm_eps = 1e-5;
  PositionKind positions = PositionKind::sinusoidal;
  // The longest sentence the model reads or writes: the learned tables' size, and where the
  // sinusoidal table is precomputed up to.
  std::size_t max_positions = 256;
  // One embedding table for source and target (a joint vocabulary: both sizes must be equal).
  bool share_embeddings = false;
  bool tie_output = true;  // the output projection's weight is the target embedding
  std::int64_t pad_id = 0;
  std::int64_t sos_id = 2;
  std::int64_t eos_id = 3;
};

// The options as JSON text and back (std::invalid_argument naming a missing or bad key).
std::string to_json(const TransformerTranslatorOptions& options);
TransformerTranslatorOptions transformer_translator_options_from_json(const std::string& text);
// How many parameters the options ask for, which the configuration limits are checked against.
double estimated_parameters(const TransformerTranslatorOptions& options);

// Which cross-attention a translation reports (Translation::attention): a layer's, averaged
// over its heads or of one head.
struct ReportedAttention {
  std::optional<std::size_t> layer = std::nullopt;  // 0-based; empty: the last
  std::optional<std::size_t> head = std::nullopt;   // 0-based; empty: the average over the heads
};

template <class T = float>
class TransformerTranslator final : public Translator<T> {
 public:
  // std::invalid_argument naming the option for options that cannot work.
  explicit TransformerTranslator(const TransformerTranslatorOptions& options);

  // teacher_forcing below 1 is refused (std::invalid_argument): the decoder reads the whole
  // reference at once.
  Tensor<T> loss(const PaddedBatch& source, const TargetBatch& target,
                 const TranslationLossOptions& options = {}) const override;
  std::unique_ptr<StepDecoder<T>> step_decoder() const override;
  // The next-token logits [B, T, V] at every position of the target inputs [B, T] (causal:
  // position t sees inputs 0..t), as nn.Transformer's forward followed by the output layer.
  Tensor<T> forward(const PaddedBatch& source, const Indices& target_inputs) const;
  std::string architecture() const override { return "transformer"; }
  std::string configuration() const override { return to_json(options_); }
  std::int64_t pad_id() const override { return options_.pad_id; }

  // std::invalid_argument for a layer or head past the decoder's.
  void report_attention(const ReportedAttention& reported);
  const TransformerTranslatorOptions& options() const noexcept { return options_; }

 private:
  class SearchDecoder;
  struct Encoded {
    Tensor<T> memory;  // [B, S, d_model]
    Mask padding;      // [B, S], true past each sentence's end
  };
  Encoded encode(const PaddedBatch& source) const;
  // The decoder's output [B, T, d_model] for target inputs [B, T] (checked against max_positions).
  Tensor<T> decode(const Encoded& encoded, const Indices& target_inputs) const;
  // Embeddings of target ids [B, n] at positions offset.., scaled and position-encoded.
  Tensor<T> embed_target(const Indices& ids, std::size_t offset) const;
  Tensor<T> project(const Tensor<T>& features) const;  // [..., d_model] -> [..., V] logits

  TransformerTranslatorOptions options_;
  std::size_t reported_layer_;
  std::optional<std::size_t> reported_head_;
  std::optional<nn::Embedding<T>> source_embedding_;  // without share_embeddings
  nn::Embedding<T> target_embedding_;
  std::unique_ptr<nn::SinusoidalPositionalEncoding<T>> sinusoidal_;  // shared by both sides
  std::unique_ptr<nn::LearnedPositionalEncoding<T>> source_positions_;
  std::unique_ptr<nn::LearnedPositionalEncoding<T>> target_positions_;
  nn::Dropout<T> dropout_;
  nn::TransformerEncoder<T> encoder_;
  nn::TransformerDecoder<T> decoder_;
  std::optional<nn::Linear<T>> output_;  // without tie_output
  Tensor<T> output_bias_;                // with tie_output
};

}  // namespace xgrad::models
