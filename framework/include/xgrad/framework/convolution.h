#pragma once
// Two-dimensional convolution over NCHW images, as torch.nn.functional.conv2d: each image's
// windows are unfolded into the columns of a matrix (im2col) and multiplied by the weight
// with one GEMM per image; backward folds the columns' gradients back (col2im).

#include <cstddef>

#include "xgrad/framework/tensor.h"

namespace xgrad {

// A size along (height, width), as PyTorch's int-or-pair arguments: Size2d{3} is 3 x 3,
// Size2d{3, 1} is 3 high and 1 wide.
struct Size2d {
  std::size_t height = 0;
  std::size_t width = 0;
  constexpr Size2d() = default;
  constexpr Size2d(std::size_t both) : height(both), width(both) {}  // NOLINT(google-explicit-constructor): 3 means 3 x 3
  constexpr Size2d(std::size_t height_, std::size_t width_) : height(height_), width(width_) {}
  friend constexpr bool operator==(const Size2d&, const Size2d&) = default;
};

struct Conv2dOptions {
  Size2d stride{1};    // steps between windows; positive
  Size2d padding{0};   // zeros added on each side of the input
  Size2d dilation{1};  // steps between a window's taps; positive
};

// input [B, C, H, W], weight [O, C, kH, kW] (PyTorch's layout), bias [O] or undefined ->
// [B, O, OH, OW] with OH = (H + 2 padding - dilation (kH - 1) - 1) / stride + 1 (OW alike).
// A shape that does not fit is a shape_error naming every shape; a zero stride or dilation,
// or a dilated kernel larger than the padded input, is std::invalid_argument naming the option.
template <class T>
Tensor<T> conv2d(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& bias = {},
                 const Conv2dOptions& options = {});

}  // namespace xgrad
