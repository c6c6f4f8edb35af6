#include "xgrad/framework/init.h"

#include <cmath>
#include <vector>

#include "xgrad/framework/errors.h"

namespace xgrad::init {
namespace {

std::size_t fan(const Shape& shape, FanMode mode) {
  const auto [fan_in, fan_out] = fans(shape);
  return mode == FanMode::fan_in ? fan_in : fan_out;
}

// Householder QR of a rows x cols matrix (rows >= cols, row-major): returns the first `cols`
// columns of Q, with each column's sign fixed by diag(R) so that the result is uniformly
// distributed over orthogonal matrices.
std::vector<double> orthonormal_columns(std::vector<double> a, std::size_t rows, std::size_t cols) {
  std::vector<std::vector<double>> reflectors;
  std::vector<double> diagonal(cols);
  for (std::size_t k = 0; k < cols; ++k) {
    std::vector<double> v(rows, 0.0);
    double norm = 0;
    for (std::size_t i = k; i < rows; ++i) norm += a[i * cols + k] * a[i * cols + k];
    norm = std::sqrt(norm);
    const double alpha = a[k * cols + k] > 0 ? -norm : norm;
    for (std::size_t i = k; i < rows; ++i) v[i] = a[i * cols + k];
    v[k] -= alpha;
    double v_norm = 0;
    for (std::size_t i = k; i < rows; ++i) v_norm += v[i] * v[i];
    if (v_norm > 0) {
      for (std::size_t j = k; j < cols; ++j) {  // a -= 2 v (v^T a) / (v^T v)
        double dot = 0;
        for (std::size_t i = k; i < rows; ++i) dot += v[i] * a[i * cols + j];
        for (std::size_t i = k; i < rows; ++i) a[i * cols + j] -= 2 * v[i] * dot / v_norm;
      }
    }
    diagonal[k] = a[k * cols + k];
    reflectors.push_back(std::move(v));
  }
  // Q = H_0 H_1 ... H_{cols-1} applied to the first `cols` columns of the identity.
  std::vector<double> q(rows * cols, 0.0);
  for (std::size_t j = 0; j < cols; ++j) q[j * cols + j] = 1.0;
  for (std::size_t k = cols; k-- > 0;) {
    const std::vector<double>& v = reflectors[k];
    double v_norm = 0;
    for (std::size_t i = k; i < rows; ++i) v_norm += v[i] * v[i];
    if (v_norm == 0) continue;
    for (std::size_t j = 0; j < cols; ++j) {
      double dot = 0;
      for (std::size_t i = k; i < rows; ++i) dot += v[i] * q[i * cols + j];
      for (std::size_t i = k; i < rows; ++i) q[i * cols + j] -= 2 * v[i] * dot / v_norm;
    }
  }
  for (std::size_t j = 0; j < cols; ++j) {
    if (diagonal[j] < 0) {
      for (std::size_t i = 0; i < rows; ++i) q[i * cols + j] = -q[i * cols + j];
    }
  }
  return q;
}

}  // namespace

std::pair<std::size_t, std::size_t> fans(const Shape& shape) {
  if (shape.size() < 2) {
    throw shape_error(detail::message("init: fan in and fan out need a tensor of rank 2 or more, not shape ", shape));
  }
  std::size_t receptive = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

double gain(Nonlinearity nonlinearity, double slope) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  return 1.0;
}

template <class T>
void constant(Tensor<T>& tensor, double value) {
  tensor.mutable_value().fill(static_cast<T>(value));
}

template <class T>
void uniform(Tensor<T>& tensor, double low, double high, Generator& generator) {
  for (T& v : tensor.mutable_value()) v = static_cast<T>(generator.uniform(low, high));
}

template <class T>
void normal(Tensor<T>& tensor, double mean, double std, Generator& generator) {
  for (T& v : tensor.mutable_value()) v = static_cast<T>(mean + std * generator.normal());
}

template <class T>
void xavier_uniform(Tensor<T>& tensor, double gain_value, Generator& generator) {
  const auto [fan_in, fan_out] = fans(tensor.shape());
  const double bound = gain_value * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  uniform(tensor, -bound, bound, generator);
}

template <class T>
void xavier_normal(Tensor<T>& tensor, double gain_value, Generator& generator) {
  const auto [fan_in, fan_out] = fans(tensor.shape());
  normal(tensor, 0.0, gain_value * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), generator);
}

template <class T>
void kaiming_uniform(Tensor<T>& tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator& generator) {
  const double bound = gain(nonlinearity, a) * std::sqrt(3.0 / static_cast<double>(fan(tensor.shape(), mode)));
  uniform(tensor, -bound, bound, generator);
}

template <class T>
void kaiming_normal(Tensor<T>& tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator& generator) {
  normal(tensor, 0.0, gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(tensor.shape(), mode))), generator);
}

template <class T>
void orthogonal(Tensor<T>& tensor, double gain_value, Generator& generator) {
  const Shape& shape = tensor.shape();
  if (shape.size() < 2) throw shape_error(detail::message("init::orthogonal: needs rank 2 or more, not shape ", shape));
  const std::size_t rows = shape[0];
  const std::size_t cols = tensor.size() / std::max<std::size_t>(rows, 1);
  if (rows == 0 || cols == 0) return;
  // Orthonormalise the longer side: for a wide matrix, work on its transpose.
  const bool wide = rows < cols;
  const std::size_t tall = wide ? cols : rows, narrow = wide ? rows : cols;
  std::vector<double> gaussian(tall * narrow);
  for (double& v : gaussian) v = generator.normal();
  const std::vector<double> q = orthonormal_columns(std::move(gaussian), tall, narrow);
  T* out = tensor.mutable_value().data();
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      out[i * cols + j] = static_cast<T>(gain_value * (wide ? q[j * narrow + i] : q[i * narrow + j]));
    }
  }
}

#define XGRAD_INSTANTIATE_INIT(T)                                                           \
  template void constant(Tensor<T>&, double);                                               \
  template void uniform(Tensor<T>&, double, double, Generator&);                            \
  template void normal(Tensor<T>&, double, double, Generator&);                             \
  template void xavier_uniform(Tensor<T>&, double, Generator&);                             \
  template void xavier_normal(Tensor<T>&, double, Generator&);                              \
  template void kaiming_uniform(Tensor<T>&, double, FanMode, Nonlinearity, Generator&);     \
  template void kaiming_normal(Tensor<T>&, double, FanMode, Nonlinearity, Generator&);      \
  template void orthogonal(Tensor<T>&, double, Generator&);

XGRAD_INSTANTIATE_INIT(float)
XGRAD_INSTANTIATE_INIT(double)

}  // namespace xgrad::init
