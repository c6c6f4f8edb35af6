#pragma once
// A new operation with its own backward: softplus(x) = log(1 + e^x), computed stably.
// It records one graph node; the backward function accumulates dy * sigmoid(x).

#include <xgrad/framework.h>

#include <cmath>

namespace custom {

template <class T>
xgrad::Tensor<T> softplus(const xgrad::Tensor<T>& x) {
  xgrad::Array<T> y = xgrad::Array<T>::from_shape(x.shape());
  const T* in = x.data();
  for (std::size_t i = 0; i < y.size(); ++i) {
    // max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
    y.data()[i] = std::max(in[i], T(0)) + std::log1p(std::exp(-std::abs(in[i])));
  }
  return xgrad::record<T>("softplus", std::move(y), {x}, [](xgrad::Node<T>& node) {
    // dx += dy * sigmoid(x)
    const T* xv = node.input(0).data();
    const T* dy = node.output_grad().data();
    T* dx = node.input_grad(0).data();  // add to it: other uses of x add their share too
    for (std::size_t i = 0; i < node.input(0).size(); ++i) dx[i] += dy[i] / (T(1) + std::exp(-xv[i]));
  });
}

}  // namespace custom
