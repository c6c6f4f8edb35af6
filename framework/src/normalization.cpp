#include "xgrad/framework/normalization.h"

#include <cmath>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"

namespace xgrad {

// xhat = (x - mean) * rstd; y = xhat * w + b
// dx += rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w; dw += sum dy xhat; db += sum dy
template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, const Shape& normalized_shape, const Tensor<T>& weight,
                     const Tensor<T>& bias, double eps) {
  const Shape& xs = x.shape();
  const std::size_t k = normalized_shape.size();
  bool fits = k >= 1 && k <= xs.size();
  for (std::size_t i = 0; fits && i < k; ++i) fits = xs[xs.size() - k + i] == normalized_shape[i];
  fits = fits && (!weight.defined() || weight.shape() == normalized_shape) &&
         (!bias.defined() || bias.shape() == normalized_shape);
  if (!fits) {
    throw shape_error(detail::message(
        "layer_norm: x of shape ", xs, " with normalized_shape ", normalized_shape, ", weight ",
        weight.defined() ? to_string(weight.shape()) : std::string("(none)"), " and bias ",
        bias.defined() ? to_string(bias.shape()) : std::string("(none)"),
        " do not fit (x must end with normalized_shape; weight and bias must equal it)"));
  }
  const std::size_t width = element_count(normalized_shape);
  const std::size_t rows = width == 0 ? 0 : x.size() / width;
  std::vector<T> means(rows), rstds(rows);
  Array<T> y = Array<T>::from_shape(xs);
  const T* px = x.data();
  const T* w = weight.defined() ? weight.data() : nullptr;
  const T* b = bias.defined() ? bias.data() : nullptr;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = px + r * width;
    double mean = 0, variance = 0;
    for (std::size_t j = 0; j < width; ++j) mean += row[j];
    mean /= double(width);
    for (std::size_t j = 0; j < width; ++j) variance += (row[j] - mean) * (row[j] - mean);
    variance /= double(width);
    means[r] = static_cast<T>(mean);
    rstds[r] = static_cast<T>(1.0 / std::sqrt(variance + eps));
    T* out = y.data() + r * width;
    for (std::size_t j = 0; j < width; ++j) {
      const T normalized = (row[j] - means[r]) * rstds[r];
      out[j] = normalized * (w ? w[j] : T(1)) + (b ? b[j] : T(0));
    }
  }
  std::vector<Tensor<T>> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  const bool has_weight = weight.defined(), has_bias = bias.defined();
  return record<T>("layer_norm", std::move(y), std::move(inputs),
                   [rows, width, has_weight, has_bias, means = std::move(means), rstds = std::move(rstds)](Node<T>& node) {
                     const T* px = node.input(0).data();
                     const T* dy = node.output_grad().data();
                     const T* w = has_weight ? node.input(1).data() : nullptr;
                     T* dx = node.needs_grad(0) ? node.input_grad(0).data() : nullptr;
                     T* dw = has_weight && node.needs_grad(1) ? node.input_grad(1).data() : nullptr;
                     const std::size_t bias_input = has_weight ? 2 : 1;
                     T* db = has_bias && node.needs_grad(bias_input) ? node.input_grad(bias_input).data() : nullptr;
                     for (std::size_t r = 0; r < rows; ++r) {
                       const T* row = px + r * width;
                       const T* g_out = dy + r * width;
                       double mean_g = 0, mean_g_xhat = 0;
                       for (std::size_t j = 0; j < width; ++j) {
                         const T xhat = (row[j] - means[r]) * rstds[r];
                         const T g = g_out[j] * (w ? w[j] : T(1));
                         mean_g += g;
                         mean_g_xhat += g * xhat;
                         if (dw) dw[j] += g_out[j] * xhat;
                         if (db) db[j] += g_out[j];
                       }
                       if (!dx) continue;
                       mean_g /= double(width);
                       mean_g_xhat /= double(width);
                       for (std::size_t j = 0; j < width; ++j) {
                         const T xhat = (row[j] - means[r]) * rstds[r];
                         const T g = g_out[j] * (w ? w[j] : T(1));
                         dx[r * width + j] += rstds[r] * (g - T(mean_g) - xhat * T(mean_g_xhat));
                       }
                     }
                   });
}

template Tensor<float> layer_norm(const Tensor<float>&, const Shape&, const Tensor<float>&, const Tensor<float>&, double);
template Tensor<double> layer_norm(const Tensor<double>&, const Shape&, const Tensor<double>&, const Tensor<double>&,
                                   double);

}  // namespace xgrad
