// Reshape, permute, concat, stack, slice and select: values, gradients, errors.
#define BOOST_TEST_MODULE layout
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

namespace {
Tensor<double> counting(const Shape& shape) {
  Array<double> values = Array<double>::from_shape(shape);
  for (std::size_t i = 0; i < values.size(); ++i) values.data()[i] = double(i);
  return Tensor<double>(std::move(values));
}
}  // namespace

BOOST_AUTO_TEST_CASE(reshape_squeeze_unsqueeze) {
  Tensor<double> x = counting({2, 3});
  check_close(reshape(x, {3, -1}).value(), Array<double>{{0.0, 1.0}, {2.0, 3.0}, {4.0, 5.0}});
  BOOST_TEST(to_string(unsqueeze(x, 1).shape()) == "[2, 1, 3]");
  BOOST_TEST(to_string(unsqueeze(x, -1).shape()) == "[2, 3, 1]");
  BOOST_TEST(to_string(squeeze(unsqueeze(x, 0), 0).shape()) == "[2, 3]");
  BOOST_CHECK_THROW(reshape(x, {4, -1}), shape_error);
  BOOST_CHECK_THROW(reshape(x, {-1, -1}), shape_error);
  BOOST_CHECK_THROW(squeeze(x, 0), shape_error);
}

BOOST_AUTO_TEST_CASE(permute_and_transpose_values) {
  Tensor<double> x = counting({2, 3, 4});
  Tensor<double> p = permute(x, {2, 0, 1});
  BOOST_TEST(to_string(p.shape()) == "[4, 2, 3]");
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j)
      for (std::size_t k = 0; k < 4; ++k) BOOST_TEST(p.value()(k, i, j) == x.value()(i, j, k));
  check_close(transpose(counting({2, 3}), 0, 1).value(), Array<double>{{0.0, 3.0}, {1.0, 4.0}, {2.0, 5.0}});
  BOOST_CHECK_THROW(permute(x, {0, 0, 1}), shape_error);
  BOOST_CHECK_THROW(permute(x, {0, 1}), shape_error);
}

BOOST_AUTO_TEST_CASE(concat_stack_values) {
  Tensor<double> a = counting({2, 2});
  Tensor<double> b = counting({2, 1});
  check_close(concat<double>({a, b}, 1).value(), Array<double>{{0.0, 1.0, 0.0}, {2.0, 3.0, 1.0}});
  check_close(concat<double>({a, a}, 0).value(), Array<double>{{0.0, 1.0}, {2.0, 3.0}, {0.0, 1.0}, {2.0, 3.0}});
  check_close(stack<double>({a, a * 10.0}, 1).value(),
              Array<double>{{{0.0, 1.0}, {0.0, 10.0}}, {{2.0, 3.0}, {20.0, 30.0}}});
  try {
    concat<double>({a, b}, 0);
    BOOST_FAIL("concat of incompatible shapes must throw");
  } catch (const shape_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("[2, 2], [2, 1]") != std::string::npos, message);
  }
  BOOST_CHECK_THROW(stack<double>({a, b}, 0), shape_error);
  BOOST_CHECK_THROW(concat<double>({}, 0), shape_error);
}

BOOST_AUTO_TEST_CASE(slice_select_values) {
  Tensor<double> x = counting({3, 4});
  check_close(slice(x, 1, 1, 3).value(), Array<double>{{1.0, 2.0}, {5.0, 6.0}, {9.0, 10.0}});
  check_close(slice(x, 0, -1, 3).value(), Array<double>{{8.0, 9.0, 10.0, 11.0}});
  check_close(select(x, 1, 2).value(), Array<double>{2.0, 6.0, 10.0});
  check_close(select(x, 0, -1).value(), Array<double>{8.0, 9.0, 10.0, 11.0});
  BOOST_TEST(slice(x, 1, 2, 2).size() == 0u);
  BOOST_CHECK_THROW(slice(x, 1, 0, 5), index_error);
  BOOST_CHECK_THROW(slice(x, 1, 3, 1), index_error);
  BOOST_CHECK_THROW(select(x, 0, 3), index_error);
}

BOOST_AUTO_TEST_CASE(gradients) {
  Tensor<double> x = random_tensor({2, 3, 4}, 1);
  Tensor<double> y = random_tensor({2, 2, 4}, 2);
  Tensor<double> z = random_tensor({2, 3, 4}, 3);
  check_gradients([](const Inputs& v) { return reshape(v[0], {4, -1}); }, {x});
  check_gradients([](const Inputs& v) { return unsqueeze(v[0], 1); }, {x});
  check_gradients([](const Inputs& v) { return permute(v[0], {1, 2, 0}); }, {x});
  check_gradients([](const Inputs& v) { return transpose(v[0], 0, 2); }, {x});
  check_gradients([](const Inputs& v) { return concat<double>({v[0], v[1]}, 1); }, {x, y});
  check_gradients([](const Inputs& v) { return concat<double>({v[0], v[1], v[0]}, 1); }, {x, y});
  check_gradients([](const Inputs& v) { return stack<double>({v[0], v[1]}, 2); }, {x, z});
  check_gradients([](const Inputs& v) { return slice(v[0], 2, 1, 3); }, {x});
  check_gradients([](const Inputs& v) { return select(v[0], 1, 1); }, {x});
}
