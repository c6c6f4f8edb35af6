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

BOOST_AUTO_TEST_CASE(batch_norm_values_and_running_statistics) {
  // Channel 0 holds 1, 2, 3, 6 (mean 3, biased variance 3.5, unbiased 14/3); channel 1 holds
  // 0, 0, 4, 4 (mean 2, variance 4, unbiased 16/3), over a batch of 2 with 2 positions each.
  const Tensor<double> x = Tensor<double>::from({1, 2, 0, 0, 3, 6, 4, 4}, {2, 2, 2});
  Tensor<double> running_mean = Tensor<double>::from({1, -1}, {2});
  Tensor<double> running_var = Tensor<double>::from({2, 0.5}, {2});
  const Tensor<double> w = Tensor<double>::from({2, -1}, {2});
  const Tensor<double> b = Tensor<double>::from({0.5, 0}, {2});
  const double r0 = 1 / std::sqrt(3.5 + 1e-5), r1 = 1 / std::sqrt(4 + 1e-5);
  check_close(batch_norm(x, running_mean, running_var, w, b).value(),
              Array<double>{{{-4 * r0 + 0.5, -2 * r0 + 0.5}, {2 * r1, 2 * r1}},
                            {{0.5, 6 * r0 + 0.5}, {-2 * r1, -2 * r1}}});
  check_close(running_mean.value(), Array<double>{0.9 * 1 + 0.1 * 3, 0.9 * -1 + 0.1 * 2});
  check_close(running_var.value(), Array<double>{0.9 * 2 + 0.1 * 14.0 / 3, 0.9 * 0.5 + 0.1 * 16.0 / 3});
  // Evaluation normalises with the running statistics and leaves them alone.
  const Array<double> mean_before = running_mean.value(), var_before = running_var.value();
  const Array<double> expected = (x.value() - xt::view(mean_before, xt::newaxis(), xt::all(), xt::newaxis())) /
                                 xt::sqrt(xt::view(var_before, xt::newaxis(), xt::all(), xt::newaxis()) + 1e-3);
  check_close(batch_norm(x, running_mean, running_var, {}, {}, {.training = false, .eps = 1e-3}).value(), expected);
  check_close(running_mean.value(), mean_before);
  check_close(running_var.value(), var_before);
}

BOOST_AUTO_TEST_CASE(batch_norm_gradients) {
  const Tensor<double> x = random_tensor({3, 2, 2, 3}, 11, -2.0, 2.0);
  const Tensor<double> w = random_tensor({2}, 12);
  const Tensor<double> b = random_tensor({2}, 13);
  // Running statistics are copied per call: gradcheck runs f many times and each call in
  // training would move them.
  const Tensor<double> mean = random_tensor({2}, 14, -0.5, 0.5, false), variance = random_tensor({2}, 15, 0.5, 2.0, false);
  const auto fresh = [](const Tensor<double>& t) { return Tensor<double>(t.value()); };
  for (const bool training : {true, false}) {
    check_gradients([&](const Inputs& v) {
      return batch_norm(v[0], fresh(mean), fresh(variance), v[1], v[2], {.training = training});
    }, {x, w, b});
    check_gradients([&](const Inputs& v) {
      return batch_norm(v[0], fresh(mean), fresh(variance), {}, {}, {.training = training});
    }, {x});
  }
  check_gradients([](const Inputs& v) { return batch_norm(v[0], {}, {}, v[1], v[2]); }, {x, w, b});
}

BOOST_AUTO_TEST_CASE(batch_norm_errors) {
  const Tensor<double> x = random_tensor({2, 3, 4}, 16);
  BOOST_TEST(xgrad::testing::error_message<shape_error>([&] { batch_norm(x, {}, {}, random_tensor({2}, 17)); }) ==
             "batch_norm: x of shape [2, 3, 4], running_mean (none), running_var (none), weight [2] and bias (none) "
             "do not fit (expected x [B, C, ...] and each of the others [C] or none)");
  BOOST_CHECK_THROW(batch_norm(random_tensor({3}, 18), {}, {}), shape_error);
  BOOST_TEST(xgrad::testing::error_message<shape_error>([] { batch_norm(random_tensor({1, 3}, 19), {}, {}); }) ==
             "batch_norm: x of shape [1, 3] has 1 value per channel; training needs more than one (a variance)");
  BOOST_TEST(xgrad::testing::error_message<std::invalid_argument>([&] {
               batch_norm(x, {}, {}, {}, {}, {.training = false});
             }) == "batch_norm: evaluation (training = false) needs running_mean and running_var");
}
