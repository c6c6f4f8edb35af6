#pragma once
// Max and average pooling over NCHW images, as torch.nn.functional.max_pool2d and
// avg_pool2d (floor mode: windows that would start in the padding past the input are dropped).

#include <optional>

#include "xgrad/framework/convolution.h"
#include "xgrad/framework/tensor.h"

namespace xgrad {

struct MaxPool2dOptions {
  Size2d kernel_size{2};
  std::optional<Size2d> stride = std::nullopt;  // the kernel size when absent, as in PyTorch
  Size2d padding{0};                            // at most half the kernel size, as in PyTorch
  Size2d dilation{1};
};

struct AvgPool2dOptions {
  Size2d kernel_size{2};
  std::optional<Size2d> stride = std::nullopt;  // the kernel size when absent, as in PyTorch
  Size2d padding{0};                            // at most half the kernel size, as in PyTorch
  // Whether the zeros of the padding count in a window's divisor (PyTorch's default).
  bool count_include_pad = true;
};

// [B, C, H, W] -> [B, C, OH, OW]: the largest value of each window; padding never wins. The
// gradient goes to the window's first largest value (in row-major order), or to its last NaN,
// where PyTorch sends it. Errors as conv2d's.
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& input, const MaxPool2dOptions& options = {});

// [B, C, H, W] -> [B, C, OH, OW]: the mean of each window. Errors as conv2d's.
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& input, const AvgPool2dOptions& options = {});

}  // namespace xgrad
