// layer_norm: values, gradients with and without affine parameters, errors.
#define BOOST_TEST_MODULE normalization
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

BOOST_AUTO_TEST_CASE(values) {
  Tensor<double> x = Tensor<double>::from({1, 2, 3, -1, -1, 5}, {2, 3});
  // Row 0: mean 2, variance 2/3; row 1: mean 1, variance 8.
  const double r0 = 1 / std::sqrt(2.0 / 3.0 + 1e-5), r1 = 1 / std::sqrt(8.0 + 1e-5);
  check_close(layer_norm(x, {3}).value(), Array<double>{{-r0, 0.0, r0}, {-2 * r1, -2 * r1, 4 * r1}});
  Tensor<double> w = Tensor<double>::from({1, 2, -1}, {3});
  Tensor<double> b = Tensor<double>::from({0, 0.5, 1}, {3});
  check_close(layer_norm(x, {3}, w, b).value(), Array<double>{{-r0, 0.5, 1 - r0}, {-2 * r1, 0.5 - 4 * r1, 1 - 4 * r1}});
  // Normalising over the last two axes treats them as one row.
  check_close(layer_norm(reshape(x, {1, 2, 3}), {2, 3}).value(), reshape(layer_norm(reshape(x, {1, 6}), {6}), {1, 2, 3}).value());
}

BOOST_AUTO_TEST_CASE(gradients) {
  Tensor<double> x = random_tensor({3, 2, 4}, 1, -2.0, 2.0);
  Tensor<double> w = random_tensor({4}, 2);
  Tensor<double> b = random_tensor({4}, 3);
  check_gradients([](const Inputs& v) { return layer_norm(v[0], {4}, v[1], v[2]); }, {x, w, b});
  check_gradients([](const Inputs& v) { return layer_norm(v[0], {4}); }, {x});
  Tensor<double> w2 = random_tensor({2, 4}, 4);
  check_gradients([](const Inputs& v) { return layer_norm(v[0], {2, 4}, v[1]); }, {x, w2});
}

BOOST_AUTO_TEST_CASE(errors) {
  Tensor<double> x = random_tensor({3, 4}, 5);
  BOOST_CHECK_THROW(layer_norm(x, {3}), shape_error);
  BOOST_CHECK_THROW(layer_norm(x, {4}, random_tensor({3}, 6)), shape_error);
  BOOST_CHECK_THROW(layer_norm(x, {}), shape_error);
}
