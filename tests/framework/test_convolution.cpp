// conv2d: values against a direct convolution, gradients with stride, padding and dilation,
// the same bits on any number of threads, and errors.
#define BOOST_TEST_MODULE convolution
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::error_message;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

namespace {

// y[b][o][oh][ow] = bias[o] + sum over c, i, j of w[o][c][i][j] x[b][c][oh s - p + i d][ow s - p + j d],
// read element by element: the definition, independent of the unfolding conv2d does.
Array<double> direct_convolution(const Array<double>& x, const Array<double>& w, const Array<double>* bias,
                                 const Conv2dOptions& options) {
  const std::size_t batch = x.shape()[0], channels = x.shape()[1], height = x.shape()[2], width = x.shape()[3];
  const std::size_t out = w.shape()[0], kh = w.shape()[2], kw = w.shape()[3];
  const auto [sh, sw] = options.stride;
  const auto [ph, pw] = options.padding;
  const auto [dh, dw] = options.dilation;
  const std::size_t oh_count = (height + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
  const std::size_t ow_count = (width + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
  Array<double> y = Array<double>::from_shape({batch, out, oh_count, ow_count});
  for (std::size_t b = 0; b < batch; ++b) {
    for (std::size_t o = 0; o < out; ++o) {
      for (std::size_t oh = 0; oh < oh_count; ++oh) {
        for (std::size_t ow = 0; ow < ow_count; ++ow) {
          double total = bias != nullptr ? (*bias)(o) : 0.0;
          for (std::size_t c = 0; c < channels; ++c) {
            for (std::size_t i = 0; i < kh; ++i) {
              for (std::size_t j = 0; j < kw; ++j) {
                const auto ih = static_cast<std::ptrdiff_t>(oh * sh + i * dh) - static_cast<std::ptrdiff_t>(ph);
                const auto iw = static_cast<std::ptrdiff_t>(ow * sw + j * dw) - static_cast<std::ptrdiff_t>(pw);
                if (ih < 0 || iw < 0 || ih >= static_cast<std::ptrdiff_t>(height) || iw >= static_cast<std::ptrdiff_t>(width)) {
                  continue;
                }
                total += w(o, c, i, j) * x(b, c, static_cast<std::size_t>(ih), static_cast<std::size_t>(iw));
              }
            }
          }
          y(b, o, oh, ow) = total;
        }
      }
    }
  }
  return y;
}

// Stride, padding and dilation, uneven between the axes, and a pointwise kernel.
const std::vector<Conv2dOptions> variants = {
    {},
    {.stride = 2, .padding = 1},
    {.stride = {1, 2}, .padding = {2, 1}, .dilation = {2, 1}},
    {.stride = {3, 1}, .padding = {0, 2}, .dilation = {1, 3}},
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_hand_computed_convolution) {
  // y[i][j] = x[i][j] - x[i + 1][j + 1] = -4 over the 3 x 3 image 1..9, plus the bias 0.5.
  Tensor<double> x = Tensor<double>::from({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor<double> w = Tensor<double>::from({1, 0, 0, -1}, {1, 1, 2, 2});
  check_close(conv2d(x, w, Tensor<double>::from({0.5}, {1})).value(), Array<double>{{{{-3.5, -3.5}, {-3.5, -3.5}}}});
  // Padding 1, stride 2: y[i][j] = p[2i][2j] - p[2i + 1][2j + 1] over the zero-padded 5 x 5 image p,
  // where only the last window's first tap meets the image (x[1][1] = 5).
  check_close(conv2d(x, w, {}, {.stride = 2, .padding = 1}).value(), Array<double>{{{{-1, -3}, {-7, 5 - 9}}}});
}

BOOST_AUTO_TEST_CASE(values_match_a_direct_convolution) {
  const Tensor<double> x = random_tensor({3, 2, 7, 6}, 1);
  const Tensor<double> bias = random_tensor({4}, 3);
  for (const Shape& kernel : {Shape{4, 2, 3, 2}, Shape{4, 2, 1, 1}, Shape{4, 2, 2, 3}}) {
    const Tensor<double> w = random_tensor(kernel, 2);
    for (const Conv2dOptions& options : variants) {
      BOOST_TEST_CONTEXT("kernel " << to_string(kernel) << ", stride " << options.stride.height << "x" << options.stride.width) {
        check_close(conv2d(x, w, bias, options).value(), direct_convolution(x.value(), w.value(), &bias.value(), options));
        check_close(conv2d(x, w, {}, options).value(), direct_convolution(x.value(), w.value(), nullptr, options));
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_of_input_weight_and_bias) {
  const Tensor<double> x = random_tensor({2, 2, 5, 4}, 4);
  const Tensor<double> bias = random_tensor({3}, 6);
  for (const Shape& kernel : {Shape{3, 2, 3, 2}, Shape{3, 2, 1, 1}}) {
    const Tensor<double> w = random_tensor(kernel, 5);
    for (const Conv2dOptions& options : variants) {
      check_gradients([&](const Inputs& v) { return conv2d(v[0], v[1], v[2], options); }, {x, w, bias});
      check_gradients([&](const Inputs& v) { return conv2d(v[0], v[1], {}, options); }, {x, w});
    }
  }
  // More images than the weight gradient's blocks (8): each block sums several.
  const Tensor<double> many = random_tensor({11, 1, 3, 3}, 9);
  check_gradients([](const Inputs& v) { return conv2d(v[0], v[1], v[2], {.padding = {1, 0}}); },
                  {many, random_tensor({2, 1, 2, 2}, 10), random_tensor({2}, 11)});
  // Only the weight needs a gradient (a network's first layer): no input gradient is made.
  Tensor<double> image = random_tensor({2, 2, 5, 4}, 7, -1.0, 1.0, false);
  const Tensor<double> w = random_tensor({3, 2, 3, 2}, 8);
  check_gradients([&](const Inputs& v) { return conv2d(image, v[0], {}, {.padding = 1}); }, {w});
  BOOST_TEST(!image.has_grad());
}

BOOST_AUTO_TEST_CASE(results_have_the_same_bits_on_any_number_of_threads) {
  // 19 images: more than the weight gradient's blocks, which then hold unequal counts.
  Tensor<float> x = random_tensor({19, 3, 9, 8}, 9, -1.0, 1.0, false).to<float>().set_requires_grad(true);
  Tensor<float> w = random_tensor({5, 3, 3, 3}, 10, -1.0, 1.0, false).to<float>().set_requires_grad(true);
  Tensor<float> bias = random_tensor({5}, 11, -1.0, 1.0, false).to<float>().set_requires_grad(true);
  const auto run = [&](int threads) {
    const xgrad::testing::ScopedThreads scope(threads);
    x.zero_grad();
    w.zero_grad();
    bias.zero_grad();
    Tensor<float> y = conv2d(x, w, bias, {.stride = {1, 2}, .padding = 1});
    sum(y * y).backward();
    return std::vector<Array<float>>{y.value(), x.grad(), w.grad(), bias.grad()};
  };
  const std::vector<Array<float>> one = run(1), two = run(2);
  for (std::size_t i = 0; i < one.size(); ++i) BOOST_TEST(one[i] == two[i], "result " << i << " differs");
}

BOOST_AUTO_TEST_CASE(errors_name_the_shapes_and_the_options) {
  const Tensor<double> x = random_tensor({2, 3, 5, 5}, 12);
  const Tensor<double> w = random_tensor({4, 3, 3, 3}, 13);
  BOOST_TEST(error_message<shape_error>([&] { conv2d(x, random_tensor({4, 2, 3, 3}, 14)); }) ==
             "conv2d: input of shape [2, 3, 5, 5], weight of shape [4, 2, 3, 3] and bias of shape (none) do not fit "
             "(expected input [B, C, H, W], weight [O, C, kH, kW] with positive extents, bias [O])");
  BOOST_CHECK_THROW(conv2d(random_tensor({3, 5, 5}, 15), w), shape_error);
  BOOST_CHECK_THROW(conv2d(x, w, random_tensor({3}, 16)), shape_error);
  BOOST_CHECK_THROW(conv2d(x, random_tensor({4, 3, 0, 3}, 17)), shape_error);
  BOOST_TEST(error_message<std::invalid_argument>([&] { conv2d(x, w, {}, {.stride = {1, 0}}); }) ==
             "conv2d: stride (1, 0) must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([&] { conv2d(x, w, {}, {.dilation = 0}); }) ==
             "conv2d: dilation (0, 0) must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([&] { conv2d(x, w, {}, {.padding = {0, 1}, .dilation = 3}); }) ==
             "conv2d: kernel_size (3, 3) with dilation (3, 3) spans (7, 7), larger than the input [2, 3, 5, 5] "
             "padded by (0, 1) to (5, 7)");
}
