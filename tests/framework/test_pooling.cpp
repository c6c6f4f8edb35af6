// max_pool2d and avg_pool2d: hand-computed values (ties, padding), gradients, PyTorch parity
// in double and float, and errors.
#define BOOST_TEST_MODULE pooling
#include <boost/mpl/list.hpp>
#include <cmath>
#include <limits>

#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::error_message;
using xgrad::testing::fixture;
using xgrad::testing::fixture_objective;
using xgrad::testing::random_tensor;
using xgrad::testing::sum_error_bound;
using Inputs = std::vector<Tensor<double>>;
using Precisions = boost::mpl::list<float, double>;

BOOST_AUTO_TEST_CASE(max_pooling_takes_the_first_largest_value) {
  Tensor<double> x = Tensor<double>::from({1, 3, 3, 0, 2, 0, 3, 1, 0, 2, 1, 2}, {1, 1, 3, 4}, true);
  Tensor<double> y = max_pool2d(x, {.kernel_size = 2});
  check_close(y.value(), Array<double>{{{{3, 3}}}});
  // The right window holds 3 twice: the first in row-major order, (0, 2), takes the gradient.
  sum(y * Tensor<double>::from({10, 20}, {1, 1, 1, 2})).backward();
  check_close(x.grad(), Array<double>{{{{0, 10, 20, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}}});
  // A NaN wins over anything, each over the ones before it in row-major order (PyTorch's rule).
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor<double> with_nans = Tensor<double>::from({1, nan, 5, nan}, {1, 1, 2, 2}, true);
  Tensor<double> pooled = max_pool2d(with_nans, {.kernel_size = 2});
  BOOST_TEST(std::isnan(pooled.value()(0)));
  sum(pooled).backward();
  check_close(with_nans.grad(), Array<double>{{{{0, 0}, {0, 1}}}});
  // The padding never wins, even over values below zero.
  const Tensor<double> negative = Tensor<double>::full({1, 2, 3, 3}, -5.0);
  check_close(max_pool2d(negative, {.kernel_size = 3, .stride = 1, .padding = 1}).value(),
              Array<double>(xt::full_like(negative.value(), -5.0)));
  // Dilation: taps two apart, so that the window of a 3 x 3 kernel covers the corners of 5 x 5.
  Tensor<double> grid = Tensor<double>::from({0, 9, 0, 9, 4, 9, 9, 9, 9, 9, 0, 9, 0, 9, 0, 9, 9, 9, 9, 9, 7, 9, 0, 9, 2},
                                             {1, 1, 5, 5});
  check_close(max_pool2d(grid, {.kernel_size = 3, .dilation = 2}).value(), xgrad::testing::shaped<Array<double>>({1, 1, 1, 1}, {7}));
}

BOOST_AUTO_TEST_CASE(average_pooling_counts_the_padding_as_pytorch_does) {
  const Tensor<double> x = Tensor<double>::from({1, 2, 3, 4}, {1, 1, 2, 2});
  check_close(avg_pool2d(x, {.kernel_size = 2, .stride = 1, .padding = 1}).value(),
              Array<double>{{{{0.25, 0.75, 0.5}, {1, 2.5, 1.5}, {0.75, 1.75, 1}}}});
  check_close(avg_pool2d(x, {.kernel_size = 2, .stride = 1, .padding = 1, .count_include_pad = false}).value(),
              Array<double>{{{{1, 1.5, 2}, {2, 2.5, 3}, {3, 3.5, 4}}}});
}

BOOST_AUTO_TEST_CASE(gradients) {
  const Tensor<double> x = random_tensor({2, 3, 6, 5}, 1);
  check_gradients([](const Inputs& v) { return max_pool2d(v[0], {.kernel_size = 3, .stride = 2, .padding = 1}); }, {x});
  check_gradients([](const Inputs& v) { return max_pool2d(v[0], {.kernel_size = {2, 3}, .dilation = {2, 1}}); }, {x});
  check_gradients([](const Inputs& v) { return max_pool2d(v[0], {.kernel_size = 2}); }, {x});
  for (const bool include : {true, false}) {
    check_gradients([&](const Inputs& v) {
      return avg_pool2d(v[0], {.kernel_size = 3, .stride = 2, .padding = 1, .count_include_pad = include});
    }, {x});
    check_gradients([&](const Inputs& v) {
      return avg_pool2d(v[0], {.kernel_size = {3, 2}, .stride = Size2d{1, 2}, .padding = {1, 0}, .count_include_pad = include});
    }, {x});
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(matches_pytorch, T, Precisions) {
  // Max pooling copies values (the fixture's are small integers, exact in float); the average of
  // a 3 x 2 window sums 6 terms of magnitude below 5 (N(0, 1) values), then divides; the input
  // gradient adds at most 6 shares of an output gradient below 1. Both are rounded to float on
  // the way in as well, hence the factor 2.
  const double tolerance = std::is_same_v<T, double> ? 1e-12 : 2 * sum_error_bound<float>(6, 6 * 5.0);
  const auto check = [&](const std::string& name, const std::function<Tensor<T>(const Tensor<T>&)>& pool) {
    BOOST_TEST_CONTEXT(name) {
      const safetensors::File file = fixture(name);
      Tensor<T> x(file.floats<T>("input"), true);
      Tensor<T> y = pool(x);
      check_close(y.value(), file.floats<double>("output"), tolerance);
      fixture_objective(y, file).backward();
      check_close(x.grad(), file.floats<double>("grad.input"), tolerance);
    }
  };
  check("max_pool2d", [](const Tensor<T>& x) { return max_pool2d(x, {.kernel_size = 3, .stride = 2, .padding = 1}); });
  check("avg_pool2d", [](const Tensor<T>& x) {
    return avg_pool2d(x, {.kernel_size = {3, 2}, .stride = Size2d{2, 1}, .padding = 1});
  });
  check("avg_pool2d_exclude_pad", [](const Tensor<T>& x) {
    return avg_pool2d(x, {.kernel_size = {3, 2}, .stride = Size2d{2, 1}, .padding = 1, .count_include_pad = false});
  });
}

BOOST_AUTO_TEST_CASE(errors_name_the_shape_and_the_options) {
  const Tensor<double> x = random_tensor({1, 1, 3, 3}, 2);
  BOOST_TEST(error_message<shape_error>([] { max_pool2d(random_tensor({3, 3}, 3)); }) ==
             "max_pool2d: input of shape [3, 3] is not an image batch [B, C, H, W]");
  BOOST_TEST(error_message<std::invalid_argument>([&] { max_pool2d(x, {.kernel_size = 3, .padding = 2}); }) ==
             "max_pool2d: padding (2, 2) must be at most half of kernel_size (3, 3)");
  BOOST_TEST(error_message<std::invalid_argument>([&] { avg_pool2d(x, {.kernel_size = 2, .stride = Size2d{0}}); }) ==
             "avg_pool2d: stride (0, 0) must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([&] { max_pool2d(x, {.kernel_size = {4, 1}}); }) ==
             "max_pool2d: kernel_size (4, 1) with dilation (1, 1) spans (4, 1), larger than the input [1, 1, 3, 3] "
             "padded by (0, 0) to (3, 3)");
  BOOST_CHECK_THROW(avg_pool2d(x, {.kernel_size = 0}), std::invalid_argument);
}
