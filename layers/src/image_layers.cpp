// The image layers: Conv2d, PatchEmbedding, BatchNorm2d and the 2-D positional encodings,
// each a thin module over framework operations.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/init.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/normalization.h"
#include "xgrad/layers/batch_norm.h"
#include "xgrad/layers/convolution.h"
#include "xgrad/layers/image_regions.h"
#include "xgrad/layers/positional_encoding.h"
#include "xgrad/layers/positional_encoding_2d.h"

namespace xgrad::nn {

template <class T>
Conv2d<T>::Conv2d(const Conv2dOptions& options) : options_(options) {
  const Size2d kernel = options.kernel_size;
  if (options.in_channels == 0 || options.out_channels == 0 || kernel.height == 0 || kernel.width == 0) {
    throw std::invalid_argument(detail::message("Conv2d: in_channels (", options.in_channels, "), out_channels (",
                                                options.out_channels, ") and kernel_size (", kernel.height, ", ",
                                                kernel.width, ") must be positive"));
  }
  weight = this->register_parameter(
      "weight", Tensor<T>::zeros({options.out_channels, options.in_channels, kernel.height, kernel.width}));
  // PyTorch: kaiming_uniform(a = sqrt(5)) for the weight, U(+-1/sqrt(fan_in)) for the bias.
  init::kaiming_uniform(weight, std::sqrt(5.0));
  if (options.bias) {
    bias = this->register_parameter("bias", Tensor<T>::zeros({options.out_channels}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_channels * kernel.height * kernel.width));
    init::uniform(bias, -bound, bound);
  }
}

template <class T>
Tensor<T> Conv2d<T>::forward(const Tensor<T>& x) const {
  return conv2d(x, weight, bias,
                {.stride = options_.stride, .padding = options_.padding, .dilation = options_.dilation});
}

template <class T>
PatchEmbedding<T>::PatchEmbedding(const PatchEmbeddingOptions& options)
    : proj({.in_channels = options.in_channels,
            .out_channels = options.embed_dim,
            .kernel_size = options.patch_size,
            .stride = options.patch_size,
            .bias = options.bias}),
      options_(options) {
  this->register_module("proj", proj);
}

template <class T>
Size2d PatchEmbedding<T>::grid_size(std::size_t height, std::size_t width) const {
  return {height / options_.patch_size.height, width / options_.patch_size.width};
}

template <class T>
Tensor<T> PatchEmbedding<T>::forward(const Tensor<T>& images) const {
  const Shape& shape = images.shape();
  const Size2d patch = options_.patch_size;
  if (shape.size() != 4 || shape[2] % patch.height != 0 || shape[3] % patch.width != 0) {
    throw shape_error(detail::message("PatchEmbedding: images of shape ", shape,
                                      " are not [B, C, H, W] with H and W multiples of the patch size (",
                                      patch.height, ", ", patch.width, ")"));
  }
  return regions_of_grid(proj(images));  // from [B, D, H / ph, W / pw]
}

template <class T>
Tensor<T> regions_of_grid(const Tensor<T>& grid) {
  const Shape& shape = grid.shape();
  if (shape.size() != 4) {
    throw shape_error(detail::message("regions_of_grid: a grid of shape ", shape, "; expected [B, D, rows, columns]"));
  }
  const auto batch = static_cast<std::int64_t>(shape[0]), dim = static_cast<std::int64_t>(shape[1]);
  return transpose(reshape(grid, {batch, dim, -1}), 1, 2);
}

template <class T>
BatchNorm2d<T>::BatchNorm2d(const BatchNorm2dOptions& options) : options_(options) {
  if (options.num_features == 0) throw std::invalid_argument("BatchNorm2d: num_features must be positive");
  if (options.momentum && !(*options.momentum >= 0.0 && *options.momentum <= 1.0)) {
    throw std::invalid_argument(detail::message("BatchNorm2d: momentum = ", *options.momentum, " must lie in [0, 1]"));
  }
  if (!(options.eps > 0.0)) {
    throw std::invalid_argument(detail::message("BatchNorm2d: eps = ", options.eps, " must be positive"));
  }
  const Shape channels{options.num_features};
  if (options.affine) {
    weight = this->register_parameter("weight", Tensor<T>::ones(channels));
    bias = this->register_parameter("bias", Tensor<T>::zeros(channels));
  }
  if (options.track_running_stats) {
    running_mean = this->register_buffer("running_mean", Tensor<T>::zeros(channels));
    running_var = this->register_buffer("running_var", Tensor<T>::ones(channels));
    num_batches_tracked = this->register_buffer("num_batches_tracked", Tensor<T>::zeros({}));
  }
}

template <class T>
Tensor<T> BatchNorm2d<T>::forward(const Tensor<T>& x) const {
  if (x.dim() != 4) {
    throw shape_error(detail::message("BatchNorm2d: input of shape ", x.shape(), " is not [B, C, H, W]"));
  }
  double momentum = options_.momentum.value_or(0.0);
  if (this->is_training() && options_.track_running_stats) {
    Tensor<T> counter = num_batches_tracked;  // a handle: the buffer itself
    const T batches = counter.mutable_value()() += T(1);
    if (!options_.momentum) momentum = 1.0 / static_cast<double>(batches);
  }
  // Without running statistics both modes normalise with the batch's, as in PyTorch.
  const bool batch_statistics = this->is_training() || !options_.track_running_stats;
  return batch_norm(x, running_mean, running_var, weight, bias,
                    {.training = batch_statistics, .momentum = momentum, .eps = options_.eps});
}

template <class T>
Array<T> sinusoidal_positions_2d(std::size_t height, std::size_t width, std::size_t dim) {
  if (dim == 0 || dim % 4 != 0) {
    throw std::invalid_argument(detail::message("sinusoidal_positions_2d: dim = ", dim,
                                                " must be a positive multiple of 4 (a sine and a cosine per "
                                                "frequency, for the row and for the column)"));
  }
  const std::size_t half = dim / 2;
  // Each axis with the 1-D encoding of half the channels: the row's first, then the column's.
  const SinusoidalPositionalEncoding<T> axis({.d_model = half, .max_len = std::max(height, width)});
  const Array<T> rows = axis.encoding(height), columns = axis.encoding(width);
  const Shape shape{height * width, dim};
  Array<T> encodings = Array<T>::from_shape(shape);
  for (std::size_t row = 0; row < height; ++row) {
    for (std::size_t column = 0; column < width; ++column) {
      T* cell = encodings.data() + (row * width + column) * dim;
      std::copy_n(rows.data() + row * half, half, cell);
      std::copy_n(columns.data() + column * half, half, cell + half);
    }
  }
  return encodings;
}

namespace {

void check_grid(const char* layer, std::size_t height, std::size_t width, std::size_t dim) {
  if (height == 0 || width == 0 || dim == 0) {
    throw std::invalid_argument(detail::message(layer, ": height (", height, "), width (", width, ") and dim (", dim,
                                                ") must be positive"));
  }
}

// x + encodings for x [B, height * width, dim].
template <class T>
Tensor<T> add_positions(const char* layer, const Tensor<T>& x, const Tensor<T>& encodings) {
  const Shape& shape = x.shape();
  if (shape.size() != 3 || shape[1] != encodings.shape()[0] || shape[2] != encodings.shape()[1]) {
    throw shape_error(detail::message(layer, ": input of shape ", shape, " does not fit encodings of shape ",
                                      encodings.shape(), " (expected [B, height * width, dim])"));
  }
  return x + encodings;
}

}  // namespace

template <class T>
SinusoidalPositionalEncoding2d<T>::SinusoidalPositionalEncoding2d(const PositionalEncoding2dOptions& options)
    : options_(options) {
  check_grid("SinusoidalPositionalEncoding2d", options.height, options.width, options.dim);
  encodings_ = Tensor<T>(sinusoidal_positions_2d<T>(options.height, options.width, options.dim));
}

template <class T>
Tensor<T> SinusoidalPositionalEncoding2d<T>::forward(const Tensor<T>& x) const {
  return add_positions("SinusoidalPositionalEncoding2d", x, encodings_);
}

template <class T>
LearnedPositionalEncoding2d<T>::LearnedPositionalEncoding2d(const LearnedPositionalEncoding2dOptions& options)
    : options_(options) {
  check_grid("LearnedPositionalEncoding2d", options.height, options.width, options.dim);
  constexpr double std = 0.02;
  if (options.per_axis) {
    row_embed = this->register_parameter("row_embed", Tensor<T>::zeros({options.height, options.dim}));
    col_embed = this->register_parameter("col_embed", Tensor<T>::zeros({options.width, options.dim}));
    init::normal(row_embed, 0.0, std);
    init::normal(col_embed, 0.0, std);
  } else {
    pos_embed = this->register_parameter("pos_embed", Tensor<T>::zeros({options.height * options.width, options.dim}));
    init::normal(pos_embed, 0.0, std);
  }
}

template <class T>
Tensor<T> LearnedPositionalEncoding2d<T>::encodings() const {
  if (!options_.per_axis) return pos_embed;
  // cell (r, c) = row_embed[r] + col_embed[c], by broadcasting [H, 1, D] + [1, W, D]
  const auto cells = static_cast<std::int64_t>(options_.height * options_.width);
  return reshape(unsqueeze(row_embed, 1) + unsqueeze(col_embed, 0), {cells, static_cast<std::int64_t>(options_.dim)});
}

template <class T>
Tensor<T> LearnedPositionalEncoding2d<T>::forward(const Tensor<T>& x) const {
  return add_positions("LearnedPositionalEncoding2d", x, encodings());
}

template class Conv2d<float>;
template class Conv2d<double>;
template Tensor<float> regions_of_grid(const Tensor<float>&);
template Tensor<double> regions_of_grid(const Tensor<double>&);
template class PatchEmbedding<float>;
template class PatchEmbedding<double>;
template class BatchNorm2d<float>;
template class BatchNorm2d<double>;
template Array<float> sinusoidal_positions_2d(std::size_t, std::size_t, std::size_t);
template Array<double> sinusoidal_positions_2d(std::size_t, std::size_t, std::size_t);
template class SinusoidalPositionalEncoding2d<float>;
template class SinusoidalPositionalEncoding2d<double>;
template class LearnedPositionalEncoding2d<float>;
template class LearnedPositionalEncoding2d<double>;

}  // namespace xgrad::nn
