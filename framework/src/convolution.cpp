#include "xgrad/framework/convolution.h"

#include <algorithm>
#include <vector>

#include "sliding_window.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/blas.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/threading.h"

namespace xgrad {
namespace {

// The weight gradient sums one product per image. The batch is cut into this many blocks
// whatever the thread count, each block sums its images in order and the blocks are added in
// order, so that the gradient has the same bits on any number of threads.
constexpr std::size_t weight_gradient_blocks = 8;

// One convolution's sizes: each image becomes a column matrix of `patch` rows (one per
// channel and tap) and `positions` columns (one per output position).
struct ConvolutionPlan {
  std::size_t batch = 0, channels = 0, out_channels = 0;
  detail::Window2d window;
  std::size_t image_size() const { return channels * window.input_plane(); }
  std::size_t patch() const { return channels * window.rows.kernel * window.cols.kernel; }
  std::size_t positions() const { return window.output_plane(); }
  // A 1 x 1 kernel at stride 1 without padding: each image is its own column matrix.
  bool columns_are_image() const {
    const auto plain = [](const detail::WindowAxis& axis) { return axis.kernel == 1 && axis.stride == 1 && axis.padding == 0; };
    return plain(window.rows) && plain(window.cols);
  }
};

// Calls visit(input_row, output_row, first, end, input_offset) for every tap (c, i, j) and
// output row oh: output positions [first, end) of row oh read input position
// ow * stride + input_offset of input_row; the others fall in the padding.
template <class Visit>
void for_each_tap_row(const ConvolutionPlan& plan, Visit&& visit) {
  const detail::WindowAxis& rows = plan.window.rows;
  const detail::WindowAxis& cols = plan.window.cols;
  for (std::size_t c = 0; c < plan.channels; ++c) {
    for (std::size_t i = 0; i < rows.kernel; ++i) {
      const auto [first_row, end_row] = rows.outputs_inside(i);
      for (std::size_t j = 0; j < cols.kernel; ++j) {
        const auto [first, end] = cols.outputs_inside(j);
        const std::size_t tap = (c * rows.kernel + i) * cols.kernel + j;
        const std::ptrdiff_t input_offset =
            static_cast<std::ptrdiff_t>(j * cols.dilation) - static_cast<std::ptrdiff_t>(cols.padding);
        for (std::size_t oh = 0; oh < rows.output; ++oh) {
          const std::size_t output_row = tap * plan.positions() + oh * cols.output;
          if (oh < first_row || oh >= end_row) {
            visit(std::size_t(0), output_row, std::size_t(0), std::size_t(0), input_offset);
            continue;
          }
          const auto ih = static_cast<std::size_t>(rows.start(oh) + static_cast<std::ptrdiff_t>(i * rows.dilation));
          visit((c * rows.input + ih) * cols.input, output_row, first, end, input_offset);
        }
      }
    }
  }
}

// columns[(c kH + i) kW + j][oh OW + ow] = image[c][oh sH - pH + i dH][ow sW - pW + j dW], 0 in the padding
template <class T>
void image_to_columns(const T* image, const ConvolutionPlan& plan, T* columns) {
  const std::size_t width = plan.window.cols.output, stride = plan.window.cols.stride;
  for_each_tap_row(plan, [&](std::size_t input_row, std::size_t output_row, std::size_t first, std::size_t end,
                             std::ptrdiff_t input_offset) {
    T* out = columns + output_row;
    const T* in = image + input_row;
    std::fill(out, out + first, T(0));
    if (stride == 1 && first < end) {  // a contiguous run: a plain copy
      std::copy_n(in + (static_cast<std::ptrdiff_t>(first) + input_offset), end - first, out + first);
    } else {
      for (std::size_t ow = first; ow < end; ++ow) out[ow] = in[static_cast<std::ptrdiff_t>(ow * stride) + input_offset];
    }
    std::fill(out + end, out + width, T(0));
  });
}

// image[c][ih][iw] += every column entry that image_to_columns read from there
template <class T>
void add_columns_to_image(const T* columns, const ConvolutionPlan& plan, T* image) {
  const std::size_t stride = plan.window.cols.stride;
  for_each_tap_row(plan, [&](std::size_t input_row, std::size_t output_row, std::size_t first, std::size_t end,
                             std::ptrdiff_t input_offset) {
    const T* from = columns + output_row;
    T* to = image + input_row;
    for (std::size_t ow = first; ow < end; ++ow) to[static_cast<std::ptrdiff_t>(ow * stride) + input_offset] += from[ow];
  });
}

// The column matrix of `image`: the image itself when the plan allows, else unfolded into `scratch`.
template <class T>
const T* columns_of(const T* image, const ConvolutionPlan& plan, std::vector<T>& scratch) {
  if (plan.columns_are_image()) return image;
  image_to_columns(image, plan, scratch.data());
  return scratch.data();
}

template <class T>
std::string shape_text(const Tensor<T>& tensor) { return tensor.defined() ? to_string(tensor.shape()) : std::string("(none)"); }

}  // namespace

// y_b = W cols(x_b) + b; cols(dx_b) += W^T dy_b; dW += sum_b dy_b cols(x_b)^T; db += sum dy
template <class T>
Tensor<T> conv2d(const Tensor<T>& input, const Tensor<T>& weight, const Tensor<T>& bias, const Conv2dOptions& options) {
  const Shape& xs = input.shape();
  const Shape& ws = weight.shape();
  const bool fits = xs.size() == 4 && ws.size() == 4 && xs[1] == ws[1] && element_count(ws) != 0 &&
                    (!bias.defined() || bias.shape() == Shape{ws[0]});
  if (!fits) {
    throw shape_error(detail::message("conv2d: input of shape ", xs, ", weight of shape ", ws, " and bias of shape ",
                                      shape_text(bias),
                                      " do not fit (expected input [B, C, H, W], weight [O, C, kH, kW] with positive "
                                      "extents, bias [O])"));
  }
  ConvolutionPlan plan{.batch = xs[0], .channels = xs[1], .out_channels = ws[0],
                       .window = detail::plan_window("conv2d", xs, {ws[2], ws[3]}, options.stride, options.padding,
                                                     options.dilation)};
  const std::size_t out = plan.out_channels, patch = plan.patch(), positions = plan.positions();
  Array<T> y = Array<T>::from_shape({plan.batch, out, plan.window.rows.output, plan.window.cols.output});
  const T* x = input.data();
  const T* w = weight.data();
  const T* b = bias.defined() ? bias.data() : nullptr;
  T* result = y.data();
  // One GEMM per image, the images spread over the threads (a single image leaves the threads to
  // its GEMM).
  parallel_for(plan.batch, rows_for_grain(out * patch * positions, multiply_add_grain),
               [&](std::size_t first_image, std::size_t end_image) {
                 std::vector<T> scratch(plan.columns_are_image() ? 0 : patch * positions);
                 for (std::size_t image = first_image; image < end_image; ++image) {
                   const T* columns = columns_of(x + image * plan.image_size(), plan, scratch);
                   T* y_image = result + image * out * positions;
                   if (b != nullptr) {
                     for (std::size_t o = 0; o < out; ++o) std::fill_n(y_image + o * positions, positions, b[o]);
                   }
                   blas::gemm<T>(false, false, out, positions, patch, T(1), w, columns, b != nullptr ? T(1) : T(0), y_image);
                 }
               });
  std::vector<Tensor<T>> inputs{input, weight};
  if (bias.defined()) inputs.push_back(bias);
  return record<T>("conv2d", std::move(y), std::move(inputs), [plan](Node<T>& node) {
    const std::size_t out = plan.out_channels, patch = plan.patch(), positions = plan.positions();
    const T* dy = node.output_grad().data();
    const bool input_grad = node.needs_grad(0), weight_grad = node.needs_grad(1);
    T* dx = input_grad ? node.input_grad(0).data() : nullptr;
    const T* w = input_grad ? node.input(1).data() : nullptr;
    const T* x = weight_grad ? node.input(0).data() : nullptr;
    if (input_grad || weight_grad) {
      const std::size_t blocks = std::min(plan.batch, weight_gradient_blocks);
      const std::size_t block_size = out * patch;
      std::vector<T> block_weight_grads(weight_grad ? blocks * block_size : 0);
      const std::size_t block_work = (plan.batch / std::max<std::size_t>(blocks, 1)) * 2 * out * patch * positions;
      parallel_for(blocks, rows_for_grain(block_work, multiply_add_grain), [&](std::size_t first_block, std::size_t end_block) {
        std::vector<T> scratch(plan.columns_are_image() ? 0 : patch * positions);
        for (std::size_t block = first_block; block < end_block; ++block) {
          const std::size_t first = block * plan.batch / blocks, end = (block + 1) * plan.batch / blocks;
          for (std::size_t image = first; image < end; ++image) {
            const T* dy_image = dy + image * out * positions;
            if (weight_grad) {
              const T* columns = columns_of(x + image * plan.image_size(), plan, scratch);
              blas::gemm<T>(false, true, out, patch, positions, T(1), dy_image, columns, image == first ? T(0) : T(1),
                            block_weight_grads.data() + block * block_size);
            }
            if (!input_grad) continue;
            T* dx_image = dx + image * plan.image_size();
            if (plan.columns_are_image()) {
              blas::gemm<T>(true, false, patch, positions, out, T(1), w, dy_image, T(1), dx_image);
            } else {
              blas::gemm<T>(true, false, patch, positions, out, T(1), w, dy_image, T(0), scratch.data());
              add_columns_to_image(scratch.data(), plan, dx_image);
            }
          }
        }
      });
      if (weight_grad) {
        T* dw = node.input_grad(1).data();
        parallel_for(block_size, elementwise_grain, [&](std::size_t first, std::size_t end) {
          for (std::size_t block = 0; block < blocks; ++block) {
            const T* partial = block_weight_grads.data() + block * block_size;
            for (std::size_t e = first; e < end; ++e) dw[e] += partial[e];
          }
        });
      }
    }
    if (node.input_count() == 3 && node.needs_grad(2)) {
      T* db = node.input_grad(2).data();
      parallel_for(out, rows_for_grain(plan.batch * positions, elementwise_grain), [&](std::size_t first, std::size_t end) {
        for (std::size_t o = first; o < end; ++o) {
          T total = T(0);
          for (std::size_t image = 0; image < plan.batch; ++image) {
            const T* row = dy + (image * out + o) * positions;
            for (std::size_t p = 0; p < positions; ++p) total += row[p];
          }
          db[o] += total;
        }
      });
    }
  }, reads_only_inputs({0, 1}));
}

template Tensor<float> conv2d(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&, const Conv2dOptions&);
template Tensor<double> conv2d(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&, const Conv2dOptions&);

}  // namespace xgrad
