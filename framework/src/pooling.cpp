#include "xgrad/framework/pooling.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "sliding_window.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/threading.h"

namespace xgrad {
namespace {

// The window of a pooling op over input [B, C, H, W], with PyTorch's checks: a rank other than 4 is
// a shape_error, padding beyond half the kernel an invalid_argument (a window could then lie
// wholly in the padding).
detail::Window2d plan_pooling(const char* op, const Shape& input_shape, Size2d kernel, std::optional<Size2d> stride,
                              Size2d padding, Size2d dilation) {
  if (input_shape.size() != 4) {
    throw shape_error(detail::message(op, ": input of shape ", input_shape, " is not an image batch [B, C, H, W]"));
  }
  if (2 * padding.height > kernel.height || 2 * padding.width > kernel.width) {
    throw std::invalid_argument(detail::message(op, ": padding (", padding.height, ", ", padding.width,
                                                ") must be at most half of kernel_size (", kernel.height, ", ",
                                                kernel.width, ")"));
  }
  return detail::plan_window(op, input_shape, kernel, stride.value_or(kernel), padding, dilation);
}

// The taps [first, end) of output o's window that fall inside the input along `axis`.
std::pair<std::size_t, std::size_t> taps_inside(const detail::WindowAxis& axis, std::size_t o) {
  const std::ptrdiff_t start = axis.start(o);
  const auto step = static_cast<std::ptrdiff_t>(axis.dilation);
  const std::ptrdiff_t first = start >= 0 ? 0 : (-start + step - 1) / step;
  const std::ptrdiff_t end = (static_cast<std::ptrdiff_t>(axis.input) - start + step - 1) / step;
  return {static_cast<std::size_t>(first), std::min(axis.kernel, static_cast<std::size_t>(std::max(first, end)))};
}

// The input position of tap t of output o's window along `axis` (a tap taps_inside returned).
std::size_t tap_position(const detail::WindowAxis& axis, std::size_t o, std::size_t t) {
  return static_cast<std::size_t>(axis.start(o) + static_cast<std::ptrdiff_t>(t * axis.dilation));
}

// Whether the window is the common 2 x 2 at stride 2 that never leaves the input.
bool is_plain_2x2(const detail::Window2d& window) {
  const auto plain = [](const detail::WindowAxis& axis) {
    return axis.kernel == 2 && axis.stride == 2 && axis.padding == 0 && axis.dilation == 1;
  };
  return plain(window.rows) && plain(window.cols);
}

// max_pool2d of one plane with a plain 2 x 2 window: the taps compared in the general loop's
// order with selects, not branches (which tap wins is data, which branches predict badly),
// so that the loop vectorises.
template <class T>
void max_pool_plain_2x2(const T* in, const detail::Window2d& window, T* out, std::size_t* argmax) {
  const std::size_t width = window.cols.input;
  for (std::size_t oh = 0; oh < window.rows.output; ++oh) {
    const std::size_t top = 2 * oh * width;
    for (std::size_t ow = 0; ow < window.cols.output; ++ow) {
      std::size_t best = top + 2 * ow;
      T best_value = in[best];
      for (const std::size_t position : {best + 1, best + width, best + width + 1}) {
        const bool wins = (in[position] > best_value) | std::isnan(in[position]);
        best_value = wins ? in[position] : best_value;
        best = wins ? position : best;
      }
      out[oh * window.cols.output + ow] = best_value;
      argmax[oh * window.cols.output + ow] = best;
    }
  }
}

}  // namespace

// y = max over the window; dx[argmax] += dy
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& input, const MaxPool2dOptions& options) {
  const Shape& xs = input.shape();
  const detail::Window2d window =
      plan_pooling("max_pool2d", xs, options.kernel_size, options.stride, options.padding, options.dilation);
  const std::size_t planes = xs[0] * xs[1], in_plane = window.input_plane(), out_plane = window.output_plane();
  Array<T> y = Array<T>::from_shape({xs[0], xs[1], window.rows.output, window.cols.output});
  std::vector<std::size_t> argmax(planes * out_plane);  // position in the input plane
  const T* x = input.data();
  T* result = y.data();
  const std::size_t taps = window.rows.kernel * window.cols.kernel;
  const bool plain_2x2 = is_plain_2x2(window);
  parallel_for(planes, rows_for_grain(out_plane * taps, elementwise_grain), [&](std::size_t first, std::size_t end) {
    for (std::size_t plane = first; plane < end; ++plane) {
      const T* in = x + plane * in_plane;
      if (plain_2x2) {
        max_pool_plain_2x2(in, window, result + plane * out_plane, argmax.data() + plane * out_plane);
        continue;
      }
      for (std::size_t oh = 0; oh < window.rows.output; ++oh) {
        const auto [first_i, end_i] = taps_inside(window.rows, oh);
        for (std::size_t ow = 0; ow < window.cols.output; ++ow) {
          const auto [first_j, end_j] = taps_inside(window.cols, ow);
          // As PyTorch: the first largest value wins, and a NaN wins over anything.
          std::size_t best = tap_position(window.rows, oh, first_i) * window.cols.input + tap_position(window.cols, ow, first_j);
          T best_value = -std::numeric_limits<T>::infinity();
          for (std::size_t i = first_i; i < end_i; ++i) {
            const std::size_t row = tap_position(window.rows, oh, i) * window.cols.input;
            for (std::size_t j = first_j; j < end_j; ++j) {
              const std::size_t position = row + tap_position(window.cols, ow, j);
              if (in[position] > best_value || std::isnan(in[position])) {
                best_value = in[position];
                best = position;
              }
            }
          }
          const std::size_t o = plane * out_plane + oh * window.cols.output + ow;
          result[o] = best_value;
          argmax[o] = best;
        }
      }
    }
  });
  return record<T>("max_pool2d", std::move(y), {input}, [planes, in_plane, out_plane, argmax = std::move(argmax)](Node<T>& node) {
    const T* dy = node.output_grad().data();
    T* dx = node.input_grad(0).data();
    parallel_for(planes, rows_for_grain(out_plane, elementwise_grain), [&](std::size_t first, std::size_t end) {
      for (std::size_t plane = first; plane < end; ++plane) {
        for (std::size_t o = plane * out_plane; o < (plane + 1) * out_plane; ++o) dx[plane * in_plane + argmax[o]] += dy[o];
      }
    });
  }, reads_no_values());
}

// y = sum over the window / divisor; dx[window] += dy / divisor
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& input, const AvgPool2dOptions& options) {
  const Shape& xs = input.shape();
  const detail::Window2d window = plan_pooling("avg_pool2d", xs, options.kernel_size, options.stride, options.padding, Size2d{1});
  const std::size_t planes = xs[0] * xs[1], in_plane = window.input_plane(), out_plane = window.output_plane();
  // Each output's taps inside the input and its divisor, the same for every plane.
  struct Taps {
    std::size_t first_i, end_i, first_j, end_j;
    T divisor;
  };
  std::vector<Taps> windows(out_plane);
  for (std::size_t oh = 0; oh < window.rows.output; ++oh) {
    for (std::size_t ow = 0; ow < window.cols.output; ++ow) {
      const auto [first_i, end_i] = taps_inside(window.rows, oh);
      const auto [first_j, end_j] = taps_inside(window.cols, ow);
      // With the padding counted, PyTorch divides by the window's extent within the padded
      // input; without, by the taps inside the input.
      const auto extent_in_padded = [](const detail::WindowAxis& axis, std::size_t o) {
        const std::ptrdiff_t padded_end = static_cast<std::ptrdiff_t>(axis.input + axis.padding);
        return static_cast<std::size_t>(std::min(axis.start(o) + static_cast<std::ptrdiff_t>(axis.kernel), padded_end) -
                                        axis.start(o));
      };
      const std::size_t divisor = options.count_include_pad
                                      ? extent_in_padded(window.rows, oh) * extent_in_padded(window.cols, ow)
                                      : (end_i - first_i) * (end_j - first_j);
      windows[oh * window.cols.output + ow] = {first_i, end_i, first_j, end_j, static_cast<T>(divisor)};
    }
  }
  Array<T> y = Array<T>::from_shape({xs[0], xs[1], window.rows.output, window.cols.output});
  const T* x = input.data();
  T* result = y.data();
  const std::size_t taps = window.rows.kernel * window.cols.kernel;
  const std::size_t grain = rows_for_grain(out_plane * taps, elementwise_grain);
  parallel_for(planes, grain, [&](std::size_t first, std::size_t end) {
    for (std::size_t plane = first; plane < end; ++plane) {
      const T* in = x + plane * in_plane;
      for (std::size_t o = 0; o < out_plane; ++o) {
        const Taps& taps_of = windows[o];
        const std::size_t oh = o / window.cols.output, ow = o % window.cols.output;
        T total = T(0);
        for (std::size_t i = taps_of.first_i; i < taps_of.end_i; ++i) {
          const T* row = in + tap_position(window.rows, oh, i) * window.cols.input;
          for (std::size_t j = taps_of.first_j; j < taps_of.end_j; ++j) total += row[tap_position(window.cols, ow, j)];
        }
        result[plane * out_plane + o] = total / taps_of.divisor;
      }
    }
  });
  return record<T>("avg_pool2d", std::move(y), {input}, [window, planes, in_plane, out_plane, grain, windows = std::move(windows)](Node<T>& node) {
    const T* dy = node.output_grad().data();
    T* dx = node.input_grad(0).data();
    parallel_for(planes, grain, [&](std::size_t first, std::size_t end) {
      for (std::size_t plane = first; plane < end; ++plane) {
        T* d_in = dx + plane * in_plane;
        for (std::size_t o = 0; o < out_plane; ++o) {
          const Taps& taps_of = windows[o];
          const std::size_t oh = o / window.cols.output, ow = o % window.cols.output;
          const T share = dy[plane * out_plane + o] / taps_of.divisor;
          for (std::size_t i = taps_of.first_i; i < taps_of.end_i; ++i) {
            T* row = d_in + tap_position(window.rows, oh, i) * window.cols.input;
            for (std::size_t j = taps_of.first_j; j < taps_of.end_j; ++j) row[tap_position(window.cols, ow, j)] += share;
          }
        }
      }
    });
  }, reads_no_values());
}

template Tensor<float> max_pool2d(const Tensor<float>&, const MaxPool2dOptions&);
template Tensor<double> max_pool2d(const Tensor<double>&, const MaxPool2dOptions&);
template Tensor<float> avg_pool2d(const Tensor<float>&, const AvgPool2dOptions&);
template Tensor<double> avg_pool2d(const Tensor<double>&, const AvgPool2dOptions&);

}  // namespace xgrad
