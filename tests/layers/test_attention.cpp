// The attention family: hand-computed values, gradients of inputs and parameters under
// padding, causal and general (attn_mask) masks, step-by-step decoding against whole
// sequences, exact zeros for masked keys, PyTorch parity for multi-head attention with all its
// options (attn_mask, kdim / vdim, per-head weights, sequence-first), and error messages.
#define BOOST_TEST_MODULE attention
#include "xgrad_test.h"

#include <memory>

#include "xgrad/layers/attention.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::fixture;
using xgrad::testing::fixture_objective;
using xgrad::testing::parity_tolerance;
using xgrad::testing::random_tensor;
using xgrad::testing::weighted_sum;
using Inputs = std::vector<Tensor<double>>;

namespace {

constexpr std::size_t batch = 2, queries = 3, keys = 4;

// Entry 0 pads its last key; entry 1 is all padding, so its queries see nothing.
Mask padding_with_empty_entry() {
  Mask padding = xt::zeros<bool>({batch, keys});
  padding(0, keys - 1) = true;
  for (std::size_t j = 0; j < keys; ++j) padding(1, j) = true;
  return padding;
}

struct Variant {
  std::string name;
  std::unique_ptr<nn::Attention<double>> attention;
  std::size_t query_size = 0, key_size = 0, value_size = 0;
  std::size_t heads = 1;  // H: rows of a per-head attn_mask per batch entry
};

// Every variant at tiny sizes: B = 2, Tq = 3, Tk = 4.
std::vector<Variant> variants() {
  manual_seed(7);
  std::vector<Variant> all;
  all.push_back({"dot", std::make_unique<nn::DotAttention<double>>(), 3, 3, 2});
  all.push_back({"scaled dot", std::make_unique<nn::ScaledDotAttention<double>>(), 3, 3, 2});
  all.push_back({"general",
                 std::make_unique<nn::GeneralAttention<double>>(nn::GeneralAttentionOptions{.query_size = 3, .key_size = 4}),
                 3, 4, 2});
  all.push_back({"additive",
                 std::make_unique<nn::AdditiveAttention<double>>(
                     nn::AdditiveAttentionOptions{.query_size = 3, .key_size = 4, .attention_size = 5}),
                 3, 4, 2});
  auto multihead = std::make_unique<nn::MultiheadAttention<double>>(nn::MultiheadAttentionOptions{.embed_dim = 4, .num_heads = 2});
  // Non-zero biases: a query that sees no key must still get a zero context.
  init::uniform(multihead->in_proj_bias, -0.5, 0.5);
  init::uniform(multihead->out_proj.bias, -0.5, 0.5);
  all.push_back({"multihead", std::move(multihead), 4, 4, 4, 2});
  all.push_back({"local-m",
                 std::make_unique<nn::LocalAttention<double>>(nn::LocalAttentionOptions{
                     .query_size = 3, .key_size = 4, .window = 1, .alignment = nn::LocalAlignment::monotonic}),
                 3, 4, 2});
  all.push_back({"local-p",
                 std::make_unique<nn::LocalAttention<double>>(nn::LocalAttentionOptions{
                     .query_size = 3, .key_size = 4, .window = 1, .alignment = nn::LocalAlignment::predictive,
                     .predictor_size = 2}),
                 3, 4, 2});
  return all;
}

struct Inputs3 {
  Tensor<double> query, keys, values;
};

Inputs3 inputs_for(const Variant& variant) {
  return {random_tensor({batch, queries, variant.query_size}, 1, -1.5, 1.5),
          random_tensor({batch, keys, variant.key_size}, 2, -1.5, 1.5),
          random_tensor({batch, keys, variant.value_size}, 3)};
}

// prepare once, then one attend per query with its position as query_offset.
nn::AttentionOutput<double> attend_step_by_step(const nn::Attention<double>& attention, const Inputs3& in,
                                                nn::AttendOptions options) {
  const nn::AttentionMemory<double> memory = attention.prepare(in.keys, in.values);
  std::vector<Tensor<double>> contexts, weights;
  for (std::size_t i = 0; i < in.query.shape()[1]; ++i) {
    options.query_offset = i;
    const auto step = attention.attend(slice(in.query, 1, std::int64_t(i), std::int64_t(i + 1)), memory, options);
    contexts.push_back(step.context);
    weights.push_back(step.weights);
  }
  return {concat(contexts, 1), concat(weights, 1)};
}

// Runs check(variant, inputs, options) for every variant, with the padding mask, without and
// with causal.
template <class Check>
void for_every_variant_and_mask(Check check) {
  for (const Variant& variant : variants()) {
    for (const bool causal : {false, true}) {
      BOOST_TEST_CONTEXT(variant.name << (causal ? ", causal" : "")) {
        check(variant, inputs_for(variant), nn::AttendOptions{.key_padding = padding_with_empty_entry(), .causal = causal});
      }
    }
  }
}

// Gradcheck of the context and weights w.r.t. the inputs and every parameter, each element checked.
void check_variant_gradients(const Variant& variant, const Inputs3& in, const nn::AttendOptions& options) {
  const GradcheckResult result = gradcheck(
      [&](const Inputs& x) {
        const auto out = variant.attention->forward(x[0], x[1], x[2], options);
        return weighted_sum(out.context) + weighted_sum(out.weights) * 0.7;
      },
      {in.query, in.keys, in.values}, {.names = variant.attention->named_parameters()});
  BOOST_TEST(result.passed, result.report);
  std::size_t parameters = 0;
  for (const auto& parameter : variant.attention->parameters()) parameters += parameter.size();
  BOOST_TEST(result.checked == in.query.size() + in.keys.size() + in.values.size() + parameters);
}

bool all_finite(const Array<double>& values) { return xt::all(xt::isfinite(values)); }

// A predicate for BOOST_CHECK_EXCEPTION: the message holds every part.
std::function<bool(const std::exception&)> says(std::vector<std::string> parts) {
  return [parts](const std::exception& error) {
    const std::string text = error.what();
    for (const std::string& part : parts) {
      if (text.find(part) == std::string::npos) {
        BOOST_TEST_MESSAGE("'" << part << "' is missing from: " << text);
        return false;
      }
    }
    return true;
  };
}

// [Tq, Tk], true where key j lies after query i: what causal hides, as an attn_mask.
Mask keys_after_each_query() {
  Mask after = Mask::from_shape({queries, keys});
  for (std::size_t i = 0; i < queries; ++i) {
    for (std::size_t j = 0; j < keys; ++j) after(i, j) = j > i;
  }
  return after;
}

// The same as additive values: -inf where blocked, else 0.
Array<double> as_minus_infinities(const Mask& blocked) {
  return xt::where(blocked, -std::numeric_limits<double>::infinity(), 0.0);
}

// The mask repeated for every row of a [rows, Tq, Tk] per-head attn_mask.
template <class A>
A repeated_for_rows(const A& mask, std::size_t rows) {
  A repeated = A::from_shape({rows, mask.shape()[0], mask.shape()[1]});
  for (std::size_t r = 0; r < rows; ++r) xt::view(repeated, r) = mask;
  return repeated;
}

// Multi-head attention with kdim 3 and vdim 5 (so q/k/v_proj_weight), 2 heads of E = 4, and
// non-zero biases, so that a query that sees no key must still get a zero context.
std::unique_ptr<nn::MultiheadAttention<double>> multihead_with_kdim_vdim(bool batch_first) {
  manual_seed(17);
  auto attention = std::make_unique<nn::MultiheadAttention<double>>(
      nn::MultiheadAttentionOptions{.embed_dim = 4, .num_heads = 2, .kdim = 3, .vdim = 5, .batch_first = batch_first});
  init::uniform(attention->in_proj_bias, -0.5, 0.5);
  init::uniform(attention->out_proj.bias, -0.5, 0.5);
  return attention;
}

// A fixture of tests/fixtures/fixtures_attention.py and the options it was made with.
struct MultiheadFixture {
  std::string name;
  nn::MultiheadAttentionOptions options;
  bool causal = false;
};

const std::vector<MultiheadFixture> general_fixtures{
    {"attention_multihead_bool_mask", {.embed_dim = 6, .num_heads = 2}},
    {"attention_multihead_additive_mask", {.embed_dim = 6, .num_heads = 3}},
    {"attention_multihead_kdim_vdim", {.embed_dim = 6, .num_heads = 2, .kdim = 4, .vdim = 5}},
    {"attention_multihead_sequence_first", {.embed_dim = 4, .num_heads = 2, .kdim = 3, .vdim = 5, .batch_first = false}}};

// Outputs, weights and the gradients of sum(output * output_weights) (+ sum(weights *
// weights_weights) where the fixture has them) against PyTorch. The parameters go through the strict loader, so that a
// PyTorch state_dict with these options loads as saved. In float the tolerance is
// parity_tolerance's: the longest chain of sums here (projections of E <= 6 terms, scores of
// E / H <= 3, softmax and context over Tk <= 5, out_proj of 6, the same in backward, then a
// weight gradient over B * T <= 15 rows) has about 65 terms, within the 128 it allows for.
template <class T>
void multihead_parity(const MultiheadFixture& setup) {
  BOOST_TEST_CONTEXT(setup.name) {
    const safetensors::File file = fixture(setup.name);
    nn::MultiheadAttention<T> attention(setup.options);
    load_state_dict(attention, file, "param.");
    Tensor<T> query(file.floats<T>("query"), true), key(file.floats<T>("key"), true), value(file.floats<T>("value"), true);
    nn::AttendOptions options{.key_padding = Mask(xt::not_equal(file.integers("key_padding_mask"), 0)),
                              .causal = setup.causal};
    if (file.contains("attn_mask_blocked")) options.attn_mask = Mask(xt::not_equal(file.integers("attn_mask_blocked"), 0));
    if (file.contains("attn_mask_additive")) options.attn_mask = file.floats<T>("attn_mask_additive");
    const Array<T> expected_weights = file.floats<T>("weights");
    options.average_attn_weights = expected_weights.dimension() == 3;
    const auto out = attention.forward(query, key, value, options);
    const double tol = parity_tolerance<T>;
    check_close(out.context.value(), file.floats<T>("output"), tol);
    check_close(out.weights.value(), expected_weights, tol);
    Tensor<T> objective = fixture_objective(out.context, file);
    if (file.contains("weights_weights")) objective = objective + sum(out.weights * Tensor<T>(file.floats<T>("weights_weights")));
    objective.backward();
    check_close(query.grad(), file.floats<T>("grad.query"), tol);
    check_close(key.grad(), file.floats<T>("grad.key"), tol);
    check_close(value.grad(), file.floats<T>("grad.value"), tol);
    for (const auto& [parameter_name, parameter] : attention.named_parameters()) {
      BOOST_TEST_CONTEXT(parameter_name) { check_close(parameter.grad(), file.floats<T>("grad." + parameter_name), tol); }
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(dot_and_scaled_dot_against_hand_computed_values) {
  // Batch entry 1 repeats entry 0 with its second key padded.
  const Tensor<double> query = Tensor<double>::from({1, 2, 0, -1, 1, 2, 0, -1}, {2, 2, 2});
  const Tensor<double> keys = Tensor<double>::from({1, 0, 0.5, 1, 1, 0, 0.5, 1}, {2, 2, 2});
  const Tensor<double> values = Tensor<double>::from({1, 0, 2, 4, 1, 0, 2, 4}, {2, 2, 2});
  const Mask padding = xgrad::testing::shaped<Mask>({2, 2}, {false, false, false, true});
  // Scores of entry 0: query 0 gives (1, 2.5), query 1 gives (0, -1). With two keys the
  // weight of the second is sigmoid(s1 - s0), and the context mixes (1, 0) and (2, 4).
  auto expected = [](double difference_0, double difference_1) {
    const double w0 = 1.0 / (1.0 + std::exp(-difference_0)), w1 = 1.0 / (1.0 + std::exp(-difference_1));
    return std::pair{xgrad::testing::shaped<Array<double>>({2, 2, 2}, {1 - w0, w0, 1 - w1, w1, 1, 0, 1, 0}),
                     xgrad::testing::shaped<Array<double>>(
                         {2, 2, 2}, {1 + w0, 4 * w0, 1 + w1, 4 * w1, 1, 0, 1, 0})};
  };
  const auto dot = nn::DotAttention<double>().forward(query, keys, values, {.key_padding = padding});
  const auto [dot_weights, dot_context] = expected(1.5, -1.0);
  check_close(dot.weights.value(), dot_weights);
  check_close(dot.context.value(), dot_context);
  const auto scaled = nn::ScaledDotAttention<double>().forward(query, keys, values, {.key_padding = padding});
  const auto [scaled_weights, scaled_context] = expected(1.5 / std::sqrt(2.0), -1.0 / std::sqrt(2.0));
  check_close(scaled.weights.value(), scaled_weights);
  check_close(scaled.context.value(), scaled_context);
  // Causal: query 0 sees key 0 alone.
  const auto causal = nn::DotAttention<double>().forward(query, keys, values, {.causal = true});
  check_close(xt::view(causal.weights.value(), 0, 0), Array<double>{1, 0});
  check_close(xt::view(causal.weights.value(), 0, 1), xt::view(dot_weights, 0, 1));
}

BOOST_AUTO_TEST_CASE(gradients_of_every_variant) { for_every_variant_and_mask(check_variant_gradients); }

BOOST_AUTO_TEST_CASE(step_by_step_equals_all_queries_at_once) {
  for_every_variant_and_mask([](const Variant& variant, const Inputs3& in, const nn::AttendOptions& options) {
    const auto whole = variant.attention->forward(in.query, in.keys, in.values, options);
    const auto steps = attend_step_by_step(*variant.attention, in, options);
    check_close(steps.context.value(), whole.context.value());
    check_close(steps.weights.value(), whole.weights.value());
  });
}

BOOST_AUTO_TEST_CASE(masked_keys_get_exactly_zero_weight_and_no_nan) {
  for (const Variant& variant : variants()) {
    BOOST_TEST_CONTEXT(variant.name) {
      const Inputs3 in = inputs_for(variant);
      const auto out = variant.attention->forward(in.query, in.keys, in.values,
                                                  {.key_padding = padding_with_empty_entry(), .causal = true});
      const Array<double>& w = out.weights.value();
      for (std::size_t i = 0; i < queries; ++i) {
        BOOST_TEST(w(0, i, keys - 1) == 0.0);  // padding
        for (std::size_t j = i + 1; j < keys; ++j) BOOST_TEST(w(0, i, j) == 0.0);  // causal
        if (variant.name != "local-p") {  // local-p's Gaussian factor leaves rows below 1
          BOOST_TEST(xt::sum(xt::view(w, 0, i))() == 1.0, boost::test_tools::tolerance(1e-12));
        }
      }
      // The entry whose keys are all padding: zero weights, zero context.
      BOOST_TEST(xt::all(xt::equal(xt::view(w, 1), 0.0)));
      BOOST_TEST(xt::all(xt::equal(xt::view(out.context.value(), 1), 0.0)));
      BOOST_TEST(all_finite(out.context.value()));
      weighted_sum(out.context).backward();
      for (const Tensor<double>& x : {in.query, in.keys, in.values}) {
        BOOST_TEST(all_finite(x.grad()));
        BOOST_TEST(xt::all(xt::equal(xt::view(x.grad(), 1), 0.0)));
      }
      for (const auto& [name, parameter] : variant.attention->named_parameters()) {
        BOOST_TEST(all_finite(parameter.grad()), name);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(fused_additive_score_equals_its_definition) {
  manual_seed(3);
  nn::AdditiveAttention<double> attention({.query_size = 3, .key_size = 4, .attention_size = 5});
  const Tensor<double> query = random_tensor({2, 3, 3}, 1), keys = random_tensor({2, 4, 4}, 2);
  const Tensor<double> values = random_tensor({2, 4, 2}, 3);
  const Mask padding = padding_with_empty_entry();
  const auto out = attention.forward(query, keys, values, {.key_padding = padding});
  // v . tanh(W_q q + W_k k + b) over every (query, key) pair: [2, 3, 4, 5] -> [2, 3, 4]
  const Tensor<double> pairs =
      unsqueeze(attention.query_projection(query), 2) + unsqueeze(attention.key_projection(keys), 1);
  const Tensor<double> scores = squeeze(attention.score(tanh(pairs)), -1);
  const Mask hidden = xt::broadcast(xt::view(padding, xt::all(), xt::newaxis(), xt::all()), {2, 3, 4});
  check_close(out.weights.value(), softmax(scores, -1, hidden).value());
  check_close(out.context.value(), matmul(softmax(scores, -1, hidden), values).value());
}

BOOST_AUTO_TEST_CASE(local_attention_windows) {
  manual_seed(5);
  const Tensor<double> query = random_tensor({2, 3, 3}, 1, -2, 2), keys = random_tensor({2, 5, 4}, 2, -2, 2);
  const Tensor<double> values = random_tensor({2, 5, 2}, 3);
  // local-m with D = 0 sees only the key at its own position.
  nn::LocalAttention<double> narrow({.query_size = 3, .key_size = 4, .window = 0, .alignment = nn::LocalAlignment::monotonic});
  const auto own = narrow.forward(query, keys, values, {.query_offset = 1});
  check_close(own.context.value(), xt::view(values.value(), xt::all(), xt::range(1, 4)));
  // With D >= Tk the window hides nothing: local-m is the general score.
  nn::LocalAttention<double> wide({.query_size = 3, .key_size = 4, .window = 5, .alignment = nn::LocalAlignment::monotonic});
  nn::GeneralAttention<double> general({.query_size = 3, .key_size = 4});
  general.key_projection.weight.mutable_value() = wide.key_projection.weight.value();
  check_close(wide.forward(query, keys, values).weights.value(), general.forward(query, keys, values).weights.value());

  // local-p against the paper's formulas, evaluated here element by element.
  const std::size_t window = 2;
  nn::LocalAttention<double> predictive({.query_size = 3, .key_size = 4, .window = window, .predictor_size = 4});
  init::uniform(predictive.position_score->weight, -2.0, 2.0);  // spread the predicted positions
  Mask padding = xt::zeros<bool>({2, 5});
  padding(1, 4) = padding(1, 3) = true;
  const auto out = predictive.forward(query, keys, values, {.key_padding = padding});
  const Array<double>& w_general = predictive.key_projection.weight.value();
  const Array<double>& w_p = predictive.position_hidden->weight.value();
  std::size_t seen_count = 0, unseen_count = 0;
  const Array<double>& v_p = predictive.position_score->weight.value();
  for (std::size_t b = 0; b < 2; ++b) {
    const double length = b == 0 ? 5 : 3;
    for (std::size_t i = 0; i < 3; ++i) {
      double predicted = 0;
      for (std::size_t h = 0; h < 4; ++h) {
        double pre = 0;
        for (std::size_t d = 0; d < 3; ++d) pre += w_p(h, d) * query.value()(b, i, d);
        predicted += v_p(0, h) * std::tanh(pre);
      }
      const double p = length / (1 + std::exp(-predicted));
      std::vector<double> scores(5);
      double total = 0;
      for (std::size_t j = 0; j < 5; ++j) {
        for (std::size_t a = 0; a < 3; ++a) {
          for (std::size_t d = 0; d < 4; ++d) scores[j] += query.value()(b, i, a) * w_general(a, d) * keys.value()(b, j, d);
        }
        if (std::abs(double(j) - p) <= double(window) && !padding(b, j)) total += std::exp(scores[j]);
      }
      for (std::size_t j = 0; j < 5; ++j) {
        const bool seen = std::abs(double(j) - p) <= double(window) && !padding(b, j);
        const double sigma = window / 2.0, distance = double(j) - p;
        const double expected =
            seen ? std::exp(scores[j]) / total * std::exp(-distance * distance / (2 * sigma * sigma)) : 0.0;
        BOOST_TEST(out.weights.value()(b, i, j) == expected, boost::test_tools::tolerance(1e-12));
        if (!seen) BOOST_TEST(out.weights.value()(b, i, j) == 0.0);
        ++(seen ? seen_count : unseen_count);
      }
    }
  }
  BOOST_TEST((seen_count > 0 && unseen_count > 0));  // the window both shows and hides keys
}

BOOST_AUTO_TEST_CASE(multihead_defaults_and_dropout) {
  manual_seed(9);
  nn::MultiheadAttention<double> attention({.embed_dim = 64, .num_heads = 4});
  std::vector<std::string> names;
  for (const auto& [name, parameter] : attention.named_parameters()) names.push_back(name);
  BOOST_TEST(names == (std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"}),
             boost::test_tools::per_element());
  const double xavier_bound = std::sqrt(6.0 / (64 + 3 * 64));
  BOOST_TEST(xt::amax(xt::abs(attention.in_proj_weight.value()))() <= xavier_bound);
  BOOST_TEST(xt::amax(xt::abs(attention.in_proj_weight.value()))() > 0.99 * xavier_bound);
  BOOST_TEST(xt::all(xt::equal(attention.in_proj_bias.value(), 0.0)));
  BOOST_TEST(xt::all(xt::equal(attention.out_proj.bias.value(), 0.0)));
  nn::MultiheadAttention<double> unbiased({.embed_dim = 4, .num_heads = 2, .bias = false});
  BOOST_TEST(unbiased.named_parameters().size() == 2u);

  // Dropout acts on the weights in training only.
  nn::MultiheadAttention<double> dropping({.embed_dim = 4, .num_heads = 2, .dropout = 0.5});
  nn::MultiheadAttention<double> plain({.embed_dim = 4, .num_heads = 2});
  std::vector<Tensor<double>> copies = dropping.parameters();
  for (std::size_t n = 0; n < copies.size(); ++n) copies[n].mutable_value() = plain.parameters()[n].value();
  const Tensor<double> x = random_tensor({2, 6, 4}, 4);
  const auto trained = dropping.forward(x, x, x);
  const auto reference = plain.forward(x, x, x);
  BOOST_TEST(xt::any(xt::not_equal(trained.weights.value(), reference.weights.value())));
  dropping.eval();
  check_close(dropping.forward(x, x, x).context.value(), reference.context.value());
}

BOOST_AUTO_TEST_CASE(multihead_pytorch_parity_in_double) {
  multihead_parity<double>({"attention_multihead_self", {.embed_dim = 6, .num_heads = 2}, true});
  multihead_parity<double>({"attention_multihead_cross", {.embed_dim = 6, .num_heads = 3}});
}

BOOST_AUTO_TEST_CASE(multihead_pytorch_parity_in_float) {
  multihead_parity<float>({"attention_multihead_self", {.embed_dim = 6, .num_heads = 2}, true});
  multihead_parity<float>({"attention_multihead_cross", {.embed_dim = 6, .num_heads = 3}});
}

BOOST_AUTO_TEST_CASE(an_attn_mask_hiding_later_keys_equals_causal_in_every_form) {
  // Boolean [Tq, Tk], additive -inf [Tq, Tk] and per-row [B * H, Tq, Tk]: each with the
  // padding mask gives what causal gives, in every variant.
  const Mask after = keys_after_each_query();
  for (const Variant& variant : variants()) {
    const std::size_t rows = batch * variant.heads;
    const std::vector<std::pair<std::string, nn::AttentionMask>> forms{
        {"boolean", after},
        {"additive", as_minus_infinities(after)},
        {"per-row boolean", repeated_for_rows(after, rows)},
        {"per-row additive float", Array<float>(xt::cast<float>(repeated_for_rows(as_minus_infinities(after), rows)))}};
    const Inputs3 in = inputs_for(variant);
    const auto causal =
        variant.attention->forward(in.query, in.keys, in.values, {.key_padding = padding_with_empty_entry(), .causal = true});
    for (const auto& [form, mask] : forms) {
      BOOST_TEST_CONTEXT(variant.name << ", " << form) {
        const auto masked = variant.attention->forward(in.query, in.keys, in.values,
                                                       {.key_padding = padding_with_empty_entry(), .attn_mask = mask});
        check_close(masked.context.value(), causal.context.value());
        check_close(masked.weights.value(), causal.weights.value());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_of_every_variant_with_additive_and_boolean_attn_masks) {
  // Finite additive values with one blocked pair, combined with padding and causal.
  Array<double> additive = random_tensor({queries, keys}, 21, -2, 2).value();
  additive(1, 0) = -std::numeric_limits<double>::infinity();
  for (const Variant& variant : variants()) {
    Mask blocked = xt::zeros<bool>({batch * variant.heads, queries, keys});  // per row, one row only
    blocked(0, 2, 1) = blocked(0, 0, 2) = true;
    for (const auto& [form, mask] : std::vector<std::pair<std::string, nn::AttentionMask>>{{"additive", additive},
                                                                                           {"boolean", blocked}}) {
      BOOST_TEST_CONTEXT(variant.name << ", " << form) {
        check_variant_gradients(variant, inputs_for(variant),
                                {.key_padding = padding_with_empty_entry(), .causal = true, .attn_mask = mask});
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_of_multihead_attention_with_every_new_option) {
  // kdim / vdim (q/k/v_proj_weight), a per-head additive mask, per-head weights, both layouts.
  for (const bool batch_first : {true, false}) {
    BOOST_TEST_CONTEXT((batch_first ? "batch-first" : "sequence-first")) {
      const auto attention_owner = multihead_with_kdim_vdim(batch_first);
      const nn::MultiheadAttention<double>& attention = *attention_owner;
      const auto sequences = [&](std::size_t steps, std::size_t size, std::uint64_t seed) {
        return random_tensor(batch_first ? Shape{batch, steps, size} : Shape{steps, batch, size}, seed, -1.5, 1.5);
      };
      Array<double> additive = random_tensor({batch * 2, queries, keys}, 22, -2, 2).value();
      additive(3, 1, 2) = additive(0, 2, 0) = -std::numeric_limits<double>::infinity();
      const nn::AttendOptions options{.key_padding = padding_with_empty_entry(), .causal = true,
                                      .attn_mask = additive, .average_attn_weights = false};
      const GradcheckResult result = gradcheck(
          [&](const Inputs& x) {
            const auto out = attention.forward(x[0], x[1], x[2], options);
            BOOST_TEST(to_string(out.weights.shape()) == to_string(Shape{batch, 2, queries, keys}));
            return weighted_sum(out.context) + weighted_sum(out.weights) * 0.7;
          },
          {sequences(queries, 4, 1), sequences(keys, 3, 2), sequences(keys, 5, 3)},
          {.names = attention.named_parameters()});
      BOOST_TEST(result.passed, result.report);
      std::size_t parameters = 0;
      for (const auto& parameter : attention.parameters()) parameters += parameter.size();
      BOOST_TEST(result.checked == batch * (queries * 4 + keys * 3 + keys * 5) + parameters);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_query_blocked_by_attn_mask_gets_zeros_and_no_nan) {
  // Query 1 may see no key, through each kind of attn_mask; the others see keys 0 and 1.
  Mask blocked = xt::zeros<bool>({queries, keys});
  for (std::size_t j = 0; j < keys; ++j) blocked(1, j) = true;
  blocked(0, 3) = blocked(2, 2) = true;
  for (const Variant& variant : variants()) {
    const std::vector<std::pair<std::string, nn::AttentionMask>> kinds{
        {"boolean", blocked},
        {"additive -inf", as_minus_infinities(blocked)},
        {"per-row additive float",
         Array<float>(xt::cast<float>(repeated_for_rows(as_minus_infinities(blocked), batch * variant.heads)))}};
    for (const auto& [kind, mask] : kinds) {
      BOOST_TEST_CONTEXT(variant.name << ", " << kind) {
        const Inputs3 in = inputs_for(variant);
        const auto out = variant.attention->forward(in.query, in.keys, in.values, {.attn_mask = mask});
        const Array<double>& w = out.weights.value();
        for (std::size_t b = 0; b < batch; ++b) {
          BOOST_TEST(xt::all(xt::equal(xt::view(w, b, 1), 0.0)));
          BOOST_TEST(xt::all(xt::equal(xt::view(out.context.value(), b, 1), 0.0)));
          BOOST_TEST((w(b, 0, 3) == 0.0 && w(b, 2, 2) == 0.0));
        }
        BOOST_TEST(all_finite(w));
        BOOST_TEST(all_finite(out.context.value()));
        (weighted_sum(out.context) + weighted_sum(out.weights)).backward();
        for (const Tensor<double>& x : {in.query, in.keys, in.values}) BOOST_TEST(all_finite(x.grad()));
        BOOST_TEST(xt::all(xt::equal(xt::view(in.query.grad(), xt::all(), 1), 0.0)));
        for (const auto& [name, parameter] : variant.attention->named_parameters()) {
          BOOST_TEST(all_finite(parameter.grad()), name);
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_query_blocked_in_some_heads_only_keeps_the_others) {
  // Per-head boolean mask: query 1 of entry 0 sees nothing in head 0 and everything in head 1;
  // query 2 of entry 1 sees nothing in either head.
  const auto attention_owner = multihead_with_kdim_vdim(true);
  const nn::MultiheadAttention<double>& attention = *attention_owner;
  Mask blocked = xt::zeros<bool>({batch * 2, queries, keys});
  xt::view(blocked, 0, 1) = true;
  xt::view(blocked, 2, 2) = true;
  xt::view(blocked, 3, 2) = true;
  const Tensor<double> query = random_tensor({batch, queries, 4}, 1), keys_in = random_tensor({batch, keys, 3}, 2);
  const Tensor<double> values_in = random_tensor({batch, keys, 5}, 3);
  const auto per_head = attention.forward(query, keys_in, values_in, {.attn_mask = blocked, .average_attn_weights = false});
  const auto averaged = attention.forward(query, keys_in, values_in, {.attn_mask = blocked});
  const Array<double>& w = per_head.weights.value();
  BOOST_TEST(xt::all(xt::equal(xt::view(w, 0, 0, 1), 0.0)));
  BOOST_TEST(xt::sum(xt::view(w, 0, 1, 1))() == 1.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(xt::sum(xt::view(averaged.weights.value(), 0, 1))() == 0.5, boost::test_tools::tolerance(1e-12));
  check_close(averaged.weights.value(), xt::mean(w, {1}));
  // Head 1 still speaks for query 1 of entry 0; entry 1's query 2 gets a zero context.
  BOOST_TEST(xt::any(xt::not_equal(xt::view(per_head.context.value(), 0, 1), 0.0)));
  BOOST_TEST(xt::all(xt::equal(xt::view(per_head.context.value(), 1, 2), 0.0)));
  BOOST_TEST(all_finite(per_head.context.value()));
}

BOOST_AUTO_TEST_CASE(weights_per_head_or_none_leave_the_context_unchanged) {
  for (const Variant& variant : variants()) {
    BOOST_TEST_CONTEXT(variant.name) {
      const Inputs3 in = inputs_for(variant);
      const nn::AttendOptions base{.key_padding = padding_with_empty_entry(), .causal = true};
      const auto averaged = variant.attention->forward(in.query, in.keys, in.values, base);
      nn::AttendOptions per_head_options = base, no_weights_options = base;
      per_head_options.average_attn_weights = false;
      no_weights_options.need_weights = false;
      const auto per_head = variant.attention->forward(in.query, in.keys, in.values, per_head_options);
      const auto no_weights = variant.attention->forward(in.query, in.keys, in.values, no_weights_options);
      const std::size_t heads = variant.name == "multihead" ? 2 : 1;
      BOOST_TEST(to_string(per_head.weights.shape()) == to_string(Shape{batch, heads, queries, keys}));
      check_close(xt::mean(per_head.weights.value(), {1}), averaged.weights.value());
      BOOST_TEST(!no_weights.weights.defined());
      check_close(per_head.context.value(), averaged.context.value());
      check_close(no_weights.context.value(), averaged.context.value());
    }
  }
}

BOOST_AUTO_TEST_CASE(multihead_kdim_vdim_parameters_are_pytorchs) {
  manual_seed(9);
  nn::MultiheadAttention<double> attention({.embed_dim = 8, .num_heads = 2, .kdim = 3, .vdim = 5});
  std::vector<std::string> names;
  std::vector<std::string> shapes;
  for (const auto& [name, parameter] : attention.named_parameters()) {
    names.push_back(name);
    shapes.push_back(to_string(parameter.shape()));
  }
  BOOST_TEST(names == (std::vector<std::string>{"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                                                "out_proj.weight", "out_proj.bias"}),
             boost::test_tools::per_element());
  BOOST_TEST(shapes == (std::vector<std::string>{"[8, 8]", "[8, 3]", "[8, 5]", "[24]", "[8, 8]", "[8]"}),
             boost::test_tools::per_element());
  BOOST_TEST(!attention.in_proj_weight.defined());
  BOOST_TEST(attention.options().kdim == 3u);
  // xavier_uniform for each projection matrix on its own, as PyTorch initialises them.
  for (const auto& [weight, fan_in] : {std::pair{&attention.q_proj_weight, 8.0}, std::pair{&attention.k_proj_weight, 3.0},
                                       std::pair{&attention.v_proj_weight, 5.0}}) {
    const double bound = std::sqrt(6.0 / (fan_in + 8.0));
    BOOST_TEST(xt::amax(xt::abs(weight->value()))() <= bound);
    BOOST_TEST(xt::amax(xt::abs(weight->value()))() > 0.8 * bound);
  }
  // kdim and vdim equal to embed_dim, given or not, keep the packed in_proj_weight.
  nn::MultiheadAttention<double> packed({.embed_dim = 8, .num_heads = 2, .kdim = 8, .vdim = 8});
  BOOST_TEST(to_string(packed.in_proj_weight.shape()) == "[24, 8]");
  BOOST_TEST(!packed.q_proj_weight.defined());
  BOOST_TEST(packed.options().vdim == 8u);
}

BOOST_AUTO_TEST_CASE(sequence_first_equals_batch_first_transposed) {
  const auto batch_major = multihead_with_kdim_vdim(true);
  const auto time_major = multihead_with_kdim_vdim(false);
  const Tensor<double> query = random_tensor({batch, queries, 4}, 1), keys_in = random_tensor({batch, keys, 3}, 2);
  const Tensor<double> values_in = random_tensor({batch, keys, 5}, 3);
  const Tensor<double> query_t = random_tensor({queries, batch, 4}, 1), keys_t = random_tensor({keys, batch, 3}, 2);
  const Tensor<double> values_t = random_tensor({keys, batch, 5}, 3);
  for (auto [x, x_t] : {std::pair{query, query_t}, std::pair{keys_in, keys_t}, std::pair{values_in, values_t}}) {
    x_t.mutable_value() = transpose(x, 0, 1).value();
  }
  const nn::AttendOptions options{.key_padding = padding_with_empty_entry(), .causal = true, .attn_mask = keys_after_each_query()};
  const auto expected = batch_major->forward(query, keys_in, values_in, options);
  const auto actual = time_major->forward(query_t, keys_t, values_t, options);
  check_close(actual.context.value(), transpose(expected.context, 0, 1).value());
  check_close(actual.weights.value(), expected.weights.value());  // batch-first in both
  weighted_sum(expected.context).backward();
  weighted_sum(transpose(actual.context, 0, 1)).backward();
  for (const auto& [x, x_t] : {std::pair{query, query_t}, std::pair{keys_in, keys_t}, std::pair{values_in, values_t}}) {
    check_close(x_t.grad(), transpose(Tensor<double>(x.grad()), 0, 1).value());
  }
}

BOOST_AUTO_TEST_CASE(multihead_general_options_pytorch_parity_in_double) {
  for (const MultiheadFixture& setup : general_fixtures) multihead_parity<double>(setup);
}

BOOST_AUTO_TEST_CASE(multihead_general_options_pytorch_parity_in_float) {
  for (const MultiheadFixture& setup : general_fixtures) multihead_parity<float>(setup);
}

BOOST_AUTO_TEST_CASE(errors_of_the_general_options_name_the_op_and_every_shape) {
  nn::MultiheadAttention<double> attention({.embed_dim = 4, .num_heads = 2, .kdim = 3, .vdim = 5});
  const Tensor<double> q = Tensor<double>::zeros({2, 3, 4}), k = Tensor<double>::zeros({2, 6, 3});
  const Tensor<double> v = Tensor<double>::zeros({2, 6, 5});
  // attn_mask neither [Tq, Tk] nor [B * H, Tq, Tk]: [B, Tq, Tk] is what the single-head variants take.
  BOOST_CHECK_EXCEPTION(attention.forward(q, k, v, {.attn_mask = Mask(xt::zeros<bool>({2, 3, 6}))}), shape_error,
                        says({"MultiheadAttention", "query [2, 3, 4]", "keys [2, 6, 3]", "values [2, 6, 5]",
                              "attn_mask [2, 3, 6]", "[Tq, Tk] = [3, 6]", "[B * H, Tq, Tk] = [4, 3, 6]"}));
  BOOST_CHECK_EXCEPTION(attention.forward(q, k, v, {.attn_mask = Array<double>(xt::zeros<double>({6, 3}))}), shape_error,
                        says({"MultiheadAttention", "attn_mask [6, 3]", "[Tq, Tk] = [3, 6]"}));
  BOOST_CHECK_EXCEPTION(nn::DotAttention<double>().forward(q, q, q, {.attn_mask = Mask(xt::zeros<bool>({3}))}),
                        shape_error, says({"DotAttention", "attn_mask [3]", "[Tq, Tk] = [3, 3]", "[B * H, Tq, Tk] = [2, 3, 3]"}));
  // Keys or values of another size than kdim / vdim.
  BOOST_CHECK_EXCEPTION(attention.forward(q, Tensor<double>::zeros({2, 6, 4}), v), shape_error,
                        says({"MultiheadAttention::prepare", "keys [2, 6, 4]", "values [2, 6, 5]", "Dk must be 3"}));
  BOOST_CHECK_EXCEPTION(attention.forward(q, k, Tensor<double>::zeros({2, 6, 4})), shape_error,
                        says({"MultiheadAttention::prepare", "values [2, 6, 4]", "Dv must be 5"}));
  // Sequence-first: the batch is axis 1, and the message says which layout it expected.
  nn::MultiheadAttention<double> time_major({.embed_dim = 4, .num_heads = 2, .batch_first = false});
  const Tensor<double> q_t = Tensor<double>::zeros({3, 2, 4});
  BOOST_CHECK_EXCEPTION(time_major.forward(q_t, Tensor<double>::zeros({6, 5, 4}), Tensor<double>::zeros({6, 5, 4})),
                        shape_error, says({"MultiheadAttention", "query [3, 2, 4]", "keys [6, 5, 4]", "batch sizes B differ"}));
  BOOST_CHECK_EXCEPTION(time_major.forward(q_t, Tensor<double>::zeros({6, 4}), Tensor<double>::zeros({6, 4})), shape_error,
                        says({"MultiheadAttention::prepare", "keys [6, 4]", "[Tk, B, Dk]", "sequence-first"}));
  // Additive values that only ever give NaN.
  Array<double> not_a_number = xt::zeros<double>({3, 6});
  not_a_number(1, 2) = std::numeric_limits<double>::quiet_NaN();
  BOOST_CHECK_EXCEPTION(nn::AttentionMask{not_a_number}, std::invalid_argument,
                        says({"attn_mask", "element 8", "[3, 6]", "finite or -inf"}));
  Array<float> plus_infinity = xt::zeros<float>({3, 6});
  plus_infinity(0, 0) = std::numeric_limits<float>::infinity();
  BOOST_CHECK_EXCEPTION(nn::AttentionMask{plus_infinity}, std::invalid_argument, says({"attn_mask", "element 0", "inf"}));
}

BOOST_AUTO_TEST_CASE(errors_name_the_variant_and_every_shape) {
  const Tensor<double> q = Tensor<double>::zeros({2, 3, 4}), k = Tensor<double>::zeros({2, 5, 3});
  const Tensor<double> v = Tensor<double>::zeros({2, 5, 6});
  BOOST_CHECK_EXCEPTION(nn::DotAttention<double>().forward(q, k, v), shape_error,
                        says({"DotAttention", "query [2, 3, 4]", "keys [2, 5, 3]", "values [2, 5, 6]", "Dq", "Dk"}));
  nn::AdditiveAttention<double> additive({.query_size = 4, .key_size = 3, .attention_size = 2});
  BOOST_CHECK_EXCEPTION(additive.forward(q, k, v, {.key_padding = Mask(xt::zeros<bool>({2, 4}))}), shape_error,
                        says({"AdditiveAttention", "query [2, 3, 4]", "keys [2, 5, 3]", "values [2, 5, 6]",
                              "key_padding [2, 4]", "[2, 5]"}));
  BOOST_CHECK_EXCEPTION(additive.prepare(k, Tensor<double>::zeros({3, 5, 6})), shape_error,
                        says({"AdditiveAttention::prepare", "keys [2, 5, 3]", "values [3, 5, 6]"}));
  nn::MultiheadAttention<double> multihead({.embed_dim = 4, .num_heads = 2});
  BOOST_CHECK_EXCEPTION(multihead.forward(q, k, v), shape_error,
                        says({"MultiheadAttention::prepare", "keys [2, 5, 3]", "must be 4"}));
  nn::GeneralAttention<double> general({.query_size = 4, .key_size = 3});
  BOOST_CHECK_EXCEPTION(general.attend(q, nn::DotAttention<double>().prepare(k, v)), shape_error,
                        says({"GeneralAttention", "projected_keys is missing"}));
  BOOST_CHECK_THROW(nn::MultiheadAttention<double>({.embed_dim = 6, .num_heads = 4}), std::invalid_argument);
  BOOST_CHECK_THROW(nn::LocalAttention<double>({.query_size = 2, .key_size = 2, .window = 0}), std::invalid_argument);
  BOOST_CHECK_THROW(nn::GeneralAttention<double>({.query_size = 0, .key_size = 2}), std::invalid_argument);
}
