#pragma once
// Elementwise operations. Binary operations broadcast as NumPy does; their backward sums the
// gradient over the broadcast axes. Scalar variants take a plain number and record no extra
// graph input.

#include <type_traits>

#include "xgrad/framework/tensor.h"

namespace xgrad {

template <class T>
using scalar_t = std::type_identity_t<T>;  // a scalar argument converts to the tensor's type

template <class T> Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b);
template <class T> Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b);
template <class T> Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b);
template <class T> Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b);
// a^b elementwise; the gradient with respect to b is taken as 0 where a == 0 and b >= 0.
template <class T> Tensor<T> pow(const Tensor<T>& a, const Tensor<T>& b);

template <class T> Tensor<T> add(const Tensor<T>& a, scalar_t<T> s);
template <class T> Tensor<T> sub(const Tensor<T>& a, scalar_t<T> s);
template <class T> Tensor<T> sub(scalar_t<T> s, const Tensor<T>& a);
template <class T> Tensor<T> mul(const Tensor<T>& a, scalar_t<T> s);
template <class T> Tensor<T> div(const Tensor<T>& a, scalar_t<T> s);
template <class T> Tensor<T> div(scalar_t<T> s, const Tensor<T>& a);
template <class T> Tensor<T> pow(const Tensor<T>& a, scalar_t<T> exponent);

template <class T> Tensor<T> neg(const Tensor<T>& x);
template <class T> Tensor<T> exp(const Tensor<T>& x);
template <class T> Tensor<T> log(const Tensor<T>& x);
template <class T> Tensor<T> sqrt(const Tensor<T>& x);
// The gradient of abs at 0 is taken as 0 (as in PyTorch).
template <class T> Tensor<T> abs(const Tensor<T>& x);
template <class T> Tensor<T> tanh(const Tensor<T>& x);
template <class T> Tensor<T> sigmoid(const Tensor<T>& x);
template <class T> Tensor<T> relu(const Tensor<T>& x);

enum class GeluApproximation {
  none,  // x * Phi(x), Phi the standard normal CDF: PyTorch's F.gelu default
  tanh,  // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))): F.gelu(approximate='tanh')
};
template <class T> Tensor<T> gelu(const Tensor<T>& x, GeluApproximation approximation = GeluApproximation::none);
// Limits x to [min, max]; the gradient passes where min <= x <= max.
template <class T> Tensor<T> clamp(const Tensor<T>& x, scalar_t<T> min, scalar_t<T> max);

template <class T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <class T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <class T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <class T> Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }
template <class T> Tensor<T> operator+(const Tensor<T>& a, scalar_t<T> s) { return add(a, s); }
template <class T> Tensor<T> operator+(scalar_t<T> s, const Tensor<T>& a) { return add(a, s); }
template <class T> Tensor<T> operator-(const Tensor<T>& a, scalar_t<T> s) { return sub(a, s); }
template <class T> Tensor<T> operator-(scalar_t<T> s, const Tensor<T>& a) { return sub(s, a); }
template <class T> Tensor<T> operator*(const Tensor<T>& a, scalar_t<T> s) { return mul(a, s); }
template <class T> Tensor<T> operator*(scalar_t<T> s, const Tensor<T>& a) { return mul(a, s); }
template <class T> Tensor<T> operator/(const Tensor<T>& a, scalar_t<T> s) { return div(a, s); }
template <class T> Tensor<T> operator/(scalar_t<T> s, const Tensor<T>& a) { return div(s, a); }
template <class T> Tensor<T> operator-(const Tensor<T>& x) { return neg(x); }

}  // namespace xgrad
