// The attention family: shape checks, the combined mask, the fused additive score and the
// variants built on them from framework operations.
#include "xgrad/layers/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/dropout.h"
#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/fast_math.h"
#include "xgrad/framework/indexing.h"
#include "xgrad/framework/init.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/matmul.h"
#include "xgrad/framework/reduce.h"
#include "xgrad/framework/softmax.h"

namespace xgrad::nn {
namespace {

std::int64_t extent(std::size_t n) { return static_cast<std::int64_t>(n); }

std::size_t positive(const char* variant, const char* option, std::size_t value) {
  if (value == 0) throw std::invalid_argument(detail::message(variant, ": ", option, " = 0 must be positive"));
  return value;
}

// The feature sizes a variant requires; an unset size may be anything.
struct SizeRule {
  std::optional<std::size_t> query_size = std::nullopt;
  std::optional<std::size_t> key_size = std::nullopt;
  std::optional<std::size_t> value_size = std::nullopt;
  bool query_size_is_key_size = false;  // the score is a dot product of query and key
};

struct AttentionDims {
  std::size_t batch = 0;    // B
  std::size_t queries = 0;  // Tq
  std::size_t keys = 0;     // Tk
};

// Validates one call (`query` is null for prepare) and returns B, Tq and Tk. Every message
// names `op` and all the shapes involved.
template <class T>
AttentionDims check_shapes(const std::string& op, const Tensor<T>* query, const Tensor<T>& keys,
                           const Tensor<T>& values, const Mask* key_padding, const SizeRule& rule) {
  auto fail = [&](const std::string& problem) {
    std::string shapes = query != nullptr ? detail::message("query ", query->shape(), ", ") : std::string();
    shapes += detail::message("keys ", keys.shape(), ", values ", values.shape());
    if (key_padding != nullptr) shapes += detail::message(", key_padding ", key_padding->shape());
    throw shape_error(detail::message(op, ": ", shapes, ": ", problem));
  };
  if ((query != nullptr && query->dim() != 3) || keys.dim() != 3 || values.dim() != 3) {
    fail("expected query [B, Tq, Dq], keys [B, Tk, Dk] and values [B, Tk, Dv]");
  }
  const Shape& ks = keys.shape();
  const Shape& vs = values.shape();
  if (vs[0] != ks[0] || (query != nullptr && query->shape()[0] != ks[0])) fail("the batch sizes B differ");
  if (vs[1] != ks[1]) fail("keys and values have different lengths Tk");
  if (rule.key_size && ks[2] != *rule.key_size) fail(detail::message("the key size Dk must be ", *rule.key_size));
  if (rule.value_size && vs[2] != *rule.value_size) fail(detail::message("the value size Dv must be ", *rule.value_size));
  if (query != nullptr) {
    const std::size_t query_size = query->shape()[2];
    if (rule.query_size && query_size != *rule.query_size) {
      fail(detail::message("the query size Dq must be ", *rule.query_size));
    }
    if (rule.query_size_is_key_size && query_size != ks[2]) fail("the query size Dq must equal the key size Dk");
  }
  if (key_padding != nullptr && !(key_padding->dimension() == 2 && key_padding->shape()[0] == ks[0] &&
                                  key_padding->shape()[1] == ks[1])) {
    fail(detail::message("key_padding must be [B, Tk] = ", Shape{ks[0], ks[1]}));
  }
  return {.batch = ks[0], .queries = query != nullptr ? query->shape()[1] : 0, .keys = ks[1]};
}

template <class T>
void check_prepare(const std::string& variant, const Tensor<T>& keys, const Tensor<T>& values, const SizeRule& rule) {
  check_shapes<T>(variant + "::prepare", nullptr, keys, values, nullptr, rule);
}

template <class T>
AttentionDims check_attend(const std::string& variant, const Tensor<T>& query, const AttentionMemory<T>& memory,
                           const AttendOptions& options, const SizeRule& rule) {
  return check_shapes<T>(variant, &query, memory.keys, memory.values,
                         options.key_padding ? &*options.key_padding : nullptr, rule);
}

// A memory from another variant's prepare() (or none) would otherwise fail deep inside an op.
template <class T>
void require_prepared(const char* variant, const Tensor<T>& projection, const char* name, const Shape& expected) {
  if (!projection.defined() || projection.shape() != expected) {
    throw shape_error(detail::message(variant, ": memory.", name, " is ",
                                      projection.defined() ? to_string(projection.shape()) : std::string("missing"),
                                      ", expected ", expected, ": attend with the memory this attention's prepare() returned"));
  }
}

// The keys each query may not see, [B, Tq, Tk]: padding and, when causal, keys after the
// query's position query_offset + i. nullopt when every query sees every key.
std::optional<Mask> hidden_keys(const AttentionDims& dims, const AttendOptions& options) {
  if (!options.key_padding && !options.causal) return std::nullopt;
  const auto [batch, queries, keys] = dims;
  Mask hidden = Mask::from_shape({batch, queries, keys});
  bool* out = hidden.data();
  const bool* padding = options.key_padding ? options.key_padding->data() : nullptr;
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t i = 0; i < queries; ++i) {
      for (std::size_t j = 0; j < keys; ++j) {
        *out++ = (padding != nullptr && padding[b * keys + j]) || (options.causal && j > options.query_offset + i);
      }
    }
  }
  return hidden;
}

// Also hides the keys j with |j - centre(b, i)| > window.
template <class Centre>
void hide_outside_window(Mask& hidden, const AttentionDims& dims, std::size_t window, Centre centre) {
  bool* out = hidden.data();
  for (std::size_t b = 0; b < dims.batch; ++b) {
    for (std::size_t i = 0; i < dims.queries; ++i) {
      const double c = centre(b, i);
      for (std::size_t j = 0; j < dims.keys; ++j, ++out) {
        if (std::abs(static_cast<double>(j) - c) > static_cast<double>(window)) *out = true;
      }
    }
  }
}

// [B, Tq, 1], true for the queries that see no key at all; nullopt if there are none.
std::optional<Mask> queries_without_keys(const Mask& hidden) {
  const std::size_t keys = hidden.shape()[2];
  Mask rows = Mask::from_shape({hidden.shape()[0], hidden.shape()[1], 1});
  bool any = false;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const bool* row = hidden.data() + r * keys;
    rows.data()[r] = std::all_of(row, row + keys, [](bool h) { return h; });
    any = any || rows.data()[r];
  }
  if (!any) return std::nullopt;
  return rows;
}

template <class T>
Tensor<T> masked_softmax(const Tensor<T>& scores, const std::optional<Mask>& hidden) {
  return hidden ? softmax(scores, -1, *hidden) : softmax(scores, -1);
}

// context = weights values
template <class T>
AttentionOutput<T> weigh_values(const Tensor<T>& weights, const Tensor<T>& values) {
  return {.context = matmul(weights, values), .weights = weights};
}

// scores[b, i, j] = query[b, i] . keys[b, j]
template <class T>
Tensor<T> dot_scores(const Tensor<T>& query, const Tensor<T>& keys) {
  return matmul(query, keys, {.transpose_b = true});
}

// scores[j] = v . tanh(q + keys[j]) for the keys_count rows of `keys` (A = size values each),
// but for those that `skip` (null: none) masks, which keep their score.
template <Isa isa>
struct AdditiveScoreRow {
  template <class T>
  XGRAD_KERNEL static void run(std::size_t keys_count, std::size_t size, const T* q, const T* keys, const T* v,
                               const bool* skip, T* scores) {
    for (std::size_t j = 0; j < keys_count; ++j) {
      if (skip != nullptr && skip[j]) continue;
      const T* k = keys + j * size;
      T total = 0;
#pragma omp simd reduction(+ : total)
      for (std::size_t a = 0; a < size; ++a) total += v[a] * math::tanh(q[a] + k[a]);
      scores[j] = total;
    }
  }
};

// One pair's share of the gradient, g = ds: h = tanh(q + k); dq += g v (1 - h^2); dk += the
// same; dv += g h. The rows never overlap (at worst two of them are the same scratch row).
template <Isa isa>
struct AdditiveScorePairGradient {
  template <class T>
  XGRAD_KERNEL static void run(std::size_t size, T g, const T* q, const T* k, const T* v, T* dq, T* dk, T* dv) {
#pragma omp simd
    for (std::size_t a = 0; a < size; ++a) {
      const T h = math::tanh(q[a] + k[a]);
      const T dpre = g * v[a] * (T(1) - h * h);
      dq[a] += dpre;
      dk[a] += dpre;
      dv[a] += g * h;
    }
  }
};

// s[b, i, j] = v . tanh(q[b, i] + k[b, j]) for q [B, Tq, A], k [B, Tk, A], v [1, A]: Bahdanau's
// score as one node. It saves nothing: backward recomputes each tanh rather than hold the
// B * Tq * Tk * A activations, which for a decoder step would outweigh all else it keeps.
// Pairs that `hidden` ([B, Tq, Tk] or null) masks are not computed: their score is 0, for the
// masked softmax to ignore, and they receive no gradient.
// With h = tanh(q + k) and g = ds[b, i, j]: dq[b, i] += g v (1 - h^2); dk[b, j] += g v (1 - h^2); dv += g h
template <class T>
Tensor<T> additive_scores(const Tensor<T>& query, const Tensor<T>& keys, const Tensor<T>& v, const Mask* hidden) {
  const Shape& qs = query.shape();
  const Shape& ks = keys.shape();
  if (qs.size() != 3 || ks.size() != 3 || qs[0] != ks[0] || ks[2] != qs[2] || v.shape() != Shape{1, qs[2]}) {
    throw shape_error(detail::message("additive_attention_score: projected query ", qs, ", projected keys ", ks,
                                      " and v ", v.shape(), " do not fit (expected [B, Tq, A], [B, Tk, A], [1, A])"));
  }
  const std::size_t batch = qs[0], queries = qs[1], keys_count = ks[1], size = qs[2];
  Array<T> scores = xt::zeros<T>({batch, queries, keys_count});
  T* out = scores.data();
  const bool* skip = hidden != nullptr ? hidden->data() : nullptr;
  const T* pv = v.data();
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t i = 0; i < queries; ++i) {
      const T* q = query.data() + (b * queries + i) * size;
      dispatch<AdditiveScoreRow>(keys_count, size, q, keys.data() + b * keys_count * size, pv,
                                 skip != nullptr ? skip + (out - scores.data()) : nullptr, out);
      out += keys_count;
    }
  }
  return record<T>("additive_attention_score", std::move(scores), {query, keys, v},
                   [batch, queries, keys_count, size](Node<T>& node) {
    const T* pq = node.input(0).data();
    const T* pk = node.input(1).data();
    const T* pv = node.input(2).data();
    const T* gs = node.output_grad().data();
    // Rows of an input that needs no gradient go to a scratch row, keeping the inner loop free of branches.
    std::vector<T> discarded(size);
    T* gq = node.needs_grad(0) ? node.input_grad(0).data() : nullptr;
    T* gk = node.needs_grad(1) ? node.input_grad(1).data() : nullptr;
    T* gv = node.needs_grad(2) ? node.input_grad(2).data() : discarded.data();
    auto row = [&](T* base, std::size_t index) { return base != nullptr ? base + index * size : discarded.data(); };
    for (std::size_t b = 0; b < batch; ++b) {
      for (std::size_t i = 0; i < queries; ++i) {
        const std::size_t query_row = b * queries + i;
        const T* q = pq + query_row * size;
        T* dq = row(gq, query_row);
        for (std::size_t j = 0; j < keys_count; ++j) {
          const T g = gs[query_row * keys_count + j];
          if (g == T(0)) continue;  // hidden pairs among them: the softmax sends them no gradient
          dispatch<AdditiveScorePairGradient>(size, g, q, pk + (b * keys_count + j) * size, pv, dq,
                                              row(gk, b * keys_count + j), gv);
        }
      }
    }
  }, ValuesRead{.inputs = std::nullopt, .outputs = false});
}

// x [B, T, H * d] -> [B * H, T, d]: one matrix per batch entry and head.
template <class T>
Tensor<T> split_heads(const Tensor<T>& x, std::size_t heads) {
  const std::size_t batch = x.shape()[0], steps = x.shape()[1];
  const Tensor<T> per_head = permute(reshape(x, {extent(batch), extent(steps), extent(heads), -1}), {0, 2, 1, 3});
  return reshape(per_head, {extent(batch * heads), extent(steps), -1});
}

// x [B * H, T, d] -> [B, T, H * d]
template <class T>
Tensor<T> merge_heads(const Tensor<T>& x, std::size_t heads) {
  const std::size_t batch = x.shape()[0] / heads, steps = x.shape()[1];
  const Tensor<T> per_step = permute(reshape(x, {extent(batch), extent(heads), extent(steps), -1}), {0, 2, 1, 3});
  return reshape(per_step, {extent(batch), extent(steps), -1});
}

// hidden [B, Tq, Tk] repeated for each head: [B * H, Tq, Tk], matching split_heads.
Mask repeat_for_heads(const Mask& hidden, std::size_t heads) {
  const std::size_t batch = hidden.shape()[0], block = hidden.size() / batch;
  Mask repeated = Mask::from_shape({batch * heads, hidden.shape()[1], hidden.shape()[2]});
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t h = 0; h < heads; ++h) {
      std::copy_n(hidden.data() + b * block, block, repeated.data() + (b * heads + h) * block);
    }
  }
  return repeated;
}

// The memory of the variants whose only key/value work is a projection of the keys.
template <class T>
AttentionMemory<T> with_projected_keys(const char* variant, const Tensor<T>& keys, const Tensor<T>& values,
                                       const Linear<T>& projection) {
  check_prepare<T>(variant, keys, values, {.key_size = projection.options().in_features});
  return {.keys = keys, .values = values, .projected_keys = projection(keys), .projected_values = {}};
}

}  // namespace

template <class T>
AttentionMemory<T> Attention<T>::prepare(const Tensor<T>& keys, const Tensor<T>& values) const {
  return {.keys = keys, .values = values, .projected_keys = {}, .projected_values = {}};
}

template <class T>
AttentionOutput<T> DotAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                           const AttendOptions& options) const {
  const AttentionDims dims = check_attend("DotAttention", query, memory, options, {.query_size_is_key_size = true});
  const Tensor<T> scores = dot_scores(query, memory.keys);
  return weigh_values(masked_softmax(scores, hidden_keys(dims, options)), memory.values);
}

// scores = q . k / sqrt(Dk)
template <class T>
AttentionOutput<T> ScaledDotAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                                 const AttendOptions& options) const {
  const AttentionDims dims =
      check_attend("ScaledDotAttention", query, memory, options, {.query_size_is_key_size = true});
  const T scale = T(1) / std::sqrt(static_cast<T>(memory.keys.shape()[2]));
  const Tensor<T> scores = dot_scores(query, memory.keys) * scale;
  return weigh_values(masked_softmax(scores, hidden_keys(dims, options)), memory.values);
}

template <class T>
GeneralAttention<T>::GeneralAttention(const GeneralAttentionOptions& options)
    : key_projection({.in_features = positive("GeneralAttention", "key_size", options.key_size),
                      .out_features = positive("GeneralAttention", "query_size", options.query_size),
                      .bias = false}) {
  this->register_module("key_projection", key_projection);
}

template <class T>
AttentionMemory<T> GeneralAttention<T>::prepare(const Tensor<T>& keys, const Tensor<T>& values) const {
  return with_projected_keys("GeneralAttention", keys, values, key_projection);
}

// scores = q . (W k)
template <class T>
AttentionOutput<T> GeneralAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                               const AttendOptions& options) const {
  const LinearOptions& sizes = key_projection.options();
  const AttentionDims dims = check_attend("GeneralAttention", query, memory, options,
                                          {.query_size = sizes.out_features, .key_size = sizes.in_features});
  require_prepared("GeneralAttention", memory.projected_keys, "projected_keys",
                   {dims.batch, dims.keys, sizes.out_features});
  const Tensor<T> scores = dot_scores(query, memory.projected_keys);
  return weigh_values(masked_softmax(scores, hidden_keys(dims, options)), memory.values);
}

template <class T>
AdditiveAttention<T>::AdditiveAttention(const AdditiveAttentionOptions& options)
    : query_projection({.in_features = positive("AdditiveAttention", "query_size", options.query_size),
                        .out_features = positive("AdditiveAttention", "attention_size", options.attention_size),
                        .bias = false}),
      key_projection({.in_features = positive("AdditiveAttention", "key_size", options.key_size),
                      .out_features = options.attention_size,
                      .bias = true}),
      score({.in_features = options.attention_size, .out_features = 1, .bias = false}) {
  this->register_module("query_projection", query_projection);
  this->register_module("key_projection", key_projection);
  this->register_module("score", score);
}

template <class T>
AttentionMemory<T> AdditiveAttention<T>::prepare(const Tensor<T>& keys, const Tensor<T>& values) const {
  return with_projected_keys("AdditiveAttention", keys, values, key_projection);
}

// scores = v . tanh(W_q q + (W_k k + b)), the key half taken from the prepared memory
template <class T>
AttentionOutput<T> AdditiveAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                                const AttendOptions& options) const {
  const std::size_t attention_size = score.options().in_features;
  const AttentionDims dims =
      check_attend("AdditiveAttention", query, memory, options,
                   {.query_size = query_projection.options().in_features, .key_size = key_projection.options().in_features});
  require_prepared("AdditiveAttention", memory.projected_keys, "projected_keys",
                   {dims.batch, dims.keys, attention_size});
  const std::optional<Mask> hidden = hidden_keys(dims, options);
  const Tensor<T> scores = additive_scores(query_projection(query), memory.projected_keys, score.weight,
                                           hidden ? &*hidden : nullptr);
  return weigh_values(masked_softmax(scores, hidden), memory.values);
}

template <class T>
MultiheadAttention<T>::MultiheadAttention(const MultiheadAttentionOptions& options)
    : out_proj({.in_features = positive("MultiheadAttention", "embed_dim", options.embed_dim),
                .out_features = options.embed_dim,
                .bias = options.bias}),
      options_(options) {
  const std::size_t embed = options.embed_dim;
  if (options.num_heads == 0 || embed % options.num_heads != 0) {
    throw std::invalid_argument(detail::message("MultiheadAttention: num_heads = ", options.num_heads,
                                                " must be positive and divide embed_dim = ", embed));
  }
  if (!(options.dropout >= 0.0 && options.dropout <= 1.0)) {
    throw std::invalid_argument(detail::message("MultiheadAttention: dropout = ", options.dropout, " must lie in [0, 1]"));
  }
  // PyTorch's order and initialisation: xavier_uniform in_proj_weight, zero biases.
  in_proj_weight = this->register_parameter("in_proj_weight", Tensor<T>::zeros({3 * embed, embed}));
  init::xavier_uniform(in_proj_weight);
  if (options.bias) {
    in_proj_bias = this->register_parameter("in_proj_bias", Tensor<T>::zeros({3 * embed}));
    init::constant(out_proj.bias, 0.0);
  }
  this->register_module("out_proj", out_proj);
}

namespace {
// The query (part 0), key (1) or value (2) projection of a packed in_proj: x W_part^T + b_part.
template <class T>
Tensor<T> project_part(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias, std::size_t part) {
  const std::int64_t embed = extent(weight.shape()[1]);
  const std::int64_t start = extent(part) * embed;
  const Tensor<T> part_bias = bias.defined() ? slice(bias, 0, start, start + embed) : Tensor<T>();
  return linear(x, slice(weight, 0, start, start + embed), part_bias);
}
}  // namespace

// projected_keys and projected_values hold the projected keys and values split by head, [B * H, Tk, E / H].
template <class T>
AttentionMemory<T> MultiheadAttention<T>::prepare(const Tensor<T>& keys, const Tensor<T>& values) const {
  check_prepare<T>("MultiheadAttention", keys, values, {.key_size = options_.embed_dim, .value_size = options_.embed_dim});
  const std::size_t heads = options_.num_heads;
  return {.keys = keys,
          .values = values,
          .projected_keys = split_heads(project_part(keys, in_proj_weight, in_proj_bias, 1), heads),
          .projected_values = split_heads(project_part(values, in_proj_weight, in_proj_bias, 2), heads)};
}

// Per head: weights = softmax(q_h k_h^T / sqrt(E / H)); context = out_proj(concat_h(weights v_h)).
template <class T>
AttentionOutput<T> MultiheadAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                                 const AttendOptions& options) const {
  const std::size_t embed = options_.embed_dim, heads = options_.num_heads, head_size = embed / heads;
  const AttentionDims dims = check_attend("MultiheadAttention", query, memory, options,
                                          {.query_size = embed, .key_size = embed, .value_size = embed});
  const Shape prepared{dims.batch * heads, dims.keys, head_size};
  require_prepared("MultiheadAttention", memory.projected_keys, "projected_keys", prepared);
  require_prepared("MultiheadAttention", memory.projected_values, "projected_values", prepared);
  const T scale = T(1) / std::sqrt(static_cast<T>(head_size));
  const Tensor<T> q = split_heads(project_part(query, in_proj_weight, in_proj_bias, 0) * scale, heads);
  const std::optional<Mask> hidden = hidden_keys(dims, options);
  Tensor<T> weights = hidden ? softmax(dot_scores(q, memory.projected_keys), -1, repeat_for_heads(*hidden, heads))
                             : softmax(dot_scores(q, memory.projected_keys), -1);
  weights = dropout(weights, options_.dropout, this->is_training());
  Tensor<T> context = out_proj(merge_heads(matmul(weights, memory.projected_values), heads));
  // out_proj would give its bias to a query that sees no key; the interface promises zeros.
  if (hidden) {
    if (const std::optional<Mask> blind = queries_without_keys(*hidden)) context = masked_fill(context, *blind, T(0));
  }
  const Tensor<T> averaged =
      mean(reshape(weights, {extent(dims.batch), extent(heads), extent(dims.queries), extent(dims.keys)}), {1});
  return {.context = context, .weights = averaged};
}

template <class T>
LocalAttention<T>::LocalAttention(const LocalAttentionOptions& options)
    : key_projection({.in_features = positive("LocalAttention", "key_size", options.key_size),
                      .out_features = positive("LocalAttention", "query_size", options.query_size),
                      .bias = false}),
      options_(options) {
  this->register_module("key_projection", key_projection);
  if (options.alignment == LocalAlignment::predictive) {
    // The Gaussian's standard deviation is window / 2.
    positive("LocalAttention (local-p)", "window", options.window);
    if (options_.predictor_size == 0) options_.predictor_size = options.query_size;
    position_hidden.emplace(
        LinearOptions{.in_features = options.query_size, .out_features = options_.predictor_size, .bias = false});
    position_score.emplace(LinearOptions{.in_features = options_.predictor_size, .out_features = 1, .bias = false});
    this->register_module("position_hidden", *position_hidden);
    this->register_module("position_score", *position_score);
  }
}

template <class T>
AttentionMemory<T> LocalAttention<T>::prepare(const Tensor<T>& keys, const Tensor<T>& values) const {
  return with_projected_keys("LocalAttention", keys, values, key_projection);
}

// local-m: weights = softmax over the window of q . (W k), the window centred on query_offset + i.
// local-p: the same centred on p = S sigmoid(v_p . tanh(W_p q)), times exp(-(j - p)^2 / (2 (D / 2)^2)).
template <class T>
AttentionOutput<T> LocalAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                             const AttendOptions& options) const {
  const AttentionDims dims = check_attend("LocalAttention", query, memory, options,
                                          {.query_size = options_.query_size, .key_size = options_.key_size});
  require_prepared("LocalAttention", memory.projected_keys, "projected_keys",
                   {dims.batch, dims.keys, options_.query_size});
  const Tensor<T> scores = dot_scores(query, memory.projected_keys);
  Mask hidden = hidden_keys(dims, options).value_or(Mask(xt::zeros<bool>({dims.batch, dims.queries, dims.keys})));
  const std::size_t window = options_.window;
  if (options_.alignment == LocalAlignment::monotonic) {
    hide_outside_window(hidden, dims, window,
                        [&](std::size_t, std::size_t i) { return static_cast<double>(options.query_offset + i); });
    return weigh_values(softmax(scores, -1, hidden), memory.values);
  }
  // S: each sequence's number of keys that are not padding.
  Array<T> lengths = Array<T>::from_shape({dims.batch, 1, 1});
  for (std::size_t b = 0; b < dims.batch; ++b) {
    std::size_t count = dims.keys;
    if (options.key_padding) {
      const bool* row = options.key_padding->data() + b * dims.keys;
      count -= static_cast<std::size_t>(std::count(row, row + dims.keys, true));
    }
    lengths.data()[b] = static_cast<T>(count);
  }
  const Tensor<T> centres =  // [B, Tq, 1]
      sigmoid((*position_score)(tanh((*position_hidden)(query)))) * Tensor<T>(std::move(lengths));
  hide_outside_window(hidden, dims, window, [&](std::size_t b, std::size_t i) {
    return static_cast<double>(centres.data()[b * dims.queries + i]);
  });
  Array<T> key_positions = Array<T>::from_shape({1, 1, dims.keys});
  for (std::size_t j = 0; j < dims.keys; ++j) key_positions.data()[j] = static_cast<T>(j);
  const Tensor<T> offsets = Tensor<T>(std::move(key_positions)) - centres;  // [B, Tq, Tk]
  // 2 (D / 2)^2 = D^2 / 2
  const T inverse_spread = T(2) / static_cast<T>(window * window);
  const Tensor<T> gaussian = exp(offsets * offsets * -inverse_spread);
  return weigh_values(softmax(scores, -1, hidden) * gaussian, memory.values);
}

template class Attention<float>;
template class Attention<double>;
template class DotAttention<float>;
template class DotAttention<double>;
template class ScaledDotAttention<float>;
template class ScaledDotAttention<double>;
template class GeneralAttention<float>;
template class GeneralAttention<double>;
template class AdditiveAttention<float>;
template class AdditiveAttention<double>;
template class MultiheadAttention<float>;
template class MultiheadAttention<double>;
template class LocalAttention<float>;
template class LocalAttention<double>;

}  // namespace xgrad::nn
