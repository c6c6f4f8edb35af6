#pragma once
// The attention family behind one interface. A query [B, Tq, Dq] attends over keys
// [B, Tk, Dk] and values [B, Tk, Dv], giving a context [B, Tq, Dv] and the weights
// [B, Tq, Tk] (each row a distribution over the keys it may see).
//
// Work that depends only on keys and values (additive attention's key projection,
// multi-head attention's key and value projections) is done once by prepare(); a decoder
// prepares the encoder memory once per batch and calls attend() at every step.
//
// Masks never produce NaN: a query whose every key is masked gets all-zero weights and a
// zero context.

#include <cstddef>
#include <optional>

#include "xgrad/layers/linear.h"
#include "xgrad/layers/module.h"

namespace xgrad::nn {

template <class T>
struct AttentionOutput {
  Tensor<T> context;  // [B, Tq, Dv]
  Tensor<T> weights;  // [B, Tq, Tk]
};

// Keys and values with whatever the variant derived from them.
template <class T>
struct AttentionMemory {
  Tensor<T> keys;              // [B, Tk, Dk]
  Tensor<T> values;            // [B, Tk, Dv]
  Tensor<T> projected_keys;    // variant-specific; undefined if the variant has none
  Tensor<T> projected_values;  // variant-specific; undefined if the variant has none
};

struct AttendOptions {
  // [B, Tk], true where a key is padding (PyTorch's key_padding_mask convention).
  std::optional<Mask> key_padding = std::nullopt;
  // Query i (at position query_offset + i) may only see keys j <= query_offset + i.
  bool causal = false;
  // Position of the first query in its sequence: a decoder attending one step at a time
  // passes its step number (used by causal masks and local attention's monotonic window).
  std::size_t query_offset = 0;
};

template <class T = float>
class Attention : public Module<T> {
 public:
  // Default: keys and values as they are.
  virtual AttentionMemory<T> prepare(const Tensor<T>& keys, const Tensor<T>& values) const;
  virtual AttentionOutput<T> attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                    const AttendOptions& options = {}) const = 0;
  AttentionOutput<T> forward(const Tensor<T>& query, const Tensor<T>& keys, const Tensor<T>& values,
                             const AttendOptions& options = {}) const {
    return attend(query, prepare(keys, values), options);
  }
};

// Luong dot: score(q, k) = q . k  (Dq == Dk). No parameters.
template <class T = float>
class DotAttention : public Attention<T> {
 public:
  AttentionOutput<T> attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                            const AttendOptions& options = {}) const override;
};

// Scaled dot product: score(q, k) = q . k / sqrt(Dk). No parameters.
template <class T = float>
class ScaledDotAttention : public Attention<T> {
 public:
  AttentionOutput<T> attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                            const AttendOptions& options = {}) const override;
};

struct GeneralAttentionOptions {
  std::size_t query_size = 0;  // Dq
  std::size_t key_size = 0;    // Dk
};

// Luong general (bilinear): score(q, k) = q . (W k), W [Dq, Dk] = key_projection.weight.
// prepare() projects the keys once.
template <class T = float>
class GeneralAttention : public Attention<T> {
 public:
  explicit GeneralAttention(const GeneralAttentionOptions& options);
  AttentionMemory<T> prepare(const Tensor<T>& keys, const Tensor<T>& values) const override;
  AttentionOutput<T> attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                            const AttendOptions& options = {}) const override;
  Linear<T> key_projection;  // Dk -> Dq, no bias
};

struct AdditiveAttentionOptions {
  std::size_t query_size = 0;      // Dq
  std::size_t key_size = 0;        // Dk
  std::size_t attention_size = 0;  // A
};

// Bahdanau additive (concat): score(q, k) = v . tanh(W_q q + W_k k + b), with
// query_projection (Dq -> A, no bias), key_projection (Dk -> A, with the bias b) and
// score (A -> 1, no bias). prepare() projects the keys once per batch; the score is one
// fused node.
template <class T = float>
class AdditiveAttention : public Attention<T> {
 public:
  explicit AdditiveAttention(const AdditiveAttentionOptions& options);
  AttentionMemory<T> prepare(const Tensor<T>& keys, const Tensor<T>& values) const override;
  AttentionOutput<T> attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                            const AttendOptions& options = {}) const override;
  Linear<T> query_projection;
  Linear<T> key_projection;
  Linear<T> score;
};

struct MultiheadAttentionOptions {
  std::size_t embed_dim = 0;  // Dq == Dk == Dv == embed_dim
  std::size_t num_heads = 1;  // must divide embed_dim
  double dropout = 0.0;       // on the attention weights, in training mode
  bool bias = true;
};

// PyTorch's nn.MultiheadAttention (batch_first): parameters in_proj_weight [3E, E],
// in_proj_bias [3E], out_proj.weight [E, E], out_proj.bias [E]. The weights returned are
// averaged over heads (after dropout), as PyTorch does by default. Self-attention passes the
// same tensor as query, keys and values. prepare() keeps the projected keys and values split
// by head, [B * H, Tk, E / H]. A query that sees no key gets a zero context, where PyTorch
// gives NaN (and out_proj alone would give its bias).
template <class T = float>
class MultiheadAttention : public Attention<T> {
 public:
  explicit MultiheadAttention(const MultiheadAttentionOptions& options);
  AttentionMemory<T> prepare(const Tensor<T>& keys, const Tensor<T>& values) const override;
  AttentionOutput<T> attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                            const AttendOptions& options = {}) const override;
  Tensor<T> in_proj_weight;
  Tensor<T> in_proj_bias;
  Linear<T> out_proj;

 private:
  MultiheadAttentionOptions options_;
};

enum class LocalAlignment {
  monotonic,   // local-m: the window is centred on the query's own position
  predictive,  // local-p: p = S * sigmoid(v_p . tanh(W_p q)), S = the sequence's key count
};

struct LocalAttentionOptions {
  std::size_t query_size = 0;   // Dq
  std::size_t key_size = 0;     // Dk
  std::size_t window = 2;       // D: keys within [p - D, p + D] are seen; local-p needs D >= 1
  LocalAlignment alignment = LocalAlignment::predictive;
  std::size_t predictor_size = 0;  // hidden size of W_p (local-p); 0 means query_size
};

// Luong local attention with the general score: outside the window the weight is 0; in
// local-p the weights are also multiplied by exp(-(s - p)^2 / (2 (D/2)^2)), as in the
// paper. Parameters: key_projection (the general score's W), and for local-p
// position_hidden (W_p, Dq -> predictor_size, no bias) and position_score (v_p, -> 1, no bias).
template <class T = float>
class LocalAttention : public Attention<T> {
 public:
  explicit LocalAttention(const LocalAttentionOptions& options);
  AttentionMemory<T> prepare(const Tensor<T>& keys, const Tensor<T>& values) const override;
  AttentionOutput<T> attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                            const AttendOptions& options = {}) const override;
  Linear<T> key_projection;
  std::optional<Linear<T>> position_hidden;  // local-p only
  std::optional<Linear<T>> position_score;   // local-p only

 private:
  LocalAttentionOptions options_;
};

}  // namespace xgrad::nn
