// Sinusoidal and learned positional encodings: a table of rows added to the embeddings of a
// sequence at each position, broadcast over the batch.
#include "xgrad/layers/positional_encoding.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/init.h"
#include "xgrad/framework/layout.h"

namespace xgrad::nn {
namespace {

void check_options(const char* layer, const PositionalEncodingOptions& options) {
  if (options.d_model == 0) throw std::invalid_argument(detail::message(layer, ": d_model = 0 must be positive"));
  if (options.max_len == 0) throw std::invalid_argument(detail::message(layer, ": max_len = 0 must be positive"));
}

// The sequence length T of x [B, T, d_model] (or [T, B, d_model]).
template <class T>
std::size_t sequence_length(const char* layer, const Tensor<T>& x, const PositionalEncodingOptions& options) {
  if (x.dim() != 3 || x.shape()[2] != options.d_model) {
    throw shape_error(detail::message(layer, ": x ", x.shape(), " must be ",
                                      options.batch_first ? "[B, T, d_model]" : "[T, B, d_model]",
                                      " with d_model = ", options.d_model));
  }
  return x.shape()[options.batch_first ? 1 : 0];
}

// x + rows, rows [T, d_model] broadcast over x's batch axis.
template <class T>
Tensor<T> add_rows(const Tensor<T>& x, const Tensor<T>& rows, bool batch_first) {
  const auto length = static_cast<std::int64_t>(rows.shape()[0]);
  return x + reshape(rows, batch_first ? ShapeRequest{1, length, -1} : ShapeRequest{length, 1, -1});
}

// Rows first .. first + count of the sinusoidal table, computed in double as the PyTorch
// tutorial computes them: angle = pos * exp(2i * -ln(10000) / d).
template <class T>
Array<T> sinusoids(std::size_t first, std::size_t count, std::size_t d_model) {
  Array<T> rows = Array<T>::from_shape({count, d_model});
  T* out = rows.data();
  const double step = -std::log(10000.0) / static_cast<double>(d_model);
  for (std::size_t pos = first; pos < first + count; ++pos, out += d_model) {
    for (std::size_t even = 0; even < d_model; even += 2) {
      const double angle = static_cast<double>(pos) * std::exp(static_cast<double>(even) * step);
      out[even] = static_cast<T>(std::sin(angle));
      if (even + 1 < d_model) out[even + 1] = static_cast<T>(std::cos(angle));
    }
  }
  return rows;
}

}  // namespace

template <class T>
SinusoidalPositionalEncoding<T>::SinusoidalPositionalEncoding(const PositionalEncodingOptions& options)
    : options_(options) {
  check_options("SinusoidalPositionalEncoding", options);
  table_ = sinusoids<T>(0, options.max_len, options.d_model);
}

template <class T>
Array<T> SinusoidalPositionalEncoding<T>::encoding(std::size_t length, std::size_t offset) const {
  if (offset + length > options_.max_len) return sinusoids<T>(offset, length, options_.d_model);
  const std::size_t d_model = options_.d_model;
  Array<T> rows = Array<T>::from_shape({length, d_model});
  std::copy_n(table_.data() + offset * d_model, length * d_model, rows.data());
  return rows;
}

// dx += dy (the encoding is a constant)
template <class T>
Tensor<T> SinusoidalPositionalEncoding<T>::forward(const Tensor<T>& x, std::size_t offset) const {
  const std::size_t length = sequence_length("SinusoidalPositionalEncoding", x, options_);
  return add_rows(x, Tensor<T>(encoding(length, offset)), options_.batch_first);
}

template <class T>
LearnedPositionalEncoding<T>::LearnedPositionalEncoding(const PositionalEncodingOptions& options) : options_(options) {
  check_options("LearnedPositionalEncoding", options);
  weight = this->register_parameter("weight", Tensor<T>::zeros({options.max_len, options.d_model}));
  init::normal(weight, 0.0, 1.0);
}

// dx += dy; dweight[offset + t] += sum over the batch of dy[t]
template <class T>
Tensor<T> LearnedPositionalEncoding<T>::forward(const Tensor<T>& x, std::size_t offset) const {
  const std::size_t length = sequence_length("LearnedPositionalEncoding", x, options_);
  if (offset + length > options_.max_len) {
    throw index_error(detail::message("LearnedPositionalEncoding: position ", offset + length - 1, " (offset ", offset,
                                      " + length ", length, " - 1) is outside the table of max_len = ",
                                      options_.max_len, " positions"));
  }
  const auto first = static_cast<std::int64_t>(offset);
  return add_rows(x, slice(weight, 0, first, first + static_cast<std::int64_t>(length)), options_.batch_first);
}

template class SinusoidalPositionalEncoding<float>;
template class SinusoidalPositionalEncoding<double>;
template class LearnedPositionalEncoding<float>;
template class LearnedPositionalEncoding<double>;

}  // namespace xgrad::nn
