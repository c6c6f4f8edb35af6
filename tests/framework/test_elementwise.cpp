// Elementwise operations: forward values against hand-computed ones, gradients by
// gradcheck (including broadcasting), and shape errors.
#define BOOST_TEST_MODULE elementwise
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_away_from_zero;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

BOOST_AUTO_TEST_CASE(binary_forward_values) {
  Tensor<double> a(Array<double>{{1.0, -2.0, 3.0}, {0.5, 4.0, -1.0}});
  Tensor<double> b(Array<double>{{2.0, 4.0, -1.0}, {0.25, 2.0, 3.0}});
  check_close(add(a, b).value(), Array<double>{{3.0, 2.0, 2.0}, {0.75, 6.0, 2.0}});
  check_close(sub(a, b).value(), Array<double>{{-1.0, -6.0, 4.0}, {0.25, 2.0, -4.0}});
  check_close(mul(a, b).value(), Array<double>{{2.0, -8.0, -3.0}, {0.125, 8.0, -3.0}});
  check_close(div(a, b).value(), Array<double>{{0.5, -0.5, -3.0}, {2.0, 2.0, -1.0 / 3.0}});
  Tensor<double> base(Array<double>{2.0, 9.0, 0.5});
  Tensor<double> exponent(Array<double>{3.0, 0.5, -1.0});
  check_close(pow(base, exponent).value(), Array<double>{8.0, 3.0, 2.0});
}

BOOST_AUTO_TEST_CASE(broadcast_forward_values) {
  Tensor<double> column = reshape(Tensor<double>(Array<double>{1.0, 2.0}), {2, 1});
  Tensor<double> row(Array<double>{10.0, 20.0, 30.0});  // [3]
  check_close(add(column, row).value(), Array<double>{{11.0, 21.0, 31.0}, {12.0, 22.0, 32.0}});
  check_close(mul(row, column).value(), Array<double>{{10.0, 20.0, 30.0}, {20.0, 40.0, 60.0}});
  Tensor<double> scalar(Array<double>(2.0));  // rank 0
  check_close(sub(row, scalar).value(), Array<double>{8.0, 18.0, 28.0});
}

BOOST_AUTO_TEST_CASE(scalar_variants_and_operators) {
  Tensor<double> x(Array<double>{1.0, -2.0, 4.0});
  check_close((x + 1.0).value(), Array<double>{2.0, -1.0, 5.0});
  check_close((1.0 + x).value(), Array<double>{2.0, -1.0, 5.0});
  check_close((x - 1.0).value(), Array<double>{0.0, -3.0, 3.0});
  check_close((1.0 - x).value(), Array<double>{0.0, 3.0, -3.0});
  check_close((x * 3.0).value(), Array<double>{3.0, -6.0, 12.0});
  check_close((x / 2.0).value(), Array<double>{0.5, -1.0, 2.0});
  check_close((2.0 / x).value(), Array<double>{2.0, -1.0, 0.5});
  check_close(pow(x, 2.0).value(), Array<double>{1.0, 4.0, 16.0});
  check_close((-x).value(), Array<double>{-1.0, 2.0, -4.0});
  // A float tensor takes double literals without casts.
  Tensor<float> f(Array<float>{1.0f, 2.0f});
  check_close((f * 0.5).value(), Array<float>{0.5f, 1.0f});
}

BOOST_AUTO_TEST_CASE(unary_forward_values) {
  Tensor<double> x(Array<double>{-2.0, -0.5, 0.0, 1.5});
  check_close(neg(x).value(), Array<double>{2.0, 0.5, 0.0, -1.5});
  check_close(abs(x).value(), Array<double>{2.0, 0.5, 0.0, 1.5});
  check_close(relu(x).value(), Array<double>{0.0, 0.0, 0.0, 1.5});
  check_close(clamp(x, -1.0, 1.0).value(), Array<double>{-1.0, -0.5, 0.0, 1.0});
  check_close(exp(x).value(), Array<double>{std::exp(-2.0), std::exp(-0.5), 1.0, std::exp(1.5)});
  check_close(tanh(x).value(), Array<double>{std::tanh(-2.0), std::tanh(-0.5), 0.0, std::tanh(1.5)});
  check_close(sigmoid(x).value(),
              Array<double>{1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(0.5)), 0.5, 1 / (1 + std::exp(-1.5))});
  Tensor<double> positive(Array<double>{0.25, 1.0, 4.0});
  check_close(log(positive).value(), Array<double>{std::log(0.25), 0.0, std::log(4.0)});
  check_close(sqrt(positive).value(), Array<double>{0.5, 1.0, 2.0});
}

// Values from PyTorch 1.13 (F.gelu in float64, approximate 'none' and 'tanh').
BOOST_AUTO_TEST_CASE(gelu_forward_values_follow_pytorch) {
  Tensor<double> x(Array<double>{-2.0, -0.5, 0.0, 1.5});
  check_close(gelu(x).value(), Array<double>{-0.04550026389635842, -0.15426876936299344, 0.0, 1.399789198096713});
  check_close(gelu(x, GeluApproximation::tanh).value(),
              Array<double>{-0.04540230591222494, -0.15428599017485606, 0.0, 1.3995715769802328});
}

BOOST_AUTO_TEST_CASE(sigmoid_is_stable_for_large_inputs) {
  Tensor<float> x(Array<float>{-200.0f, 200.0f});
  check_close(sigmoid(x).value(), Array<float>{0.0f, 1.0f});
}

BOOST_AUTO_TEST_CASE(binary_gradients_same_shape) {
  const Shape shape{3, 4};
  Tensor<double> a = random_tensor(shape, 1);
  Tensor<double> b = random_tensor(shape, 2, 0.5, 2.0);  // positive: safe divisor
  check_gradients([](const Inputs& x) { return add(x[0], x[1]); }, {a, b});
  check_gradients([](const Inputs& x) { return sub(x[0], x[1]); }, {a, b});
  check_gradients([](const Inputs& x) { return mul(x[0], x[1]); }, {a, b});
  check_gradients([](const Inputs& x) { return div(x[0], x[1]); }, {a, b});
  Tensor<double> base = random_tensor(shape, 3, 0.5, 2.0);
  check_gradients([](const Inputs& x) { return pow(x[0], x[1]); }, {base, a});
}

BOOST_AUTO_TEST_CASE(binary_gradients_sum_over_broadcast_axes) {
  Tensor<double> matrix = random_tensor({2, 3, 4}, 4);
  Tensor<double> row = random_tensor({4}, 5, 0.5, 2.0);
  Tensor<double> column = random_tensor({2, 1, 1}, 6, 0.5, 2.0);
  Tensor<double> middle = random_tensor({3, 1}, 7, 0.5, 2.0);
  for (const Tensor<double>& other : {row, column, middle}) {
    check_gradients([](const Inputs& x) { return add(x[0], x[1]); }, {matrix, other});
    check_gradients([](const Inputs& x) { return sub(x[1], x[0]); }, {matrix, other});
    check_gradients([](const Inputs& x) { return mul(x[0], x[1]); }, {matrix, other});
    check_gradients([](const Inputs& x) { return div(x[0], x[1]); }, {matrix, other});
  }
  // Both operands broadcast: [3, 1] with [1, 4] -> [3, 4].
  Tensor<double> left = random_tensor({3, 1}, 8);
  Tensor<double> right = random_tensor({1, 4}, 9, 0.5, 2.0);
  check_gradients([](const Inputs& x) { return div(x[0], x[1]); }, {left, right});
  check_gradients([](const Inputs& x) { return pow(x[1], x[0]); }, {left, right});
}

BOOST_AUTO_TEST_CASE(scalar_variant_gradients) {
  Tensor<double> x = random_tensor({2, 3}, 10, 0.5, 2.0);
  check_gradients([](const Inputs& v) { return v[0] + 0.7; }, {x});
  check_gradients([](const Inputs& v) { return v[0] - 0.7; }, {x});
  check_gradients([](const Inputs& v) { return 0.7 - v[0]; }, {x});
  check_gradients([](const Inputs& v) { return v[0] * -1.3; }, {x});
  check_gradients([](const Inputs& v) { return v[0] / 1.3; }, {x});
  check_gradients([](const Inputs& v) { return 1.3 / v[0]; }, {x});
  check_gradients([](const Inputs& v) { return pow(v[0], 2.5); }, {x});
}

BOOST_AUTO_TEST_CASE(unary_gradients) {
  Tensor<double> x = random_away_from_zero({3, 4}, 11);
  Tensor<double> positive = random_tensor({3, 4}, 12, 0.2, 3.0);
  check_gradients([](const Inputs& v) { return neg(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return exp(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return log(v[0]); }, {positive});
  check_gradients([](const Inputs& v) { return sqrt(v[0]); }, {positive});
  check_gradients([](const Inputs& v) { return abs(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return tanh(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return sigmoid(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return relu(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return gelu(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return gelu(v[0], GeluApproximation::tanh); }, {x});
  check_gradients([](const Inputs& v) { return clamp(v[0], -0.55, 0.65); }, {x});
}

// Each op keeps for backward only the values its derivative reads, as PyTorch saves them:
// a value no backward reads is freed with its last handle outside the graph.
BOOST_AUTO_TEST_CASE(ops_keep_only_the_values_their_derivative_reads) {
  // Values larger than the record of their shape, which is all a freed value keeps.
  const Tensor<double> x = random_tensor({3, 16}, 13, 0.5, 2.0);
  const Tensor<double> y = random_tensor({16}, 14, 0.5, 2.0);
  // The operands are fresh intermediates (x * 1, y * 1) whose handles go away with the
  // statement that builds the result.
  auto kept = [](const std::function<Tensor<double>()>& build) {
    const Tensor<double> result = build();
    std::vector<bool> kept_inputs;
    for (const Tensor<double>& input : result.impl().grad_fn->inputs()) {
      kept_inputs.push_back(!input.impl().value_released());
    }
    return kept_inputs;
  };
  using Kept = std::vector<bool>;
  const Tensor<double> one_x = x * 1.0;  // a held intermediate, for ops whose input it must stay
  BOOST_TEST(kept([&] { return x * 1.0 + 1.0; }) == Kept{false});
  BOOST_TEST(kept([&] { return 2.0 - x * 1.0; }) == Kept{false});
  BOOST_TEST(kept([&] { return x * 1.0 * 3.0; }) == Kept{false});
  BOOST_TEST(kept([&] { return x * 1.0 / 3.0; }) == Kept{false});
  BOOST_TEST(kept([&] { return 3.0 / (x * 1.0); }) == Kept{true});
  BOOST_TEST(kept([&] { return pow(x * 1.0, 2.5); }) == Kept{true});
  BOOST_TEST(kept([&] { return neg(x * 1.0); }) == Kept{false});
  BOOST_TEST(kept([&] { return exp(x * 1.0); }) == Kept{false});
  BOOST_TEST(kept([&] { return log(x * 1.0); }) == Kept{true});
  BOOST_TEST(kept([&] { return sqrt(x * 1.0); }) == Kept{false});
  BOOST_TEST(kept([&] { return abs(x * 1.0); }) == Kept{true});
  BOOST_TEST(kept([&] { return tanh(x * 1.0); }) == Kept{false});
  BOOST_TEST(kept([&] { return sigmoid(x * 1.0); }) == Kept{false});
  BOOST_TEST(kept([&] { return relu(x * 1.0); }) == Kept{false});
  BOOST_TEST(kept([&] { return gelu(x * 1.0); }) == Kept{true});
  BOOST_TEST(kept([&] { return clamp(x * 1.0, 0.6, 1.5); }) == Kept{true});
  BOOST_TEST(kept([&] { return add(x * 1.0, y * 1.0); }) == (Kept{false, false}));
  BOOST_TEST(kept([&] { return sub(x * 1.0, y * 1.0); }) == (Kept{false, false}));
  BOOST_TEST(kept([&] { return mul(x * 1.0, y * 1.0); }) == (Kept{true, true}));
  BOOST_TEST(kept([&] { return div(x * 1.0, y * 1.0); }) == (Kept{false, true}));
  BOOST_TEST(kept([&] { return pow(x * 1.0, y * 1.0); }) == (Kept{true, true}));
  BOOST_TEST(kept([&] { return exp(one_x); }) == Kept{true});  // held outside the graph: readable as before

  // Gradients through freed operands, broadcasting included, against finite differences.
  check_gradients(
      [](const Inputs& v) {
        const Tensor<double> ratio = div(add(v[0] * 1.0, v[1] * 1.0), exp(v[1] * 0.5));
        return sub(tanh(ratio), sigmoid(v[1] * 2.0)) * relu(v[0] - 0.3) + sqrt(v[0] * 2.0);
      },
      {x, y});
}

BOOST_AUTO_TEST_CASE(gradients_at_kinks_follow_pytorch) {
  Tensor<double> x(Array<double>{0.0, -1.0, 1.0}, true);
  sum(abs(x) + relu(x) + clamp(x, -1.0, 1.0)).backward();
  check_close(x.grad(), Array<double>{0.0 + 0.0 + 1.0, -1.0 + 0.0 + 1.0, 1.0 + 1.0 + 1.0});
  Tensor<double> base(Array<double>{0.0}, true);
  Tensor<double> exponent(Array<double>{2.0}, true);
  sum(pow(base, exponent)).backward();
  BOOST_TEST(exponent.grad()(0) == 0.0);  // not 0 * log(0) = NaN
}

BOOST_AUTO_TEST_CASE(shape_errors_name_the_op_and_both_shapes) {
  Tensor<double> a = random_tensor({2, 3}, 13);
  Tensor<double> b = random_tensor({4, 3}, 14);
  try {
    add(a, b);
    BOOST_FAIL("mismatched shapes must throw");
  } catch (const shape_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("add") != std::string::npos, message);
    BOOST_TEST(message.find("[2, 3]") != std::string::npos, message);
    BOOST_TEST(message.find("[4, 3]") != std::string::npos, message);
  }
  BOOST_CHECK_THROW(mul(a, random_tensor({3, 2}, 15)), shape_error);
  BOOST_CHECK_THROW(clamp(a, 1.0, -1.0), std::invalid_argument);
  BOOST_TEST((std::is_base_of_v<std::invalid_argument, shape_error>));
}

BOOST_AUTO_TEST_CASE(float_and_double_agree) {
  Tensor<double> xd = random_tensor({5}, 16, -2.0, 2.0, false);
  Tensor<float> xf(Array<float>(xt::cast<float>(xd.value())));
  check_close(tanh(xf * xf + 1.0).value(), tanh(xd * xd + 1.0).value(), 1e-6);
}

BOOST_AUTO_TEST_CASE(fast_float_functions_agree_with_the_standard_library) {
  double worst_exp = 0, worst_sigmoid = 0, worst_tanh = 0;
  for (double v = -100.0; v <= 88.0; v += 0.00317) {
    const float x = static_cast<float>(v);
    const double e = std::exp(double(x));
    if (e > 1e-37) worst_exp = std::max(worst_exp, std::abs(math::exp(x) - e) / e);
    const double s = 1.0 / (1.0 + std::exp(-double(x)));
    if (s > 1e-37) worst_sigmoid = std::max(worst_sigmoid, std::abs(math::sigmoid(x) - s) / s);
    const double t = std::tanh(double(x));
    if (t != 0) worst_tanh = std::max(worst_tanh, std::abs(math::tanh(x) - t) / std::abs(t));
  }
  BOOST_TEST_MESSAGE("worst relative errors: exp " << worst_exp << ", sigmoid " << worst_sigmoid << ", tanh " << worst_tanh);
  BOOST_TEST(worst_exp < 2.5e-7);  // a few units in the last place of a float (6e-8)
  BOOST_TEST(worst_sigmoid < 2.5e-7);
  BOOST_TEST(worst_tanh < 1e-6);
  BOOST_TEST(std::isnan(math::exp(std::nanf(""))));
  BOOST_TEST(std::isnan(math::tanh(std::nanf(""))));
  BOOST_TEST(math::exp(1000.0f) == INFINITY);
  BOOST_TEST(math::exp(-1000.0f) == 0.0f);
  BOOST_TEST(math::tanh(-50.0f) == -1.0f);
  BOOST_TEST(math::sigmoid(-200.0f) == 0.0f);
  BOOST_TEST(math::tanh(1e-30f) == 1e-30f);  // small arguments keep their relative accuracy
}
