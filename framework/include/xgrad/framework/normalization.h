#pragma once
// Layer and batch normalisation, each as one fused operation.

#include "xgrad/framework/tensor.h"

namespace xgrad {

// Normalises x over its last `normalized_shape.size()` axes (which must equal
// normalized_shape) to zero mean and unit (biased) variance, then scales by `weight` and
// shifts by `bias` (each shaped normalized_shape, or undefined), as torch.nn.functional.layer_norm.
template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, const Shape& normalized_shape, const Tensor<T>& weight = {},
                     const Tensor<T>& bias = {}, double eps = 1e-5);

struct BatchNormOptions {
  // Normalise with the batch's statistics and update the running ones (training), or with
  // the running statistics (evaluation).
  bool training = true;
  // running = (1 - momentum) * running + momentum * batch statistic
  double momentum = 0.1;
  double eps = 1e-5;
};

// Batch normalisation over channel axis 1 of x [B, C, ...], as torch.nn.functional.batch_norm:
// each channel is normalised by its mean and biased variance over the batch and the other
// axes (training) or by running_mean and running_var [C] (evaluation), then scaled by
// `weight` and shifted by `bias` [C] (each optional). In training, running_mean and
// running_var, when defined, are updated in place (they are handles) with the batch's mean
// and its unbiased variance, and take no part in the graph. A channel of a single value in
// training is a shape_error, as in PyTorch (its variance is undefined).
template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, Tensor<T> running_mean, Tensor<T> running_var, const Tensor<T>& weight = {},
                     const Tensor<T>& bias = {}, const BatchNormOptions& options = {});

}  // namespace xgrad
