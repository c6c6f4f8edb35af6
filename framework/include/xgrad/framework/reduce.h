#pragma once
// Reductions over axes. With keepdims the reduced axes stay as extent 1, so the result
// broadcasts against the input.

#include "xgrad/framework/tensor.h"

namespace xgrad {

// The sum of all elements, as a scalar (accumulated in double).
template <class T> Tensor<T> sum(const Tensor<T>& x);
// Sums over `axes` (an empty list reduces nothing, as in NumPy).
template <class T> Tensor<T> sum(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
template <class T> Tensor<T> mean(const Tensor<T>& x);
template <class T> Tensor<T> mean(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
// The largest element (over all elements or over `axes`); the gradient goes to the first
// largest element in row-major order. NaN propagates.
template <class T> Tensor<T> max(const Tensor<T>& x);
template <class T> Tensor<T> max(const Tensor<T>& x, const Axes& axes, bool keepdims = false);
// Position of the first largest element along `axis` (not differentiable).
template <class T> Indices argmax(const Tensor<T>& x, int axis, bool keepdims = false);

}  // namespace xgrad
