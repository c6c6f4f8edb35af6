// The attention family: shape checks, the combined mask, the fused additive score and the
// variants built on them from framework operations.
#include "xgrad/layers/attention.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
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

// The feature sizes and layout a variant requires; an unset size may be anything.
struct SizeRule {
  std::optional<std::size_t> query_size = std::nullopt;
  std::optional<std::size_t> key_size = std::nullopt;
  std::optional<std::size_t> value_size = std::nullopt;
  bool query_size_is_key_size = false;  // the score is a dot product of query and key
  std::size_t heads = 1;                // H, for the shape of a per-head attn_mask [B * H, Tq, Tk]
  bool batch_first = true;              // false: inputs are [T, B, D]
};

struct AttentionDims {
  std::size_t batch = 0;    // B
  std::size_t queries = 0;  // Tq
  std::size_t keys = 0;     // Tk
};

// Validates one call (`query` and `options` are null for prepare) and returns B, Tq and Tk.
// Every message names `op` and all the shapes involved, as the caller gave them.
template <class T>
AttentionDims check_shapes(const std::string& op, const Tensor<T>* query, const Tensor<T>& keys,
                           const Tensor<T>& values, const AttendOptions* options, const SizeRule& rule) {
  const Mask* key_padding = options != nullptr && options->key_padding ? &*options->key_padding : nullptr;
  const AttentionMask* attn_mask = options != nullptr && options->attn_mask.defined() ? &options->attn_mask : nullptr;
  auto fail = [&](const std::string& problem) {
    std::string shapes = query != nullptr ? detail::message("query ", query->shape(), ", ") : std::string();
    shapes += detail::message("keys ", keys.shape(), ", values ", values.shape());
    if (key_padding != nullptr) shapes += detail::message(", key_padding ", key_padding->shape());
    if (attn_mask != nullptr) shapes += detail::message(", attn_mask ", attn_mask->shape());
    throw shape_error(detail::message(op, ": ", shapes, ": ", problem));
  };
  if ((query != nullptr && query->dim() != 3) || keys.dim() != 3 || values.dim() != 3) {
    fail(rule.batch_first ? "expected query [B, Tq, Dq], keys [B, Tk, Dk] and values [B, Tk, Dv]"
                          : "expected query [Tq, B, Dq], keys [Tk, B, Dk] and values [Tk, B, Dv] (sequence-first)");
  }
  const std::size_t batch_axis = rule.batch_first ? 0 : 1, time_axis = 1 - batch_axis;
  const Shape& ks = keys.shape();
  const Shape& vs = values.shape();
  const std::size_t batch = ks[batch_axis], key_count = ks[time_axis];
  if (vs[batch_axis] != batch || (query != nullptr && query->shape()[batch_axis] != batch)) {
    fail("the batch sizes B differ");
  }
  if (vs[time_axis] != key_count) fail("keys and values have different lengths Tk");
  if (rule.key_size && ks[2] != *rule.key_size) fail(detail::message("the key size Dk must be ", *rule.key_size));
  if (rule.value_size && vs[2] != *rule.value_size) fail(detail::message("the value size Dv must be ", *rule.value_size));
  if (query != nullptr) {
    const std::size_t query_size = query->shape()[2];
    if (rule.query_size && query_size != *rule.query_size) {
      fail(detail::message("the query size Dq must be ", *rule.query_size));
    }
    if (rule.query_size_is_key_size && query_size != ks[2]) fail("the query size Dq must equal the key size Dk");
  }
  if (key_padding != nullptr && !(key_padding->dimension() == 2 && key_padding->shape()[0] == batch &&
                                  key_padding->shape()[1] == key_count)) {
    fail(detail::message("key_padding must be [B, Tk] = ", Shape{batch, key_count}));
  }
  const std::size_t query_count = query != nullptr ? query->shape()[time_axis] : 0;
  if (attn_mask != nullptr) {
    const Shape shared{query_count, key_count}, per_head{batch * rule.heads, query_count, key_count};
    const Shape shape = attn_mask->shape();
    if (shape != shared && shape != per_head) {
      fail(detail::message("attn_mask must be [Tq, Tk] = ", shared, " or [B * H, Tq, Tk] = ", per_head));
    }
  }
  return {.batch = batch, .queries = query_count, .keys = key_count};
}

template <class T>
void check_prepare(const std::string& variant, const Tensor<T>& keys, const Tensor<T>& values, const SizeRule& rule) {
  check_shapes<T>(variant + "::prepare", nullptr, keys, values, nullptr, rule);
}

template <class T>
AttentionDims check_attend(const std::string& variant, const Tensor<T>& query, const AttentionMemory<T>& memory,
                           const AttendOptions& options, const SizeRule& rule) {
  return check_shapes<T>(variant, &query, memory.keys, memory.values, &options, rule);
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

// The keys each query may not see, [B * heads, Tq, Tk] (row b * heads + h, as split_heads
// orders them; heads = 1 for the single-head variants): padding, when causal the keys after
// the query's position query_offset + i, and those attn_mask blocks (true, or -inf).
// nullopt when every query sees every key.
std::optional<Mask> hidden_keys(const AttentionDims& dims, const AttendOptions& options, std::size_t heads = 1) {
  const Mask* blocked = options.attn_mask.blocked();
  if (!options.key_padding && !options.causal && blocked == nullptr) return std::nullopt;
  const auto [batch, queries, keys] = dims;
  const std::size_t block = queries * keys;
  // A [Tq, Tk] attn_mask is the same for every row, a [B * heads, Tq, Tk] one is not.
  const bool blocked_per_row = blocked != nullptr && blocked->dimension() == 3;
  Mask hidden = Mask::from_shape({batch * heads, queries, keys});
  const bool* padding = options.key_padding ? options.key_padding->data() : nullptr;
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t h = 0; h < heads; ++h) {
      const std::size_t row = b * heads + h;
      bool* out = hidden.data() + row * block;
      if (h > 0 && !blocked_per_row) {  // every head of entry b hides the same keys
        std::copy_n(out - block, block, out);
        continue;
      }
      const bool* attn = blocked == nullptr ? nullptr : blocked->data() + (blocked_per_row ? row * block : 0);
      for (std::size_t i = 0; i < queries; ++i) {
        for (std::size_t j = 0; j < keys; ++j) {
          *out++ = (padding != nullptr && padding[b * keys + j]) || (options.causal && j > options.query_offset + i) ||
                   (attn != nullptr && attn[i * keys + j]);
        }
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

// True for the queries that see no key in any head, shaped as a context of one feature:
// [B, Tq, 1], or [Tq, B, 1] sequence-first; `hidden` is [B * heads, Tq, Tk] (hidden_keys).
// nullopt if there are none.
std::optional<Mask> queries_without_keys(const Mask& hidden, std::size_t heads, bool batch_first) {
  const std::size_t queries = hidden.shape()[1], keys = hidden.shape()[2], batch = hidden.shape()[0] / heads;
  Mask blind = Mask::from_shape(batch_first ? Shape{batch, queries, 1} : Shape{queries, batch, 1});
  bool any = false;
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t i = 0; i < queries; ++i) {
      bool sees_none = true;
      for (std::size_t h = 0; h < heads && sees_none; ++h) {
        const bool* row = hidden.data() + ((b * heads + h) * queries + i) * keys;
        sees_none = std::all_of(row, row + keys, [](bool hides) { return hides; });
      }
      blind.data()[batch_first ? b * queries + i : i * batch + b] = sees_none;
      any = any || sees_none;
    }
  }
  if (!any) return std::nullopt;
  return blind;
}

template <class T>
Tensor<T> masked_softmax(const Tensor<T>& scores, const std::optional<Mask>& hidden) {
  return hidden ? softmax(scores, -1, *hidden) : softmax(scores, -1);
}

// scores + attn_mask's additive values, if it has any. Its -inf are among hidden_keys too, so
// that the masked softmax gives their keys exactly 0 and no gradient.
template <class T>
Tensor<T> add_attn_mask(const Tensor<T>& scores, const AttendOptions& options) {
  return options.attn_mask.is_additive() ? scores + options.attn_mask.additive<T>() : scores;
}

// What attend() returns of the weights [B * heads, Tq, Tk]: their mean over the heads
// [B, Tq, Tk], every head's [B, heads, Tq, Tk], or nothing, as the options ask.
template <class T>
Tensor<T> returned_weights(const Tensor<T>& weights, std::size_t heads, const AttendOptions& options) {
  if (!options.need_weights) return {};
  if (heads == 1) return options.average_attn_weights ? weights : unsqueeze(weights, 1);
  const Shape& shape = weights.shape();
  const Tensor<T> per_head =
      reshape(weights, {extent(shape[0] / heads), extent(heads), extent(shape[1]), extent(shape[2])});
  return options.average_attn_weights ? mean(per_head, {1}) : per_head;
}

// context = weights values
template <class T>
AttentionOutput<T> weigh_values(const Tensor<T>& weights, const Tensor<T>& values, const AttendOptions& options) {
  return {.context = matmul(weights, values), .weights = returned_weights(weights, 1, options)};
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

// x [B, T, H * d] (or [T, B, H * d] sequence-first) -> [B * H, T, d]: one matrix per batch
// entry and head. The one permutation moves the heads and, sequence-first, the batch too.
template <class T>
Tensor<T> split_heads(const Tensor<T>& x, std::size_t heads, bool batch_first) {
  const Shape& shape = x.shape();
  const std::size_t batch = shape[batch_first ? 0 : 1], steps = shape[batch_first ? 1 : 0];
  const Axes to_batch_head_step = batch_first ? Axes{0, 2, 1, 3} : Axes{1, 2, 0, 3};
  const Tensor<T> per_head =
      permute(reshape(x, {extent(shape[0]), extent(shape[1]), extent(heads), -1}), to_batch_head_step);
  return reshape(per_head, {extent(batch * heads), extent(steps), -1});
}

// x [B * H, T, d] -> [B, T, H * d] (or [T, B, H * d] sequence-first)
template <class T>
Tensor<T> merge_heads(const Tensor<T>& x, std::size_t heads, bool batch_first) {
  const std::size_t batch = x.shape()[0] / heads, steps = x.shape()[1];
  const Axes to_layout = batch_first ? Axes{0, 2, 1, 3} : Axes{2, 0, 1, 3};
  const Tensor<T> per_step = permute(reshape(x, {extent(batch), extent(heads), extent(steps), -1}), to_layout);
  return batch_first ? reshape(per_step, {extent(batch), extent(steps), -1})
                     : reshape(per_step, {extent(steps), extent(batch), -1});
}

// The memory of the variants whose only key/value work is a projection of the keys.
template <class T>
AttentionMemory<T> with_projected_keys(const char* variant, const Tensor<T>& keys, const Tensor<T>& values,
                                       const Linear<T>& projection) {
  check_prepare<T>(variant, keys, values, {.key_size = projection.options().in_features});
  return {.keys = keys, .values = values, .projected_keys = projection(keys), .projected_values = {}};
}

// Where an additive mask is -inf; NaN and +inf are refused (they only ever give NaN weights).
template <class V>
Mask minus_infinities(const Array<V>& additive) {
  Mask found = Mask::from_shape(additive.shape());
  for (std::size_t n = 0; n < additive.size(); ++n) {
    const V value = additive.data()[n];
    if (std::isnan(value) || value == std::numeric_limits<V>::infinity()) {
      throw std::invalid_argument(detail::message("attn_mask: element ", n, " of the additive mask of shape ",
                                                  additive.shape(), " is ", value, "; it must be finite or -inf"));
    }
    found.data()[n] = value == -std::numeric_limits<V>::infinity();
  }
  return found;
}

bool any_true(const Mask& mask) { return std::find(mask.begin(), mask.end(), true) != mask.end(); }

}  // namespace

AttentionMask::AttentionMask(Mask blocked) {
  const bool blocks_any = any_true(blocked);
  values_ = std::make_shared<const Values>(Values{.given = std::move(blocked), .blocked_by_minus_infinity = {},
                                                  .blocks_any = blocks_any});
}

AttentionMask::AttentionMask(Array<float> additive) {
  Mask blocked = minus_infinities(additive);
  const bool blocks_any = any_true(blocked);
  values_ = std::make_shared<const Values>(
      Values{.given = std::move(additive), .blocked_by_minus_infinity = std::move(blocked), .blocks_any = blocks_any});
}

AttentionMask::AttentionMask(Array<double> additive) {
  Mask blocked = minus_infinities(additive);
  const bool blocks_any = any_true(blocked);
  values_ = std::make_shared<const Values>(
      Values{.given = std::move(additive), .blocked_by_minus_infinity = std::move(blocked), .blocks_any = blocks_any});
}

bool AttentionMask::is_additive() const noexcept {
  return values_ != nullptr && !std::holds_alternative<Mask>(values_->given);
}

Shape AttentionMask::shape() const {
  if (values_ == nullptr) return {};
  return std::visit([](const auto& given) { return Shape(given.shape().begin(), given.shape().end()); },
                    values_->given);
}

const Mask* AttentionMask::blocked() const noexcept {
  if (values_ == nullptr || !values_->blocks_any) return nullptr;
  if (const Mask* given = std::get_if<Mask>(&values_->given)) return given;
  return &values_->blocked_by_minus_infinity;
}

template <class T>
Tensor<T> AttentionMask::additive() const {
  if (!is_additive()) return {};
  return std::visit(
      [](const auto& given) {
        using Given = typename std::decay_t<decltype(given)>::value_type;
        if constexpr (std::is_same_v<Given, bool>) {
          return Tensor<T>();
        } else if constexpr (std::is_same_v<Given, T>) {
          return Tensor<T>(given);
        } else {
          return Tensor<T>(Array<T>(xt::cast<T>(given)));
        }
      },
      values_->given);
}

template Tensor<float> AttentionMask::additive<float>() const;
template Tensor<double> AttentionMask::additive<double>() const;

template <class T>
AttentionMemory<T> Attention<T>::prepare(const Tensor<T>& keys, const Tensor<T>& values) const {
  return {.keys = keys, .values = values, .projected_keys = {}, .projected_values = {}};
}

template <class T>
AttentionOutput<T> DotAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                           const AttendOptions& options) const {
  const AttentionDims dims = check_attend("DotAttention", query, memory, options, {.query_size_is_key_size = true});
  const Tensor<T> scores = add_attn_mask(dot_scores(query, memory.keys), options);
  return weigh_values(masked_softmax(scores, hidden_keys(dims, options)), memory.values, options);
}

// scores = q . k / sqrt(Dk)
template <class T>
AttentionOutput<T> ScaledDotAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                                 const AttendOptions& options) const {
  const AttentionDims dims =
      check_attend("ScaledDotAttention", query, memory, options, {.query_size_is_key_size = true});
  const T scale = T(1) / std::sqrt(static_cast<T>(memory.keys.shape()[2]));
  const Tensor<T> scores = add_attn_mask(dot_scores(query, memory.keys) * scale, options);
  return weigh_values(masked_softmax(scores, hidden_keys(dims, options)), memory.values, options);
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
  const Tensor<T> scores = add_attn_mask(dot_scores(query, memory.projected_keys), options);
  return weigh_values(masked_softmax(scores, hidden_keys(dims, options)), memory.values, options);
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
  const Tensor<T> scores = add_attn_mask(
      additive_scores(query_projection(query), memory.projected_keys, score.weight, hidden ? &*hidden : nullptr),
      options);
  return weigh_values(masked_softmax(scores, hidden), memory.values, options);
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
  if (options_.kdim == 0) options_.kdim = embed;
  if (options_.vdim == 0) options_.vdim = embed;
  // PyTorch's order and initialisation: xavier_uniform projection weights, zero biases.
  const auto projection_weight = [this](const char* name, const Shape& shape) {
    Tensor<T> weight = this->register_parameter(name, Tensor<T>::zeros(shape));
    init::xavier_uniform(weight);
    return weight;
  };
  if (options_.kdim == embed && options_.vdim == embed) {
    in_proj_weight = projection_weight("in_proj_weight", {3 * embed, embed});
  } else {
    q_proj_weight = projection_weight("q_proj_weight", {embed, embed});
    k_proj_weight = projection_weight("k_proj_weight", {embed, options_.kdim});
    v_proj_weight = projection_weight("v_proj_weight", {embed, options_.vdim});
  }
  if (options.bias) {
    in_proj_bias = this->register_parameter("in_proj_bias", Tensor<T>::zeros({3 * embed}));
    init::constant(out_proj.bias, 0.0);
  }
  this->register_module("out_proj", out_proj);
}

// W_part is rows part * E .. (part + 1) * E of in_proj_weight, or q/k/v_proj_weight; b_part
// the same rows of in_proj_bias.
template <class T>
Tensor<T> MultiheadAttention<T>::project(const Tensor<T>& x, std::size_t part) const {
  const std::int64_t embed = extent(options_.embed_dim);
  const std::int64_t start = extent(part) * embed;
  const Tensor<T> bias = in_proj_bias.defined() ? slice(in_proj_bias, 0, start, start + embed) : Tensor<T>();
  if (in_proj_weight.defined()) return linear(x, slice(in_proj_weight, 0, start, start + embed), bias);
  const std::array<const Tensor<T>*, 3> weights{&q_proj_weight, &k_proj_weight, &v_proj_weight};
  return linear(x, *weights[part], bias);
}

// projected_keys and projected_values hold the projected keys and values split by head, [B * H, Tk, E / H].
template <class T>
AttentionMemory<T> MultiheadAttention<T>::prepare(const Tensor<T>& keys, const Tensor<T>& values) const {
  const bool batch_first = options_.batch_first;
  check_prepare<T>("MultiheadAttention", keys, values,
                   {.key_size = options_.kdim, .value_size = options_.vdim, .batch_first = batch_first});
  const std::size_t heads = options_.num_heads;
  return {.keys = keys,
          .values = values,
          .projected_keys = split_heads(project(keys, 1), heads, batch_first),
          .projected_values = split_heads(project(values, 2), heads, batch_first)};
}

// Per head: weights = softmax(q_h k_h^T / sqrt(E / H)); context = out_proj(concat_h(weights v_h)).
template <class T>
AttentionOutput<T> MultiheadAttention<T>::attend(const Tensor<T>& query, const AttentionMemory<T>& memory,
                                                 const AttendOptions& options) const {
  const std::size_t embed = options_.embed_dim, heads = options_.num_heads, head_size = embed / heads;
  const bool batch_first = options_.batch_first;
  const AttentionDims dims = check_attend("MultiheadAttention", query, memory, options,
                                          {.query_size = embed,
                                           .key_size = options_.kdim,
                                           .value_size = options_.vdim,
                                           .heads = heads,
                                           .batch_first = batch_first});
  const Shape prepared{dims.batch * heads, dims.keys, head_size};
  require_prepared("MultiheadAttention", memory.projected_keys, "projected_keys", prepared);
  require_prepared("MultiheadAttention", memory.projected_values, "projected_values", prepared);
  const T scale = T(1) / std::sqrt(static_cast<T>(head_size));
  const Tensor<T> q = split_heads(project(query, 0) * scale, heads, batch_first);
  const std::optional<Mask> hidden = hidden_keys(dims, options, heads);
  const Tensor<T> scores = add_attn_mask(dot_scores(q, memory.projected_keys), options);
  const Tensor<T> weights = dropout(masked_softmax(scores, hidden), options_.dropout, this->is_training());
  Tensor<T> context = out_proj(merge_heads(matmul(weights, memory.projected_values), heads, batch_first));
  // out_proj would give its bias to a query that sees no key; the interface promises zeros.
  if (hidden) {
    if (const std::optional<Mask> blind = queries_without_keys(*hidden, heads, batch_first)) {
      context = masked_fill(context, *blind, T(0));
    }
  }
  return {.context = context, .weights = returned_weights(weights, heads, options)};
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
  const Tensor<T> scores = add_attn_mask(dot_scores(query, memory.projected_keys), options);
  Mask hidden = hidden_keys(dims, options).value_or(Mask(xt::zeros<bool>({dims.batch, dims.queries, dims.keys})));
  const std::size_t window = options_.window;
  if (options_.alignment == LocalAlignment::monotonic) {
    hide_outside_window(hidden, dims, window,
                        [&](std::size_t, std::size_t i) { return static_cast<double>(options.query_offset + i); });
    return weigh_values(softmax(scores, -1, hidden), memory.values, options);
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
  return weigh_values(softmax(scores, -1, hidden) * gaussian, memory.values, options);
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
