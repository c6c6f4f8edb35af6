#pragma once
// A new layer from existing operations: a highway layer (Srivastava et al., 2015),
//   t = sigmoid(W_t x + b_t),  y = t * softplus(W_h x + b_h) + (1 - t) * x,
// as a Module with two Linear children, so that its parameters are named
// (transform.weight, gate.bias, ...) and saved like any other layer's.

#include <xgrad/layers.h>

#include "softplus.h"

namespace custom {

struct HighwayOptions {
  std::size_t size = 0;
  double gate_bias = -1.0;  // start by mostly carrying x through, as the paper recommends
};

template <class T = float>
class Highway : public xgrad::nn::Module<T> {
 public:
  explicit Highway(const HighwayOptions& options)
      : transform({.in_features = options.size, .out_features = options.size}),
        gate({.in_features = options.size, .out_features = options.size}) {
    this->register_module("transform", transform);
    this->register_module("gate", gate);
    xgrad::init::constant(gate.bias, options.gate_bias);
  }

  // [..., size] -> [..., size]
  xgrad::Tensor<T> forward(const xgrad::Tensor<T>& x) const {
    const xgrad::Tensor<T> t = xgrad::sigmoid(gate(x));
    return t * softplus(transform(x)) + (T(1) - t) * x;
  }
  xgrad::Tensor<T> operator()(const xgrad::Tensor<T>& x) const { return forward(x); }

  xgrad::nn::Linear<T> transform;
  xgrad::nn::Linear<T> gate;
};

}  // namespace custom
