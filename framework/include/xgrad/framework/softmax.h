#pragma once
// softmax and log_softmax along an axis, computed in log-sum-exp form so that large logits
// neither overflow nor lose precision.
//
// The optional mask (broadcast to x's shape, true = masked out, as PyTorch's attention
// masks) removes positions from the distribution: a masked position gets probability exactly
// 0 (log-probability -inf) and no gradient. A row whose every position is masked gives
// probabilities 0 everywhere, never NaN, and passes no gradient.

#include "xgrad/framework/tensor.h"

namespace xgrad {

template <class T> Tensor<T> softmax(const Tensor<T>& x, int axis = -1);
template <class T> Tensor<T> softmax(const Tensor<T>& x, int axis, const Mask& masked);
template <class T> Tensor<T> log_softmax(const Tensor<T>& x, int axis = -1);
template <class T> Tensor<T> log_softmax(const Tensor<T>& x, int axis, const Mask& masked);

}  // namespace xgrad
