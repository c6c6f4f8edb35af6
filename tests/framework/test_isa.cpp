// The kernels compiled for each instruction set (isa.h): the choice follows what the CPU
// supports and the cap, and on every path the CPU supports each dispatched kernel (packed
// products, the recurrent row kernels, additive attention, cross-entropy, Adam, gradient
// norms) gives in float what the baseline path gives in double, within the rounding bound of
// its sums, and in double what the baseline path gives to 1e-12; dropout masks are the same
// bits on every path.
#define BOOST_TEST_MODULE isa
#include "xgrad_test.h"
#include "isa_paths.h"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::random_tensor;
using xgrad::testing::ScopedIsa;
using xgrad::testing::sum_error_bound;
using xgrad::testing::supported_isas;

namespace {

template <class T>
Tensor<T> random_as(const Shape& shape, std::uint64_t seed, bool requires_grad = false) {
  return Tensor<T>(xt::cast<T>(random_tensor(shape, seed).value()), requires_grad);
}

// A computation run in T: its results (values and gradients), in double.
using Results = std::vector<Array<double>>;
template <class T>
using Computation = std::function<std::vector<Array<T>>()>;

template <class T>
Results as_double(const std::vector<Array<T>>& values) {
  Results results;
  for (const Array<T>& v : values) results.push_back(xt::cast<double>(v));
  return results;
}

// Runs `in_float` and `in_double` on every supported path and compares them with `in_double`
// on the baseline path: float within `float_tolerance` (relative to 1 + |value|), double
// within 1e-12.
void check_on_every_path(const std::string& name, const Computation<float>& in_float,
                         const Computation<double>& in_double, double float_tolerance) {
  Results reference;
  {
    const ScopedIsa baseline(Isa::baseline);
    reference = as_double(in_double());
  }
  for (const Isa isa : supported_isas()) {
    const ScopedIsa scoped(isa);
    const Results floats = as_double(in_float());
    const Results doubles = as_double(in_double());
    BOOST_TEST_REQUIRE(floats.size() == reference.size());
    for (std::size_t i = 0; i < reference.size(); ++i) {
      BOOST_TEST_CONTEXT(name << " on " << isa_name(isa) << ", result " << i) {
        check_close(floats[i], reference[i], float_tolerance);
        check_close(doubles[i], reference[i], 1e-12);
      }
    }
  }
}

// A GRU or LSTM over uneven lengths, two layers, both directions: the row kernels forward and
// backward and the packed W_hh products. Batch 7 and hidden 37 leave partial row blocks and
// partial panels on every path.
template <template <class> class Layer, class T>
std::vector<Array<T>> recurrence() {
  const std::size_t batch = 7, steps = 6, features = 5, hidden = 37;
  Layer<T> layer({.input_size = features, .hidden_size = hidden, .num_layers = 2, .bidirectional = true});
  for (std::size_t p = 0; p < layer.parameters().size(); ++p) {
    layer.parameters()[p].mutable_value() = xt::cast<T>(random_tensor(layer.parameters()[p].shape(), 100 + p).value());
  }
  const Tensor<T> x = random_as<T>({batch, steps, features}, 1, true);
  const nn::RnnOutput<T> out = layer.forward(x, {6, 2, 5, 1, 6, 3, 4});
  sum(out.output * random_as<T>(out.output.shape(), 2)).backward();
  std::vector<Array<T>> results{out.output.value(), out.h_n.value(), x.grad()};
  for (const Tensor<T>& p : layer.parameters()) results.push_back(p.grad());
  return results;
}

// Bahdanau attention with padded keys: the score kernel and its gradient.
template <class T>
std::vector<Array<T>> additive_attention() {
  nn::AdditiveAttention<T> attention({.query_size = 6, .key_size = 9, .attention_size = 37});
  for (std::size_t p = 0; p < attention.parameters().size(); ++p) {
    attention.parameters()[p].mutable_value() =
        xt::cast<T>(random_tensor(attention.parameters()[p].shape(), 200 + p).value());
  }
  const Tensor<T> query = random_as<T>({3, 4, 6}, 3, true), keys = random_as<T>({3, 7, 9}, 4, true);
  Mask padding = xt::zeros<bool>({3, 7});
  padding(1, 5) = padding(1, 6) = padding(2, 6) = true;
  const nn::AttentionOutput<T> out = attention.forward(query, keys, keys, {.key_padding = padding});
  sum(out.context * random_as<T>(out.context.shape(), 5)).backward();
  return {out.context.value(), out.weights.value(), query.grad(), keys.grad(), attention.parameters()[0].grad()};
}

// Cross-entropy over 1,000 classes with label smoothing and an ignored row.
template <class T>
std::vector<Array<T>> cross_entropy_rows() {
  const Tensor<T> logits = random_as<T>({5, 1000}, 6, true);
  Tensor<T> loss = cross_entropy(logits * T(4), Indices{3, 999, -100, 0, 517}, {.label_smoothing = 0.1});
  loss.backward();
  return {loss.value(), logits.grad()};
}

// Two AdamW steps after clipping, over a tensor with an uneven tail.
template <class T>
std::vector<Array<T>> adam_steps() {
  Tensor<T> parameter = random_as<T>({3 * elementwise_grain + 77}, 7, true);
  sum(parameter * parameter * random_as<T>(parameter.shape(), 8)).backward();
  const double norm = optim::clip_grad_norm(std::vector<Tensor<T>>{parameter}, 1.0);
  optim::AdamW<T> adam({parameter}, {.lr = 0.01, .weight_decay = 0.1});
  adam.step();
  adam.step();
  return {Array<T>{static_cast<T>(norm)}, parameter.value()};
}

}  // namespace

// First, before any case caps it: XGRAD_MAX_ISA as the process started with it (ctest also
// runs this case with it set to baseline, and to a value it must ignore).
BOOST_AUTO_TEST_CASE(the_environment_caps_the_instruction_set) {
  const char* cap = std::getenv("XGRAD_MAX_ISA");
  const std::string named = cap != nullptr ? cap : "";
  const Isa expected = named == "baseline" ? Isa::baseline
                       : named == "avx2"   ? std::min(Isa::avx2, supported_isa())
                                           : supported_isa();
  BOOST_TEST(isa_name(active_isa()) == isa_name(expected), "XGRAD_MAX_ISA=" << named);
}

BOOST_AUTO_TEST_CASE(the_active_instruction_set_is_the_supported_one_capped) {
  const Isa widest = supported_isa();
  BOOST_TEST((active_isa() <= widest));
  BOOST_TEST((set_max_isa(Isa::baseline) == Isa::baseline));
  BOOST_TEST((active_isa() == Isa::baseline));
  BOOST_TEST(blas::PackedMatrix<float>::panel_width() == 8U);  // two SSE vectors of floats
  BOOST_TEST((set_max_isa(Isa::avx512) == widest));            // never beyond the CPU
  BOOST_TEST(isa_name(Isa::avx2) == "avx2");
}

BOOST_AUTO_TEST_CASE(a_matrix_packed_for_one_instruction_set_multiplies_right_under_another) {
  const std::size_t k = 9, n = 70;
  std::vector<float> b(k * n), a(3 * k);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 7) - 3;
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 5) - 2;
  std::vector<float> expected(3 * n, 0.0f);
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      for (std::size_t l = 0; l < k; ++l) expected[i * n + j] += a[i * k + l] * b[l * n + j];  // small integers: exact
    }
  }
  for (const Isa packed_for : supported_isas()) {
    set_max_isa(packed_for);
    const blas::PackedMatrix<float> packed(b.data(), false, k, n);
    for (const Isa used_under : supported_isas()) {
      const ScopedIsa scoped(used_under);
      std::vector<float> c(3 * n, 0.0f);
      packed.multiply_add(3, a.data(), k, 0, n, c.data(), n);
      BOOST_TEST(c == expected, "packed for " << isa_name(packed_for) << ", used under " << isa_name(used_under));
    }
  }
}

// Tolerances: each result is a chain of sums; the float bound of the longest chain, with
// magnitudes summing to at most 8 (1 + |value|).
BOOST_AUTO_TEST_CASE(recurrences_agree_on_every_path) {
  // 6 steps x 2 layers of sums of 2 * 37 + 37 + 2 terms (the second layer's input, the state,
  // two biases); the weight gradients add 7 sequences of 6 steps on top.
  const double tolerance = sum_error_bound<float>(6 * 2 * 113 + 7 * 6, 8);
  check_on_every_path("GRU", recurrence<nn::GRU, float>, recurrence<nn::GRU, double>, tolerance);
  check_on_every_path("LSTM", recurrence<nn::LSTM, float>, recurrence<nn::LSTM, double>, tolerance);
}

BOOST_AUTO_TEST_CASE(additive_attention_agrees_on_every_path) {
  // Projections of 9 terms, scores of 37, softmax and context over 7 keys, gradients over 4 queries.
  check_on_every_path("additive attention", additive_attention<float>, additive_attention<double>,
                      sum_error_bound<float>(9 + 37 + 7 + 4 * 7, 8));
}

BOOST_AUTO_TEST_CASE(cross_entropy_agrees_on_every_path) {
  // Sums over 1,000 classes of terms below 1 (exp of logit - largest), logits up to 4.
  check_on_every_path("cross-entropy", cross_entropy_rows<float>, cross_entropy_rows<double>,
                      sum_error_bound<float>(1000, 8));
}

BOOST_AUTO_TEST_CASE(adam_and_clipping_agree_on_every_path) {
  // The norm sums 98,381 squares in double; Adam's steps are a few roundings each.
  check_on_every_path("AdamW", adam_steps<float>, adam_steps<double>, sum_error_bound<float>(16, 8));
}

BOOST_AUTO_TEST_CASE(dropout_masks_are_the_same_bits_on_every_path) {
  // Integer hashes and one product by 0 or 1 / (1 - p) each: nothing to round differently.
  const Tensor<float> x = random_as<float>({3 * elementwise_grain + 5}, 9);
  auto masked = [&] {
    Generator generator(5);
    return Array<float>(dropout(x, 0.3, true, generator).value());
  };
  Array<float> baseline;
  {
    const ScopedIsa scoped(Isa::baseline);
    baseline = masked();
  }
  for (const Isa isa : supported_isas()) {
    const ScopedIsa scoped(isa);
    BOOST_TEST(xt::all(xt::equal(masked(), baseline)), "on " << isa_name(isa));
  }
}
