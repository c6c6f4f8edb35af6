#include "xgrad/framework/dropout.h"

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"

namespace xgrad {

// y = x * m with m in {0, 1/(1-p)}; dx += dy * m
template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& generator) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument(detail::message("dropout: probability ", p, " must lie in [0, 1]"));
  }
  if (!training || p == 0.0) return x;
  const T keep_scale = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
  Array<T> scale = Array<T>::from_shape(x.shape());
  Array<T> y = Array<T>::from_shape(x.shape());
  const T* px = x.data();
  for (std::size_t i = 0; i < y.size(); ++i) {
    scale.data()[i] = generator.uniform() < p ? T(0) : keep_scale;
    y.data()[i] = px[i] * scale.data()[i];
  }
  return record<T>(
      "dropout", std::move(y), {x},
      [scale = std::move(scale)](Node<T>& node) {
        const T* gy = node.output_grad().data();
        T* gx = node.input_grad(0).data();
        for (std::size_t i = 0; i < scale.size(); ++i) gx[i] += gy[i] * scale.data()[i];
      },
      reads_no_values());
}

template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training) {
  return dropout(x, p, training, default_generator());
}

template Tensor<float> dropout(const Tensor<float>&, double, bool, Generator&);
template Tensor<double> dropout(const Tensor<double>&, double, bool, Generator&);
template Tensor<float> dropout(const Tensor<float>&, double, bool);
template Tensor<double> dropout(const Tensor<double>&, double, bool);

}  // namespace xgrad
