#pragma once
// Layer normalisation as one fused operation.

#include "xgrad/framework/tensor.h"

namespace xgrad {

// Normalises x over its last `normalized_shape.size()` axes (which must equal
// normalized_shape) to zero mean and unit (biased) variance, then scales by `weight` and
// shifts by `bias` (each shaped normalized_shape, or undefined), as torch.nn.functional.layer_norm.
template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, const Shape& normalized_shape, const Tensor<T>& weight = {},
                     const Tensor<T>& bias = {}, double eps = 1e-5);

}  // namespace xgrad
