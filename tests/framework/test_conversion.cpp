// float <-> double conversion (x.to<U>(), cast<U>(x)): values, and gradients converted back.
#define BOOST_TEST_MODULE conversion
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;

BOOST_AUTO_TEST_CASE(values_convert_both_ways) {
  const Tensor<float> f = Tensor<float>::from({0.1f, -2.5f, 3.0f}, {3});
  const Tensor<double> d = f.to<double>();
  BOOST_TEST(to_string(d.shape()) == "[3]");
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(d.value()(i) == static_cast<double>(f.value()(i)));
  const Tensor<float> back = cast<float>(d);
  check_close(back.value(), f.value(), 0.0);
  BOOST_TEST(!d.requires_grad());
  BOOST_TEST(live_node_count() == 0u);
}

BOOST_AUTO_TEST_CASE(converting_to_the_same_type_is_the_tensor_itself) {
  Tensor<double> x = Tensor<double>::from({1, 2}, {2}, true);
  BOOST_TEST(x.to<double>().same(x));
  BOOST_TEST(cast<double>(x).same(x));
}

BOOST_AUTO_TEST_CASE(gradients_flow_back_through_a_conversion_converted) {
  // A float model with a double loss: d/dw sum((w * x)^2) = 2 w x^2.
  Tensor<float> w = Tensor<float>::from({0.5f, -1.5f}, {2}, true);
  const Tensor<float> x = Tensor<float>::from({2.0f, 3.0f}, {2});
  {
    const Tensor<double> product = (w * x).to<double>();
    BOOST_TEST(product.requires_grad());
    BOOST_TEST(std::string(product.impl().grad_fn->op()) == "to<double>");
    sum(product * product).backward();
    check_close(w.grad(), Array<float>{4.0f, -27.0f}, 1e-6);
  }
  BOOST_TEST(live_node_count() == 0u);  // the graph went with its last tensor

  // A double leaf through float ops: d/dv sum(3 v) = 3.
  Tensor<double> v = Tensor<double>::from({0.25, 4.0}, {2}, true);
  sum(cast<float>(v) * 3.0f).backward();
  check_close(v.grad(), Array<double>{3.0, 3.0}, 0.0);
}

BOOST_AUTO_TEST_CASE(no_graph_is_recorded_without_grad) {
  Tensor<float> w = Tensor<float>::from({1.0f}, {1}, true);
  NoGradGuard no_grad;
  BOOST_TEST(!w.to<double>().requires_grad());
  BOOST_TEST(live_node_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_retained_graph_through_conversions_backpropagates_twice) {
  Tensor<float> w = Tensor<float>::from({2.0f}, {1}, true);
  Tensor<float> loss = cast<float>(exp(w.to<double>()));  // d/dw = e^w, there and back
  loss.backward(Array<float>{1.0f}, BackwardOptions{.retain_graph = true});
  loss.backward(Array<float>{1.0f});
  check_close(w.grad(), Array<float>{2.0f * std::exp(2.0f)}, 1e-5);
}

BOOST_AUTO_TEST_CASE(gradcheck_through_a_round_trip_in_float) {
  // The float leg rounds to 24 bits (about 3e-8 here): with a step of 1e-2 that moves the
  // difference quotients by under 1e-5, and central differences of this quadratic are
  // otherwise exact. A wrong gradient (one missing or doubled) is off by 3 |x|.
  const GradcheckOptions options{.eps = 1e-2};
  const Tensor<double> x = xgrad::testing::random_tensor({2, 3}, 11);
  xgrad::testing::check_gradients(
      [](const std::vector<Tensor<double>>& xs) { return cast<double>(cast<float>(xs[0]) * 3.0f) * xs[0]; }, {x},
      options);
  xgrad::testing::check_gradients([](const std::vector<Tensor<double>>& xs) { return tanh(xs[0].to<double>()); },
                                  {x});
}
