#pragma once
// Linear: y = x W^T + b over any leading dimensions, with PyTorch's parameter layout and
// default initialisation (weight and bias uniform in +-1/sqrt(in_features)).

#include <cstddef>
#include <memory>

#include "xgrad/layers/module.h"

namespace xgrad::nn {

struct LinearOptions {
  std::size_t in_features = 0;
  std::size_t out_features = 0;
  bool bias = true;
};

template <class T = float>
class Linear : public Module<T> {
 public:
  explicit Linear(const LinearOptions& options);

  // [..., in_features] -> [..., out_features]
  Tensor<T> forward(const Tensor<T>& x) const;
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  const LinearOptions& options() const noexcept { return options_; }

  Tensor<T> weight;  // [out_features, in_features]
  Tensor<T> bias;    // [out_features]; undefined when options.bias is false

 protected:
  void use_weight_format(WeightFormat format) override;

 private:
  LinearOptions options_;
  std::unique_ptr<const QuantizedMatrix> rounded_weight_;  // the product's weight, in another format than float32
};

}  // namespace xgrad::nn
