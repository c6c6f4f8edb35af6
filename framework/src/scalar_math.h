#pragma once
// Scalar functions shared by several kernels.

#include <cmath>

namespace xgrad::detail {

// 1 / (1 + e^-v) in two forms, so that the exponential never overflows.
template <class T>
T stable_sigmoid(T v) {
  if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
  const T e = std::exp(v);
  return e / (T(1) + e);
}

}  // namespace xgrad::detail
