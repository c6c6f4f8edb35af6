#include "sliding_window.h"

#include <stdexcept>
#include <string>

#include "xgrad/framework/errors.h"

namespace xgrad::detail {
namespace {

std::string pair_text(Size2d size) { return message("(", size.height, ", ", size.width, ")"); }

WindowAxis plan_axis(std::size_t input, std::size_t kernel, std::size_t stride, std::size_t padding,
                     std::size_t dilation) {
  WindowAxis axis{.input = input, .kernel = kernel, .stride = stride, .padding = padding, .dilation = dilation};
  axis.output = (input + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
  return axis;
}

}  // namespace

Window2d plan_window(const char* op, const Shape& input_shape, Size2d kernel, Size2d stride, Size2d padding,
                     Size2d dilation) {
  const auto positive = [&](const char* option, Size2d value) {
    if (value.height == 0 || value.width == 0) {
      throw std::invalid_argument(message(op, ": ", option, " ", pair_text(value), " must be positive"));
    }
  };
  positive("kernel_size", kernel);
  positive("stride", stride);
  positive("dilation", dilation);
  const std::size_t height = input_shape[input_shape.size() - 2], width = input_shape.back();
  const Size2d span{dilation.height * (kernel.height - 1) + 1, dilation.width * (kernel.width - 1) + 1};
  const Size2d padded{height + 2 * padding.height, width + 2 * padding.width};
  if (span.height > padded.height || span.width > padded.width) {
    throw std::invalid_argument(message(op, ": kernel_size ", pair_text(kernel), " with dilation ", pair_text(dilation),
                                        " spans ", pair_text(span), ", larger than the input ", input_shape,
                                        " padded by ", pair_text(padding), " to ", pair_text(padded)));
  }
  return {plan_axis(height, kernel.height, stride.height, padding.height, dilation.height),
          plan_axis(width, kernel.width, stride.width, padding.width, dilation.width)};
}

}  // namespace xgrad::detail
