// Calls written as a libtorch user writes them compile and do what they say: brace lists for
// concat and stack, and where(...) without xgrad:: under `using namespace xgrad` (the Mask is
// an xtensor type, so the call also finds xt::where). This file failing to compile is the
// failure.
#define BOOST_TEST_MODULE call_forms
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;

BOOST_AUTO_TEST_CASE(concat_and_stack_take_brace_lists) {
  Tensor<float> a = Tensor<float>::from({1, 2}, {1, 2}, true);
  Tensor<float> b = Tensor<float>::from({3, 4, 5, 6}, {2, 2});
  const Tensor<float> joined = concat({a, b}, 0);
  check_close(joined.value(), Array<float>{{1, 2}, {3, 4}, {5, 6}}, 0.0);
  const Tensor<float> stacked = stack({a, a * 2.0f}, 0);
  check_close(stacked.value(), Array<float>{{{1, 2}}, {{2, 4}}}, 0.0);
  sum(joined).backward();
  check_close(a.grad(), Array<float>{{1, 1}}, 0.0);
  // The other forms keep working: a vector, an explicit type, one element, temporaries.
  const std::vector<Tensor<float>> parts{b, b};
  BOOST_TEST(to_string(concat(parts, 1).shape()) == "[2, 4]");
  BOOST_TEST(to_string(concat<float>({b}, 0).shape()) == "[2, 2]");
  BOOST_TEST(to_string(stack({Tensor<float>::zeros({3}), Tensor<float>::ones({3})}, -1).shape()) == "[3, 2]");
}

BOOST_AUTO_TEST_CASE(unqualified_where_is_xgrad_where_for_every_argument_form) {
  Mask mask{true, false, true};
  const Mask const_mask = mask;
  Tensor<double> a = Tensor<double>::from({1, 2, 3}, {3}, true);
  Tensor<double> b = Tensor<double>::from({10, 20, 30}, {3});
  const Tensor<double> const_b = b;
  const Array<double> expected{1, 20, 3};
  check_close(where(mask, a, b).value(), expected, 0.0);                  // non-const lvalues
  check_close(where(const_mask, a, const_b).value(), expected, 0.0);      // const ones
  check_close(where(Mask{true, false, true}, Tensor<double>(a), b).value(), expected, 0.0);  // temporaries
  check_close(xgrad::where(mask, a, b).value(), expected, 0.0);
  Tensor<double> selected = where(mask, a, b);
  BOOST_TEST(selected.requires_grad());
  sum(selected).backward();
  check_close(a.grad(), Array<double>{1, 0, 1}, 0.0);
  // xtensor's where on arrays is still xtensor's.
  const Array<double> arrays = where(mask, a.value(), b.value());
  check_close(arrays, expected, 0.0);
}
