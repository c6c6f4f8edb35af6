#pragma once
// The attention family behind one interface. A query [B, Tq, Dq] attends over keys
// [B, Tk, Dk] and values [B, Tk, Dv], giving a context [B, Tq, Dv] and the weights
// [B, Tq, Tk] (each row a distribution over the keys it may see). MultiheadAttention also
// takes sequence-first inputs (MultiheadAttentionOptions::batch_first).
//
// Work that depends only on keys and values (additive attention's key projection,
// multi-head attention's key and value projections) is done once by prepare(); a decoder
// prepares the encoder memory once per batch and calls attend() at every step.
//
// Which keys a query sees: AttendOptions' key_padding, causal and attn_mask, all combined.
// Masks never produce NaN: a query whose every key is masked gets all-zero weights and a
// zero context (PyTorch gives NaN there).

#include <cstddef>
#include <memory>
#include <optional>
#include <variant>

#include "xgrad/layers/linear.h"
#include "xgrad/layers/module.h"

namespace xgrad::nn {

template <class T>
struct AttentionOutput {
  Tensor<T> context;  // [B, Tq, Dv] ([Tq, B, E] for sequence-first MultiheadAttention)
  // [B, Tq, Tk]; [B, H, Tq, Tk] when AttendOptions::average_attn_weights is false;
  // undefined when AttendOptions::need_weights is false. Batch-first in every layout, as in PyTorch.
  Tensor<T> weights;
};

// Keys and values with whatever the variant derived from them.
template <class T>
struct AttentionMemory {
  Tensor<T> keys;              // [B, Tk, Dk], as prepare() was given them ([Tk, B, Dk] sequence-first)
  Tensor<T> values;            // [B, Tk, Dv], likewise
  Tensor<T> projected_keys;    // variant-specific; undefined if the variant has none
  Tensor<T> projected_values;  // variant-specific; undefined if the variant has none
};

// PyTorch's attn_mask: which keys each query may see, on top of key padding and causal.
// Either boolean (true = may not attend) or additive (added to the scores before the
// softmax; -inf blocks a key, and NaN or +inf are refused with std::invalid_argument naming
// attn_mask), shaped [Tq, Tk] (the same for every batch entry and head) or [B * H, Tq, Tk]
// (row b * H + h for batch entry b and head h, PyTorch's layout; H = 1 for the single-head
// variants, so [B, Tq, Tk] there). A shape that fits neither is a shape_error from attend().
//
// It holds its values through a shared pointer to const, so that copying an AttendOptions
// (a decoder changes query_offset on a copy at every step) never copies a mask, and one mask
// serves every layer that attends with it. The constructors are implicit, so that
// {.attn_mask = blocked} reads as PyTorch's attn_mask=blocked. The blocked keys (true, or
// -inf) are found once, here; additive values may be float or double, whichever the caller
// has, and become a tensor of the attention's type at each call.
class AttentionMask {
 public:
  AttentionMask() = default;  // no mask
  AttentionMask(Mask blocked);            // NOLINT(google-explicit-constructor): see above
  AttentionMask(Array<float> additive);   // NOLINT(google-explicit-constructor)
  AttentionMask(Array<double> additive);  // NOLINT(google-explicit-constructor)

  bool defined() const noexcept { return values_ != nullptr; }
  bool is_additive() const noexcept;
  // The mask's shape; [] when undefined.
  Shape shape() const;
  // The keys it blocks (true, or -inf), in the mask's shape; null when it blocks none.
  const Mask* blocked() const noexcept;
  // The additive values as T, in the mask's shape; undefined for a boolean mask.
  template <class T>
  Tensor<T> additive() const;

 private:
  struct Values {
    std::variant<Mask, Array<float>, Array<double>> given;
    Mask blocked_by_minus_infinity;  // additive masks only
    bool blocks_any = false;
  };
  std::shared_ptr<const Values> values_;
};

struct AttendOptions {
  // [B, Tk], true where a key is padding (PyTorch's key_padding_mask convention).
  std::optional<Mask> key_padding = std::nullopt;
  // Query i (at position query_offset + i) may only see keys j <= query_offset + i.
  bool causal = false;
  // Position of the first query in its sequence: a decoder attending one step at a time
  // passes its step number (used by causal masks and local attention's monotonic window).
  std::size_t query_offset = 0;
  // PyTorch's attn_mask (see AttentionMask); undefined: none.
  AttentionMask attn_mask = {};
  // PyTorch's need_weights: false leaves AttentionOutput::weights undefined and skips what
  // only the returned weights need (MultiheadAttention's head average).
  bool need_weights = true;
  // PyTorch's average_attn_weights: false returns every head's weights, [B, H, Tq, Tk]
  // (H = 1 for the single-head variants), instead of their mean [B, Tq, Tk].
  bool average_attn_weights = true;
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
  std::size_t embed_dim = 0;  // E == Dq
  std::size_t num_heads = 1;  // must divide embed_dim
  double dropout = 0.0;       // on the attention weights, in training mode
  bool bias = true;
  std::size_t kdim = 0;       // Dk; 0 means embed_dim
  std::size_t vdim = 0;       // Dv; 0 means embed_dim
  // true: query [B, Tq, E], keys [B, Tk, Dk], values [B, Tk, Dv], context [B, Tq, E].
  // false: [Tq, B, E], [Tk, B, Dk], [Tk, B, Dv] and [Tq, B, E], as PyTorch's default. xgrad's
  // default is batch-first, unlike PyTorch's, because every other xgrad layer is.
  bool batch_first = true;
};

// PyTorch's nn.MultiheadAttention. Parameters, in PyTorch's order and initialisation: when
// kdim and vdim are embed_dim, in_proj_weight [3E, E] (query, key and value rows stacked);
// otherwise q_proj_weight [E, E], k_proj_weight [E, Dk] and v_proj_weight [E, Dv] instead;
// then in_proj_bias [3E], out_proj.weight [E, E], out_proj.bias [E] (biases only with bias).
// Self-attention passes the same tensor as query, keys and values. prepare() keeps the
// projected keys and values split by head, [B * H, Tk, E / H], in either layout; the returned
// weights are taken after dropout, as in PyTorch, and are batch-first in either layout.
//
// Where it differs from PyTorch, which gives NaN in both cases: a query that sees no key
// (masked in every head) gets zero weights and a zero context (out_proj alone would give its
// bias). A query masked in some heads only gets zero weights and a zero per-head context in
// those heads and the others' as usual; its head-averaged weights then sum to less than 1.
// Sequence-first inputs cost no copy: the layout is folded into the permutations that split
// and merge the heads.
template <class T = float>
class MultiheadAttention : public Attention<T> {
 public:
  explicit MultiheadAttention(const MultiheadAttentionOptions& options);
  // The options with kdim and vdim resolved (never 0).
  const MultiheadAttentionOptions& options() const noexcept { return options_; }
  AttentionMemory<T> prepare(const Tensor<T>& keys, const Tensor<T>& values) const override;
  AttentionOutput<T> attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                            const AttendOptions& options = {}) const override;
  Tensor<T> in_proj_weight;  // undefined when kdim or vdim differs from embed_dim
  Tensor<T> q_proj_weight;   // these three are defined only then
  Tensor<T> k_proj_weight;
  Tensor<T> v_proj_weight;
  Tensor<T> in_proj_bias;
  Linear<T> out_proj;

 private:
  // The query (part 0), key (1) or value (2) projection: x W_part^T + b_part.
  Tensor<T> project(const Tensor<T>& x, std::size_t part) const;
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
