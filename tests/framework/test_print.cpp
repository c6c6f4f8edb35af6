// Printing tensors with <<: PyTorch 1.13's repr (the texts below are what it prints for the
// same values), followed by the shape, the dtype for double and the autograd state.
#define BOOST_TEST_MODULE print
#include "xgrad_test.h"

#include <sstream>

#include <xtensor/xbuilder.hpp>

using namespace xgrad;

namespace {

template <class T>
std::string printed(const Tensor<T>& tensor) {
  std::ostringstream out;
  out << tensor;
  BOOST_TEST(out.str() == to_string(tensor));
  return out.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(whole_numbers_print_with_a_point_and_rows_on_lines) {
  const Tensor<float> x = Tensor<float>::from({1, 2, 3, 4}, {2, 2});
  BOOST_TEST(printed(x) ==
             "tensor([[1., 2.],\n"
             "        [3., 4.]], shape=[2, 2])");
  BOOST_TEST(printed(Tensor<float>::from({3}, {})) == "tensor(3., shape=[])");
}

BOOST_AUTO_TEST_CASE(fractions_print_with_four_decimals_right_aligned) {
  BOOST_TEST(printed(Tensor<float>::from({0.5f, -1.25f}, {2})) == "tensor([ 0.5000, -1.2500], shape=[2])");
  BOOST_TEST(printed(Tensor<float>::scalar(3.5f)) == "tensor(3.5000, shape=[])");
  BOOST_TEST(printed(Tensor<float>::from({0.1f, 10.25f, -3.0f}, {3})) ==
             "tensor([ 0.1000, 10.2500, -3.0000], shape=[3])");
}

BOOST_AUTO_TEST_CASE(widely_differing_magnitudes_print_in_scientific_notation) {
  BOOST_TEST(printed(Tensor<float>::from({1e-5f, 1.0f}, {2})) == "tensor([1.0000e-05, 1.0000e+00], shape=[2])");
  BOOST_TEST(printed(Tensor<float>::from({1.0f, 5000.0f}, {2})) == "tensor([1.0000e+00, 5.0000e+03], shape=[2])");
}

BOOST_AUTO_TEST_CASE(non_finite_values_and_zeros_print_as_pytorch_prints_them) {
  const float inf = std::numeric_limits<float>::infinity();
  BOOST_TEST(printed(Tensor<float>::from({1.0f, std::nanf(""), inf, -inf}, {4})) ==
             "tensor([1., nan, inf, -inf], shape=[4])");
  BOOST_TEST(printed(Tensor<float>::zeros({3})) == "tensor([0., 0., 0.], shape=[3])");
  BOOST_TEST(printed(Tensor<float>::zeros({0, 3})) == "tensor([], shape=[0, 3])");
}

BOOST_AUTO_TEST_CASE(higher_ranks_separate_blocks_by_blank_lines) {
  BOOST_TEST(printed(Tensor<float>::zeros({2, 2, 2})) ==
             "tensor([[[0., 0.],\n"
             "         [0., 0.]],\n"
             "\n"
             "        [[0., 0.],\n"
             "         [0., 0.]]], shape=[2, 2, 2])");
}

BOOST_AUTO_TEST_CASE(long_rows_wrap_at_eighty_columns) {
  // Elements of width 6 take 8 columns: (80 - 7) / 8 = 9 a line.
  BOOST_TEST(printed(Tensor<float>::full({12}, 0.5f)) ==
             "tensor([0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000, 0.5000,\n"
             "        0.5000, 0.5000, 0.5000], shape=[12])");
}

BOOST_AUTO_TEST_CASE(past_a_thousand_elements_only_the_edges_are_shown) {
  BOOST_TEST(printed(Tensor<float>::zeros({2000})) == "tensor([0., 0., 0.,  ..., 0., 0., 0.], shape=[2000])");
  // The notation is chosen from the elements shown: 0 .. 2 and 1997 .. 1999.
  Tensor<float> counting(xt::arange<float>(2000.0f));
  BOOST_TEST(printed(counting) ==
             "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
             "        1.9990e+03], shape=[2000])");
  BOOST_TEST(printed(Tensor<float>::ones({100, 100})) ==
             "tensor([[1., 1., 1.,  ..., 1., 1., 1.],\n"
             "        [1., 1., 1.,  ..., 1., 1., 1.],\n"
             "        [1., 1., 1.,  ..., 1., 1., 1.],\n"
             "        ...,\n"
             "        [1., 1., 1.,  ..., 1., 1., 1.],\n"
             "        [1., 1., 1.,  ..., 1., 1., 1.],\n"
             "        [1., 1., 1.,  ..., 1., 1., 1.]], shape=[100, 100])");
  // 1000 elements are all shown.
  const std::string thousand = printed(Tensor<float>::zeros({1000}));
  BOOST_TEST(thousand.find("...") == std::string::npos);
  BOOST_TEST(std::count(thousand.begin(), thousand.end(), ',') == 1000);  // 999 between values, 1 before shape
}

BOOST_AUTO_TEST_CASE(the_autograd_state_and_the_dtype_follow_the_shape) {
  Tensor<float> w = Tensor<float>::from({1, 2}, {2}, true);
  BOOST_TEST(printed(w) == "tensor([1., 2.], shape=[2], requires_grad=true)");
  BOOST_TEST(printed(w * 2.0f) == "tensor([2., 4.], shape=[2], grad_fn=<mul>)");
  BOOST_TEST(printed(tanh(Tensor<double>::from({0}, {1}, true))) ==
             "tensor([0.], shape=[1], dtype=double, grad_fn=<tanh>)");
  BOOST_TEST(printed(Tensor<double>::from({0.25}, {1})) == "tensor([0.2500], shape=[1], dtype=double)");
}

BOOST_AUTO_TEST_CASE(suffixes_past_the_line_width_go_on_a_line_of_their_own) {
  // The values end at column 79: ", shape=[8]" would pass column 80.
  const Tensor<float> x = Tensor<float>::full({8}, -0.125f);
  BOOST_TEST(printed(x) ==
             "tensor([-0.1250, -0.1250, -0.1250, -0.1250, -0.1250, -0.1250, -0.1250, -0.1250],\n"
             "       shape=[8])");
}

BOOST_AUTO_TEST_CASE(freed_and_undefined_tensors_say_so) {
  BOOST_TEST(printed(Tensor<float>()) == "tensor(undefined)");
  const Tensor<double> x = xgrad::testing::random_tensor({2, 3}, 1);
  const Tensor<double> w = xgrad::testing::random_tensor({8, 3}, 2);
  // Neither concat nor linear reads the product: with no handle left, its value is freed.
  const Tensor<double> joined = concat(std::vector{linear(x, w)}, 0);
  const Tensor<double>& freed = joined.impl().grad_fn->inputs()[0];
  BOOST_TEST_REQUIRE(freed.impl().value_released());
  BOOST_TEST(printed(freed) == "tensor(<freed>, shape=[2, 8], dtype=double, grad_fn=<linear>)");
}
