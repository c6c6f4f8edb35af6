// Reductions: values with and without keepdims, gradients, and errors.
#define BOOST_TEST_MODULE reduce
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_tensor;
using xgrad::testing::shaped;
using Inputs = std::vector<Tensor<double>>;

namespace {
Tensor<double> sample() {
  return Tensor<double>(Array<double>{{{1.0, 5.0, -2.0}, {4.0, 0.5, 3.0}}, {{-1.0, 2.0, 7.0}, {6.0, -3.0, 0.0}}});
}
}  // namespace

BOOST_AUTO_TEST_CASE(sum_values) {
  const Tensor<double> x = sample();  // [2, 2, 3]
  BOOST_TEST(sum(x).item() == 22.5);
  BOOST_TEST(sum(x).dim() == 0u);
  check_close(sum(x, {0}).value(), Array<double>{{0.0, 7.0, 5.0}, {10.0, -2.5, 3.0}});
  check_close(sum(x, {-1}).value(), Array<double>{{4.0, 7.5}, {8.0, 3.0}});
  check_close(sum(x, {0, 2}, true).value(), shaped<Array<double>>({1, 2, 1}, {12.0, 10.5}));
  check_close(sum(x, {}).value(), x.value());
}

BOOST_AUTO_TEST_CASE(mean_values) {
  const Tensor<double> x = sample();
  BOOST_TEST(mean(x).item() == 22.5 / 12.0);
  check_close(mean(x, {1}).value(), Array<double>{{2.5, 2.75, 0.5}, {2.5, -0.5, 3.5}});
  check_close(mean(x, {1, 2}, true).value(), shaped<Array<double>>({2, 1, 1}, {11.5 / 6.0, 11.0 / 6.0}));
}

BOOST_AUTO_TEST_CASE(max_values_and_argmax) {
  const Tensor<double> x = sample();
  BOOST_TEST(max(x).item() == 7.0);
  check_close(max(x, {2}).value(), Array<double>{{5.0, 4.0}, {7.0, 6.0}});
  check_close(max(x, {0, 1}, true).value(), Array<double>{{{6.0, 5.0, 7.0}}});
  BOOST_TEST(argmax(x, -1) == (Indices{{1, 0}, {2, 0}}));
  BOOST_TEST(argmax(x, 1, true) == (Indices{{{1, 0, 1}}, {{1, 0, 0}}}));
}

BOOST_AUTO_TEST_CASE(max_propagates_nan) {
  Tensor<double> x(Array<double>{1.0, std::nan(""), 3.0});
  BOOST_TEST(std::isnan(max(x).item()));
}

BOOST_AUTO_TEST_CASE(gradients) {
  Tensor<double> x = random_tensor({3, 4, 5}, 1);
  check_gradients([](const Inputs& v) { return sum(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return sum(v[0], {1}); }, {x});
  check_gradients([](const Inputs& v) { return sum(v[0], {0, 2}, true); }, {x});
  check_gradients([](const Inputs& v) { return mean(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return mean(v[0], {-1}); }, {x});
  check_gradients([](const Inputs& v) { return mean(v[0], {0, 1}, true); }, {x});
  check_gradients([](const Inputs& v) { return max(v[0]); }, {x});
  check_gradients([](const Inputs& v) { return max(v[0], {1}); }, {x});
  check_gradients([](const Inputs& v) { return max(v[0], {0, 2}, true); }, {x});
}

BOOST_AUTO_TEST_CASE(max_gradient_goes_to_the_first_maximum) {
  Tensor<double> x(Array<double>{{2.0, 5.0, 5.0}, {1.0, 1.0, 0.0}}, true);
  sum(max(x, {1})).backward();
  check_close(x.grad(), Array<double>{{0.0, 1.0, 0.0}, {1.0, 0.0, 0.0}});
}

BOOST_AUTO_TEST_CASE(errors) {
  Tensor<double> x = random_tensor({2, 3}, 2);
  BOOST_CHECK_THROW(sum(x, {2}), shape_error);
  BOOST_CHECK_THROW(sum(x, {0, -2}), shape_error);  // the same axis twice
  BOOST_CHECK_THROW(max(Tensor<double>::zeros({0, 3})), shape_error);
  BOOST_CHECK_THROW(mean(Tensor<double>::zeros({2, 0}), {1}), shape_error);
  try {
    sum(x, {5});
  } catch (const shape_error& e) {
    BOOST_TEST(std::string(e.what()).find("sum: axis 5") != std::string::npos, e.what());
  }
}
