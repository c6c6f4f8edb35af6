#pragma once
// Inverted dropout: in training each element is zeroed with probability p and the rest are
// scaled by 1 / (1 - p), so that evaluation needs no rescaling.

#include "xgrad/framework/random.h"
#include "xgrad/framework/tensor.h"

namespace xgrad {

// Returns x itself when not training or when p is 0.
template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& generator);
template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training);

}  // namespace xgrad
