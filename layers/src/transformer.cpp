// The Transformer layers and stacks, built from MultiheadAttention, Linear, LayerNorm and
// Dropout as PyTorch builds them, and the decoder's key/value cache for incremental decoding.
// Everything inside works on batch-first [B, T, E]; sequence-first inputs are transposed once
// at the public boundary.
#include "xgrad/layers/transformer.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/indexing.h"
#include "xgrad/framework/init.h"
#include "xgrad/framework/layout.h"

namespace xgrad::nn {
namespace {

// Validates the options every layer shares (naming the option) and gives its attentions' options.
MultiheadAttentionOptions attention_options(const char* layer, const TransformerLayerOptions& options) {
  auto fail = [&](const std::string& problem) {
    throw std::invalid_argument(detail::message(layer, ": ", problem));
  };
  if (options.d_model == 0) fail("d_model = 0 must be positive");
  if (options.nhead == 0 || options.d_model % options.nhead != 0) {
    fail(detail::message("nhead = ", options.nhead, " must be positive and divide d_model = ", options.d_model));
  }
  if (options.dim_feedforward == 0) fail("dim_feedforward = 0 must be positive");
  if (!(options.dropout >= 0.0 && options.dropout <= 1.0)) {
    fail(detail::message("dropout = ", options.dropout, " must lie in [0, 1]"));
  }
  if (!(options.layer_norm_eps > 0.0)) fail(detail::message("layer_norm_eps = ", options.layer_norm_eps, " must be positive"));
  return {.embed_dim = options.d_model, .num_heads = options.nhead, .dropout = options.dropout, .bias = true};
}

LayerNormOptions norm_options(const TransformerLayerOptions& options) {
  return {.normalized_shape = {options.d_model}, .eps = options.layer_norm_eps};
}

// Inputs that must all be [B, T_i, d_model] (or [T_i, B, d_model]) with one B; the message
// names `op` and every input's shape.
template <class T>
void check_sequences(const char* op, const TransformerLayerOptions& options,
                     std::initializer_list<std::pair<const char*, const Tensor<T>*>> inputs) {
  const std::size_t batch_axis = options.batch_first ? 0 : 1;
  const Tensor<T>& first = *inputs.begin()->second;
  bool fits = true;
  for (const auto& [name, x] : inputs) {
    fits = fits && x->dim() == 3 && x->shape()[2] == options.d_model && first.dim() == 3 &&
           x->shape()[batch_axis] == first.shape()[batch_axis];
  }
  if (fits) return;
  std::string shapes;
  for (const auto& [name, x] : inputs) shapes += detail::message(shapes.empty() ? "" : ", ", name, " ", x->shape());
  throw shape_error(detail::message(op, ": ", shapes, ": expected ",
                                    options.batch_first ? "[B, T, d_model]" : "[T, B, d_model]",
                                    " with one batch size B and d_model = ", options.d_model));
}

// [T, B, E] <-> [B, T, E] when the layout is sequence-first; batch-first passes through.
template <class T>
Tensor<T> swap_batch_axis(const Tensor<T>& x, bool batch_first) {
  return batch_first ? x : transpose(x, 0, 1);
}

// Post-norm: norm(x + block(x)); pre-norm: x + block(norm(x)).
template <class T, class Block>
Tensor<T> residual(const Tensor<T>& x, const LayerNorm<T>& norm, bool norm_first, Block block) {
  return norm_first ? x + block(norm(x)) : norm(x + block(x));
}

// linear2(dropout(activation(linear1(x))))
template <class T>
Tensor<T> feed_forward(const Tensor<T>& x, const Linear<T>& linear1, const Dropout<T>& dropout,
                       const Linear<T>& linear2, TransformerActivation activation) {
  const Tensor<T> hidden = linear1(x);
  return linear2(dropout(activation == TransformerActivation::gelu ? gelu(hidden) : relu(hidden)));
}

// The decoder layer around a self-attention block: self_attention_block(y) is the attention
// output for the (normalised, when pre-norm) input y.
template <class T, class SelfAttentionBlock>
Tensor<T> decoder_layer_pass(const TransformerDecoderLayer<T>& layer, const Tensor<T>& x,
                             SelfAttentionBlock self_attention_block, const AttentionMemory<T>& memory,
                             const AttendOptions& cross_attention, Tensor<T>* cross_weights) {
  const bool norm_first = layer.options().norm_first;
  const Tensor<T> attended = residual(x, layer.norm1, norm_first, [&](const Tensor<T>& y) {
    return layer.dropout1(self_attention_block(y));
  });
  const Tensor<T> crossed = residual(attended, layer.norm2, norm_first, [&](const Tensor<T>& y) {
    AttentionOutput<T> output = layer.multihead_attn.attend(y, memory, cross_attention);
    if (cross_weights != nullptr) *cross_weights = std::move(output.weights);
    return layer.dropout2(output.context);
  });
  return residual(crossed, layer.norm3, norm_first, [&](const Tensor<T>& y) {
    return layer.dropout3(feed_forward(y, layer.linear1, layer.dropout, layer.linear2, layer.options().activation));
  });
}

// rows of a [B * H, ...] head-split tensor for the batch rows `rows`: row r * H + h is rows[r] * H + h.
Indices head_rows(const Indices& rows, std::size_t heads) {
  Indices expanded = Indices::from_shape({rows.size() * heads});
  const auto h_count = static_cast<std::int64_t>(heads);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::int64_t h = 0; h < h_count; ++h) expanded.data()[r * heads + h] = rows.data()[r] * h_count + h;
  }
  return expanded;
}

// The memory's rows `rows`: the inputs (keys and values are one tensor in self-attention and
// in the decoder's cross-attention) and their head-split projections.
template <class T>
void select_rows(AttentionMemory<T>& memory, const Indices& rows, const Indices& split_rows) {
  if (!memory.keys.defined()) return;  // nothing cached yet
  const bool shared = memory.keys.same(memory.values);
  memory.keys = index_select(memory.keys, 0, rows);
  memory.values = shared ? memory.keys : index_select(memory.values, 0, rows);
  memory.projected_keys = index_select(memory.projected_keys, 0, split_rows);
  memory.projected_values = index_select(memory.projected_values, 0, split_rows);
}

// rows must be 1-D, each row of a cache of `batch` rows.
void check_cache_rows(const char* op, const Indices& rows, std::size_t batch) {
  if (rows.dimension() != 1) throw shape_error(detail::message(op, ": rows ", rows.shape(), " must be 1-D"));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::int64_t row = rows.data()[r];
    if (row < 0 || static_cast<std::size_t>(row) >= batch) {
      throw index_error(detail::message(op, ": rows[", r, "] = ", row, " is outside the cache's ", batch, " rows"));
    }
  }
}

}  // namespace

template <class T>
TransformerEncoderLayer<T>::TransformerEncoderLayer(const TransformerLayerOptions& options)
    : self_attn(attention_options("TransformerEncoderLayer", options)),
      linear1({.in_features = options.d_model, .out_features = options.dim_feedforward}),
      linear2({.in_features = options.dim_feedforward, .out_features = options.d_model}),
      norm1(norm_options(options)),
      norm2(norm_options(options)),
      dropout(options.dropout),
      dropout1(options.dropout),
      dropout2(options.dropout),
      options_(options) {
  this->register_module("self_attn", self_attn);
  this->register_module("linear1", linear1);
  this->register_module("dropout", dropout);
  this->register_module("linear2", linear2);
  this->register_module("norm1", norm1);
  this->register_module("norm2", norm2);
  this->register_module("dropout1", dropout1);
  this->register_module("dropout2", dropout2);
}

template <class T>
Tensor<T> TransformerEncoderLayer<T>::forward(const Tensor<T>& src, const AttendOptions& self_attention) const {
  check_sequences<T>("TransformerEncoderLayer", options_, {{"src", &src}});
  const bool batch_first = options_.batch_first;
  return swap_batch_axis(forward_batch_first(swap_batch_axis(src, batch_first), self_attention), batch_first);
}

template <class T>
Tensor<T> TransformerEncoderLayer<T>::forward_batch_first(const Tensor<T>& x,
                                                          const AttendOptions& self_attention) const {
  const Tensor<T> attended = residual(x, norm1, options_.norm_first, [&](const Tensor<T>& y) {
    return dropout1(self_attn.forward(y, y, y, self_attention).context);
  });
  return residual(attended, norm2, options_.norm_first, [&](const Tensor<T>& y) {
    return dropout2(feed_forward(y, linear1, dropout, linear2, options_.activation));
  });
}

template <class T>
TransformerDecoderLayer<T>::TransformerDecoderLayer(const TransformerLayerOptions& options)
    : self_attn(attention_options("TransformerDecoderLayer", options)),
      multihead_attn(attention_options("TransformerDecoderLayer", options)),
      linear1({.in_features = options.d_model, .out_features = options.dim_feedforward}),
      linear2({.in_features = options.dim_feedforward, .out_features = options.d_model}),
      norm1(norm_options(options)),
      norm2(norm_options(options)),
      norm3(norm_options(options)),
      dropout(options.dropout),
      dropout1(options.dropout),
      dropout2(options.dropout),
      dropout3(options.dropout),
      options_(options) {
  this->register_module("self_attn", self_attn);
  this->register_module("multihead_attn", multihead_attn);
  this->register_module("linear1", linear1);
  this->register_module("dropout", dropout);
  this->register_module("linear2", linear2);
  this->register_module("norm1", norm1);
  this->register_module("norm2", norm2);
  this->register_module("norm3", norm3);
  this->register_module("dropout1", dropout1);
  this->register_module("dropout2", dropout2);
  this->register_module("dropout3", dropout3);
}

template <class T>
Tensor<T> TransformerDecoderLayer<T>::forward(const Tensor<T>& tgt, const Tensor<T>& memory,
                                              const AttendOptions& self_attention,
                                              const AttendOptions& cross_attention) const {
  check_sequences<T>("TransformerDecoderLayer", options_, {{"tgt", &tgt}, {"memory", &memory}});
  const bool batch_first = options_.batch_first;
  const Tensor<T> keys = swap_batch_axis(memory, batch_first);
  return swap_batch_axis(forward_batch_first(swap_batch_axis(tgt, batch_first), multihead_attn.prepare(keys, keys),
                                             self_attention, cross_attention, nullptr),
                         batch_first);
}

template <class T>
Tensor<T> TransformerDecoderLayer<T>::forward_batch_first(const Tensor<T>& x, const AttentionMemory<T>& memory,
                                                          const AttendOptions& self_attention,
                                                          const AttendOptions& cross_attention,
                                                          Tensor<T>* cross_weights) const {
  return decoder_layer_pass(
      *this, x, [&](const Tensor<T>& y) { return self_attn.forward(y, y, y, self_attention).context; }, memory,
      cross_attention, cross_weights);
}

// The new positions' keys and values are projected once and appended to the cache; their
// queries attend over every cached position up to their own.
template <class T>
Tensor<T> TransformerDecoderLayer<T>::step_batch_first(const Tensor<T>& x, TransformerDecoderLayerCache<T>& cache,
                                                       std::size_t position, const AttendOptions& cross_attention,
                                                       Tensor<T>* cross_weights) const {
  auto cached_self_attention = [&](const Tensor<T>& y) {
    AttentionMemory<T> fresh = self_attn.prepare(y, y);
    AttentionMemory<T>& cached = cache.self_attention;
    if (!cached.keys.defined()) {
      cached = std::move(fresh);
    } else {
      cached.keys = concat({cached.keys, fresh.keys}, 1);
      cached.values = cached.keys;
      cached.projected_keys = concat({cached.projected_keys, fresh.projected_keys}, 1);
      cached.projected_values = concat({cached.projected_values, fresh.projected_values}, 1);
    }
    // One new position sees every cached one: no mask to build.
    const bool several = y.shape()[1] > 1;
    return self_attn.attend(y, cached, {.causal = several, .query_offset = position}).context;
  };
  return decoder_layer_pass(*this, x, cached_self_attention, cache.cross_attention, cross_attention, cross_weights);
}

template <class T, class Layer>
TransformerStack<T, Layer>::TransformerStack(const char* stack, const TransformerStackOptions& options)
    : options_(options) {
  if (options.num_layers == 0) {
    throw std::invalid_argument(detail::message(stack, ": num_layers = 0 must be positive"));
  }
  for (std::size_t i = 0; i < options.num_layers; ++i) layers.emplace_back(options.layer);
  this->register_module("layers", layers);
  if (options.final_norm) {
    norm.emplace(norm_options(options.layer));
    this->register_module("norm", *norm);
  }
}

template <class T>
TransformerEncoder<T>::TransformerEncoder(const TransformerStackOptions& options)
    : TransformerStack<T, TransformerEncoderLayer<T>>("TransformerEncoder", options) {}

template <class T>
Tensor<T> TransformerEncoder<T>::forward(const Tensor<T>& src, const AttendOptions& self_attention) const {
  check_sequences<T>("TransformerEncoder", this->options_.layer, {{"src", &src}});
  const bool batch_first = this->options_.layer.batch_first;
  return swap_batch_axis(forward_batch_first(swap_batch_axis(src, batch_first), self_attention), batch_first);
}

template <class T>
Tensor<T> TransformerEncoder<T>::forward_batch_first(const Tensor<T>& x, const AttendOptions& self_attention) const {
  Tensor<T> out = x;
  for (std::size_t i = 0; i < this->layers.size(); ++i) out = this->layers[i].forward_batch_first(out, self_attention);
  return this->norm ? (*this->norm)(out) : out;
}

template <class T>
TransformerDecoder<T>::TransformerDecoder(const TransformerStackOptions& options)
    : TransformerStack<T, TransformerDecoderLayer<T>>("TransformerDecoder", options) {}

template <class T>
Tensor<T> TransformerDecoder<T>::forward(const Tensor<T>& tgt, const Tensor<T>& memory,
                                         const AttendOptions& self_attention,
                                         const AttendOptions& cross_attention) const {
  check_sequences<T>("TransformerDecoder", this->options_.layer, {{"tgt", &tgt}, {"memory", &memory}});
  const bool batch_first = this->options_.layer.batch_first;
  return swap_batch_axis(forward_batch_first(swap_batch_axis(tgt, batch_first), swap_batch_axis(memory, batch_first),
                                             self_attention, cross_attention),
                         batch_first);
}

template <class T>
Tensor<T> TransformerDecoder<T>::forward_batch_first(const Tensor<T>& x, const Tensor<T>& memory,
                                                     const AttendOptions& self_attention,
                                                     const AttendOptions& cross_attention) const {
  Tensor<T> out = x;
  for (std::size_t i = 0; i < this->layers.size(); ++i) {
    const TransformerDecoderLayer<T>& layer = this->layers[i];
    out = layer.forward_batch_first(out, layer.multihead_attn.prepare(memory, memory), self_attention,
                                    cross_attention, nullptr);
  }
  return this->norm ? (*this->norm)(out) : out;
}

template <class T>
TransformerDecoderCache<T> TransformerDecoder<T>::begin(const Tensor<T>& memory,
                                                        const std::optional<Mask>& memory_key_padding) const {
  const TransformerLayerOptions& options = this->options_.layer;
  check_sequences<T>("TransformerDecoder::begin", options, {{"memory", &memory}});
  const Tensor<T> keys = swap_batch_axis(memory, options.batch_first);
  const std::size_t batch = keys.shape()[0], length = keys.shape()[1];
  if (memory_key_padding && memory_key_padding->shape() != Shape{batch, length}) {
    throw shape_error(detail::message("TransformerDecoder::begin: memory ", memory.shape(), ", memory_key_padding ",
                                      memory_key_padding->shape(), ": memory_key_padding must be [B, S] = ",
                                      Shape{batch, length}));
  }
  TransformerDecoderCache<T> cache;
  for (std::size_t i = 0; i < this->layers.size(); ++i) {
    cache.layers_.push_back({.self_attention = {}, .cross_attention = this->layers[i].multihead_attn.prepare(keys, keys)});
  }
  cache.memory_key_padding_ = memory_key_padding;
  cache.heads_ = options.nhead;
  cache.batch_ = batch;
  return cache;
}

template <class T>
TransformerDecoderStep<T> TransformerDecoder<T>::step(TransformerDecoderCache<T>& cache, const Tensor<T>& tgt,
                                                     const TransformerStepOptions& step_options) const {
  const TransformerLayerOptions& options = this->options_.layer;
  const auto& layers = this->layers;
  if (cache.layers_.size() != layers.size() || cache.heads_ != options.nhead) {
    throw std::invalid_argument(detail::message("TransformerDecoder::step: the cache holds ", cache.layers_.size(),
                                                " layers of ", cache.heads_, " heads, this decoder has ", layers.size(),
                                                " of ", options.nhead, ": pass a cache from this decoder's begin()"));
  }
  const std::size_t batch_axis = options.batch_first ? 0 : 1;
  if (tgt.dim() != 3 || tgt.shape()[batch_axis] != cache.batch_ || tgt.shape()[1 - batch_axis] == 0 ||
      tgt.shape()[2] != options.d_model) {
    throw shape_error(detail::message("TransformerDecoder::step: tgt ", tgt.shape(), " must be ",
                                      options.batch_first ? "[B, n, d_model]" : "[n, B, d_model]", " with B = ",
                                      cache.batch_, " (the cache's rows), n >= 1 and d_model = ", options.d_model));
  }
  const AttendOptions cross_attention{.key_padding = cache.memory_key_padding_,
                                      .average_attn_weights = step_options.average_attn_weights};
  TransformerDecoderStep<T> result;
  result.cross_attention.resize(layers.size());
  Tensor<T> x = swap_batch_axis(tgt, options.batch_first);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    x = layers[i].step_batch_first(x, cache.layers_[i], cache.length_, cross_attention, &result.cross_attention[i]);
  }
  if (this->norm) x = (*this->norm)(x);
  cache.length_ += x.shape()[1];
  result.output = swap_batch_axis(x, options.batch_first);
  return result;
}

template <class T>
void TransformerDecoderCache<T>::select(const Indices& rows) {
  check_cache_rows("TransformerDecoderCache::select", rows, batch_);
  const Indices split_rows = head_rows(rows, heads_);
  for (TransformerDecoderLayerCache<T>& layer : layers_) {
    select_rows(layer.self_attention, rows, split_rows);
    select_rows(layer.cross_attention, rows, split_rows);
  }
  if (memory_key_padding_) {
    const std::size_t length = memory_key_padding_->shape()[1];
    Mask selected = Mask::from_shape({rows.size(), length});
    for (std::size_t r = 0; r < rows.size(); ++r) {
      std::copy_n(memory_key_padding_->data() + static_cast<std::size_t>(rows.data()[r]) * length, length,
                  selected.data() + r * length);
    }
    memory_key_padding_ = std::move(selected);
  }
  batch_ = rows.size();
}

template <class T>
void TransformerDecoderCache<T>::select_target(const Indices& rows) {
  check_cache_rows("TransformerDecoderCache::select_target", rows, batch_);
  if (rows.size() != batch_) {
    throw shape_error(detail::message("TransformerDecoderCache::select_target: rows ", rows.shape(),
                                      " must hold one row for each of the cache's ", batch_,
                                      " rows (the memory's rows stay); select() changes their number"));
  }
  const Indices split_rows = head_rows(rows, heads_);
  for (TransformerDecoderLayerCache<T>& layer : layers_) select_rows(layer.self_attention, rows, split_rows);
}

template <class T>
Transformer<T>::Transformer(const TransformerOptions& options)
    : encoder({.layer = options.layer, .num_layers = options.num_encoder_layers, .final_norm = true}),
      decoder({.layer = options.layer, .num_layers = options.num_decoder_layers, .final_norm = true}),
      options_(options) {
  this->register_module("encoder", encoder);
  this->register_module("decoder", decoder);
  // PyTorch's _reset_parameters: xavier_uniform for every parameter of more than one dimension.
  for (auto& [name, parameter] : this->named_parameters()) {
    if (parameter.dim() > 1) init::xavier_uniform(parameter);
  }
}

template <class T>
Tensor<T> Transformer<T>::forward(const Tensor<T>& src, const Tensor<T>& tgt, const TransformerMasks& masks) const {
  check_sequences<T>("Transformer", options_.layer, {{"src", &src}, {"tgt", &tgt}});
  const bool batch_first = this->options_.layer.batch_first;
  const Tensor<T> memory = encoder.forward_batch_first(swap_batch_axis(src, batch_first), masks.source);
  return swap_batch_axis(
      decoder.forward_batch_first(swap_batch_axis(tgt, batch_first), memory, masks.target, masks.memory), batch_first);
}

template class TransformerEncoderLayer<float>;
template class TransformerEncoderLayer<double>;
template class TransformerDecoderLayer<float>;
template class TransformerDecoderLayer<double>;
template class TransformerStack<float, TransformerEncoderLayer<float>>;
template class TransformerStack<double, TransformerEncoderLayer<double>>;
template class TransformerStack<float, TransformerDecoderLayer<float>>;
template class TransformerStack<double, TransformerDecoderLayer<double>>;
template class TransformerEncoder<float>;
template class TransformerEncoder<double>;
template class TransformerDecoder<float>;
template class TransformerDecoder<double>;
template class TransformerDecoderCache<float>;
template class TransformerDecoderCache<double>;
template class Transformer<float>;
template class Transformer<double>;

}  // namespace xgrad::nn
