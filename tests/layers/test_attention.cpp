// The attention family: hand-computed values, gradients of inputs and parameters under
// padding and causal masks, step-by-step decoding against whole sequences, exact zeros for
// masked keys, PyTorch parity for multi-head attention, and error messages.
#define BOOST_TEST_MODULE attention
#include "xgrad_test.h"

#include <memory>

#include "xgrad/layers/attention.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::fixture;
using xgrad::testing::fixture_objective;
using xgrad::testing::load_parameters;
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
  all.push_back({"multihead", std::move(multihead), 4, 4, 4});
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

bool all_finite(const Array<double>& values) { return xt::all(xt::isfinite(values)); }

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

BOOST_AUTO_TEST_CASE(gradients_of_every_variant) {
  for_every_variant_and_mask([](const Variant& variant, const Inputs3& in, const nn::AttendOptions& options) {
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
  });
}

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

template <class T>
void multihead_parity(const std::string& name, std::size_t heads, bool causal) {
  BOOST_TEST_CONTEXT(name) {
    const safetensors::File file = fixture(name);
    nn::MultiheadAttention<T> attention({.embed_dim = 6, .num_heads = heads});
    load_parameters(attention, file);
    Tensor<T> query(file.floats<T>("query"), true), key(file.floats<T>("key"), true), value(file.floats<T>("value"), true);
    const Mask padding = xt::not_equal(file.integers("key_padding_mask"), 0);
    const auto out = attention.forward(query, key, value, {.key_padding = padding, .causal = causal});
    const double tol = parity_tolerance<T>;
    check_close(out.context.value(), file.floats<T>("output"), tol);
    check_close(out.weights.value(), file.floats<T>("weights"), tol);
    fixture_objective(out.context, file).backward();
    check_close(query.grad(), file.floats<T>("grad.query"), tol);
    check_close(key.grad(), file.floats<T>("grad.key"), tol);
    check_close(value.grad(), file.floats<T>("grad.value"), tol);
    for (const auto& [parameter_name, parameter] : attention.named_parameters()) {
      BOOST_TEST_CONTEXT(parameter_name) { check_close(parameter.grad(), file.floats<T>("grad." + parameter_name), tol); }
    }
  }
}

BOOST_AUTO_TEST_CASE(multihead_pytorch_parity_in_double) {
  multihead_parity<double>("attention_multihead_self", 2, true);
  multihead_parity<double>("attention_multihead_cross", 3, false);
}

BOOST_AUTO_TEST_CASE(multihead_pytorch_parity_in_float) {
  multihead_parity<float>("attention_multihead_self", 2, true);
  multihead_parity<float>("attention_multihead_cross", 3, false);
}

BOOST_AUTO_TEST_CASE(errors_name_the_variant_and_every_shape) {
  auto says = [](std::vector<std::string> parts) {
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
  };
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
