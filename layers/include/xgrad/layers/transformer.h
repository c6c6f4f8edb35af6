#pragma once
// Transformer layers with PyTorch's options, parameter names and arithmetic:
// nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.TransformerEncoder,
// nn.TransformerDecoder and nn.Transformer, so that a PyTorch state_dict saved as
// safetensors loads with load_state_dict.
//
// Layout: with batch_first (xgrad's default; PyTorch's is false) sequences are [B, T, E];
// without, [T, B, E] as in PyTorch. Key padding masks are [B, T] either way.
//
// Masks are the AttendOptions that MultiheadAttention takes, one per attention: the
// encoder's self-attention (source key padding), the decoder's self-attention (causal, target
// key padding) and its cross-attention (memory key padding). A query that sees no key (a
// fully padded sequence) gets a zero attention output, never NaN (PyTorch gives NaN).
//
// Dropout sits where PyTorch puts it, active only in training mode: on the attention
// weights (inside MultiheadAttention), after each attention block (dropout1, dropout2), after
// the feed-forward activation (dropout) and after the feed-forward block (dropout2 in the
// encoder layer, dropout3 in the decoder layer).
//
// Incremental decoding: TransformerDecoder::begin prepares the cross-attention keys and
// values of the memory once; each step() projects only the new positions and appends their
// self-attention keys and values to a per-layer cache, so that step t costs O(t) attention
// rather than a pass over the whole prefix, and gives what forward() with a causal mask gives
// at those positions.

#include <cstddef>
#include <optional>
#include <vector>

#include "xgrad/layers/attention.h"
#include "xgrad/layers/dropout.h"
#include "xgrad/layers/layer_norm.h"
#include "xgrad/layers/linear.h"
#include "xgrad/layers/module.h"

namespace xgrad::nn {

template <class T = float>
class TransformerEncoder;
template <class T = float>
class TransformerDecoder;
template <class T = float>
class Transformer;

enum class TransformerActivation {
  relu,
  gelu,  // the exact erf form, PyTorch's F.gelu
};

// PyTorch's constructor arguments and defaults, but for batch_first.
struct TransformerLayerOptions {
  std::size_t d_model = 512;
  std::size_t nhead = 8;  // must divide d_model
  std::size_t dim_feedforward = 2048;
  double dropout = 0.1;  // in [0, 1]
  TransformerActivation activation = TransformerActivation::relu;
  double layer_norm_eps = 1e-5;  // positive
  bool batch_first = true;       // [B, T, E]; false: [T, B, E]
  bool norm_first = false;       // pre-norm: x + block(norm(x)); post-norm: norm(x + block(x))
};

// A stack of num_layers layers of one configuration ("layers.0", ...), with a final LayerNorm
// ("norm") when final_norm is set, as nn.TransformerEncoder(layer, num_layers, norm) builds it.
// Each layer draws its own initial weights (PyTorch's clones start equal until
// nn.Transformer re-initialises them).
struct TransformerStackOptions {
  TransformerLayerOptions layer = {};
  std::size_t num_layers = 6;  // positive
  bool final_norm = false;
};

// nn.Transformer's arguments: both stacks end with a LayerNorm, as PyTorch builds them.
struct TransformerOptions {
  TransformerLayerOptions layer = {};
  std::size_t num_encoder_layers = 6;  // positive
  std::size_t num_decoder_layers = 6;  // positive
};

// The masks of nn.Transformer.forward, one AttendOptions per attention.
struct TransformerMasks {
  AttendOptions source = {};  // encoder self-attention: src_key_padding_mask [B, S]
  AttendOptions target = {};  // decoder self-attention: causal (tgt_mask), tgt_key_padding_mask [B, T]
  AttendOptions memory = {};  // decoder cross-attention: memory_key_padding_mask [B, S]
};

// Parameters: self_attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias},
// linear1.{weight, bias} (d_model -> dim_feedforward), linear2.* (back), norm1.*, norm2.*.
// Post-norm: x = norm1(x + sa(x)); x = norm2(x + ff(x)).
// Pre-norm:  x = x + sa(norm1(x)); x = x + ff(norm2(x)).
template <class T = float>
class TransformerEncoderLayer : public Module<T> {
 public:
  explicit TransformerEncoderLayer(const TransformerLayerOptions& options);

  // src [B, S, E] (or [S, B, E]) -> the same shape.
  Tensor<T> forward(const Tensor<T>& src, const AttendOptions& self_attention = {}) const;
  Tensor<T> operator()(const Tensor<T>& src, const AttendOptions& self_attention = {}) const {
    return forward(src, self_attention);
  }
  const TransformerLayerOptions& options() const noexcept { return options_; }

  MultiheadAttention<T> self_attn;
  Linear<T> linear1;
  Linear<T> linear2;
  LayerNorm<T> norm1;
  LayerNorm<T> norm2;
  Dropout<T> dropout;   // after the feed-forward activation
  Dropout<T> dropout1;  // after self-attention
  Dropout<T> dropout2;  // after the feed-forward block

 private:
  template <class>
  friend class TransformerEncoder;
  // The layer on batch-first [B, S, E].
  Tensor<T> forward_batch_first(const Tensor<T>& x, const AttendOptions& self_attention) const;

  TransformerLayerOptions options_;
};

// One layer's share of a TransformerDecoderCache.
template <class T>
struct TransformerDecoderLayerCache {
  AttentionMemory<T> self_attention;   // the layer's self-attention inputs and their projections so far
  AttentionMemory<T> cross_attention;  // the memory and its projections, prepared once
};

// Parameters: self_attn.*, multihead_attn.* (cross-attention over the memory), linear1.*,
// linear2.*, norm1.*, norm2.*, norm3.*.
// Post-norm: x = norm1(x + sa(x)); x = norm2(x + mha(x, memory)); x = norm3(x + ff(x)).
// Pre-norm:  x = x + sa(norm1(x)); x = x + mha(norm2(x), memory); x = x + ff(norm3(x)).
template <class T = float>
class TransformerDecoderLayer : public Module<T> {
 public:
  explicit TransformerDecoderLayer(const TransformerLayerOptions& options);

  // tgt [B, T, E] and memory [B, S, E] (or [T, B, E] and [S, B, E]) -> tgt's shape.
  // A decoder that must not see ahead passes self_attention.causal.
  Tensor<T> forward(const Tensor<T>& tgt, const Tensor<T>& memory, const AttendOptions& self_attention = {},
                    const AttendOptions& cross_attention = {}) const;
  Tensor<T> operator()(const Tensor<T>& tgt, const Tensor<T>& memory, const AttendOptions& self_attention = {},
                       const AttendOptions& cross_attention = {}) const {
    return forward(tgt, memory, self_attention, cross_attention);
  }
  const TransformerLayerOptions& options() const noexcept { return options_; }

  MultiheadAttention<T> self_attn;
  MultiheadAttention<T> multihead_attn;
  Linear<T> linear1;
  Linear<T> linear2;
  LayerNorm<T> norm1;
  LayerNorm<T> norm2;
  LayerNorm<T> norm3;
  Dropout<T> dropout;   // after the feed-forward activation
  Dropout<T> dropout1;  // after self-attention
  Dropout<T> dropout2;  // after cross-attention
  Dropout<T> dropout3;  // after the feed-forward block

 private:
  template <class>
  friend class TransformerDecoder;
  // The layer on batch-first x [B, T, E], attending over a prepared memory; the
  // cross-attention weights [B, T, S] (averaged over heads) go to `cross_weights` if not null.
  Tensor<T> forward_batch_first(const Tensor<T>& x, const AttentionMemory<T>& memory,
                                const AttendOptions& self_attention, const AttendOptions& cross_attention,
                                Tensor<T>* cross_weights) const;
  // The same for new positions x [B, n, E] of a cached sequence: appends their
  // self-attention keys and values to cache.self_attention; `position` is the first one's.
  Tensor<T> step_batch_first(const Tensor<T>& x, TransformerDecoderLayerCache<T>& cache, std::size_t position,
                             const AttendOptions& cross_attention, Tensor<T>* cross_weights) const;

  TransformerLayerOptions options_;
};

// What both stacks share: num_layers layers registered as "layers" and, with final_norm, a
// LayerNorm registered as "norm".
template <class T, class Layer>
class TransformerStack : public Module<T> {
 public:
  const TransformerStackOptions& options() const noexcept { return options_; }

  ModuleList<T, Layer> layers;
  std::optional<LayerNorm<T>> norm;  // with final_norm only

 protected:
  // `stack` names the stack in the error for num_layers = 0.
  TransformerStack(const char* stack, const TransformerStackOptions& options);

  TransformerStackOptions options_;
};

template <class T>
class TransformerEncoder : public TransformerStack<T, TransformerEncoderLayer<T>> {
 public:
  explicit TransformerEncoder(const TransformerStackOptions& options);

  // src [B, S, E] (or [S, B, E]) -> the same shape, through every layer and the final norm.
  Tensor<T> forward(const Tensor<T>& src, const AttendOptions& self_attention = {}) const;
  Tensor<T> operator()(const Tensor<T>& src, const AttendOptions& self_attention = {}) const {
    return forward(src, self_attention);
  }

 private:
  template <class>
  friend class Transformer;
  Tensor<T> forward_batch_first(const Tensor<T>& x, const AttendOptions& self_attention) const;
};

// What a TransformerDecoder carries from one step to the next, for B rows (one per
// hypothesis being decoded): per layer, the self-attention keys and values of the positions
// decoded so far and the prepared memory; the memory's key padding.
template <class T = float>
class TransformerDecoderCache {
 public:
  // Target positions cached: the position of the next step's first token.
  std::size_t length() const noexcept { return length_; }
  std::size_t batch_size() const noexcept { return batch_; }
  // Row r becomes a copy of row rows[r] (rows of any count, each < batch_size(), else
  // index_error): the target caches, the memory and its key padding.
  void select(const Indices& rows);
  // The same for the target side only (rows.size() must equal batch_size(), else
  // shape_error): for callers that move rows only between copies of one source sentence, as
  // beam search does, so that the memory's rows, equal among those copies, stay where they are.
  void select_target(const Indices& rows);

 private:
  friend class TransformerDecoder<T>;
  std::vector<TransformerDecoderLayerCache<T>> layers_;
  std::optional<Mask> memory_key_padding_;  // [B, S]
  std::size_t heads_ = 1;
  std::size_t length_ = 0;
  std::size_t batch_ = 0;
};

// What a decoder step reports besides its output.
struct TransformerStepOptions {
  // PyTorch's average_attn_weights: false reports every head's cross-attention, [B, H, n, S].
  bool average_attn_weights = true;
};

// One decoder step's results.
template <class T = float>
struct TransformerDecoderStep {
  Tensor<T> output;  // [B, n, E] (or [n, B, E]), after the final norm
  // Per layer: [B, n, S], weights averaged over heads; [B, H, n, S] without averaging.
  std::vector<Tensor<T>> cross_attention;
};

template <class T>
class TransformerDecoder : public TransformerStack<T, TransformerDecoderLayer<T>> {
 public:
  explicit TransformerDecoder(const TransformerStackOptions& options);

  // tgt [B, T, E] and memory [B, S, E] (or [T, B, E] and [S, B, E]) -> tgt's shape.
  Tensor<T> forward(const Tensor<T>& tgt, const Tensor<T>& memory, const AttendOptions& self_attention = {},
                    const AttendOptions& cross_attention = {}) const;
  Tensor<T> operator()(const Tensor<T>& tgt, const Tensor<T>& memory, const AttendOptions& self_attention = {},
                       const AttendOptions& cross_attention = {}) const {
    return forward(tgt, memory, self_attention, cross_attention);
  }

  // Incremental decoding. begin() prepares every layer's cross-attention over `memory`
  // ([B, S, E] or [S, B, E]) once; each step() takes the embeddings of the next n >= 1
  // positions, [B, n, E] (or [n, B, E]), positional encoding included, and gives the outputs
  // forward() gives there with a causal mask. Step t costs O(t) attention.
  TransformerDecoderCache<T> begin(const Tensor<T>& memory,
                                   const std::optional<Mask>& memory_key_padding = std::nullopt) const;
  TransformerDecoderStep<T> step(TransformerDecoderCache<T>& cache, const Tensor<T>& tgt,
                                 const TransformerStepOptions& options = {}) const;

 private:
  template <class>
  friend class Transformer;
  Tensor<T> forward_batch_first(const Tensor<T>& x, const Tensor<T>& memory, const AttendOptions& self_attention,
                                const AttendOptions& cross_attention) const;
};

// nn.Transformer: encoder (with its final norm) and decoder (with its final norm); every
// parameter of more than one dimension starts xavier-uniform, as PyTorch's do.
// Keys: encoder.layers.0.self_attn.in_proj_weight, ..., encoder.norm.weight,
// decoder.layers.0.multihead_attn.in_proj_weight, ..., decoder.norm.bias.
template <class T>
class Transformer : public Module<T> {
 public:
  explicit Transformer(const TransformerOptions& options);

  // src [B, S, E] and tgt [B, T, E] (or [S, B, E] and [T, B, E]) -> tgt's shape. For the
  // encoder or the decoder alone (and incremental decoding), call them.
  Tensor<T> forward(const Tensor<T>& src, const Tensor<T>& tgt, const TransformerMasks& masks = {}) const;
  Tensor<T> operator()(const Tensor<T>& src, const Tensor<T>& tgt, const TransformerMasks& masks = {}) const {
    return forward(src, tgt, masks);
  }
  const TransformerOptions& options() const noexcept { return options_; }

  TransformerEncoder<T> encoder;
  TransformerDecoder<T> decoder;

 private:
  TransformerOptions options_;
};

}  // namespace xgrad::nn
