#pragma once
// The geometry that convolution and pooling share: where each output's window lies on the
// padded input, checked once before a kernel runs.

#include <algorithm>
#include <cstddef>
#include <utility>

#include "xgrad/framework/convolution.h"
#include "xgrad/framework/shape.h"

namespace xgrad::detail {

// One axis of a sliding window: output o reads input positions
// o * stride - padding + tap * dilation for tap < kernel.
struct WindowAxis {
  std::size_t input = 0;
  std::size_t kernel = 1;
  std::size_t stride = 1;
  std::size_t padding = 0;
  std::size_t dilation = 1;
  std::size_t output = 0;

  // Where output o's window starts, possibly before the input (in the padding).
  std::ptrdiff_t start(std::size_t o) const {
    return static_cast<std::ptrdiff_t>(o * stride) - static_cast<std::ptrdiff_t>(padding);
  }
  // The outputs [begin, end) whose tap `tap` falls inside the input.
  std::pair<std::size_t, std::size_t> outputs_inside(std::size_t tap) const {
    const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(tap * dilation) - static_cast<std::ptrdiff_t>(padding);
    const auto step = static_cast<std::ptrdiff_t>(stride);
    const auto extent = static_cast<std::ptrdiff_t>(input);
    const std::ptrdiff_t first = offset >= 0 ? 0 : (-offset + step - 1) / step;
    const std::ptrdiff_t end = extent > offset ? (extent - offset + step - 1) / step : 0;
    const auto clamp = [&](std::ptrdiff_t o) { return static_cast<std::size_t>(std::clamp<std::ptrdiff_t>(o, 0, static_cast<std::ptrdiff_t>(output))); };
    return {clamp(first), std::max(clamp(first), clamp(end))};
  }
};

struct Window2d {
  WindowAxis rows, cols;
  std::size_t input_plane() const { return rows.input * cols.input; }
  std::size_t output_plane() const { return rows.output * cols.output; }
};

// The window of `kernel` taps over the last two axes of `input_shape` (at least 2-D), with
// std::invalid_argument naming `op` and the option for a zero stride, dilation or kernel and for a
// dilated kernel larger than the padded input.
Window2d plan_window(const char* op, const Shape& input_shape, Size2d kernel, Size2d stride, Size2d padding,
                     Size2d dilation);

}  // namespace xgrad::detail
