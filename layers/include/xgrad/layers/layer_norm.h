#pragma once
// LayerNorm over the trailing `normalized_shape` axes, PyTorch's nn.LayerNorm (weight ones,
// bias zeros).

#include "xgrad/layers/module.h"

namespace xgrad::nn {

struct LayerNormOptions {
  Shape normalized_shape = {};
  double eps = 1e-5;
  bool elementwise_affine = true;
};

template <class T = float>
class LayerNorm : public Module<T> {
 public:
  explicit LayerNorm(const LayerNormOptions& options);

  Tensor<T> forward(const Tensor<T>& x) const;
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  const LayerNormOptions& options() const noexcept { return options_; }

  Tensor<T> weight;  // normalized_shape; undefined without elementwise_affine
  Tensor<T> bias;

 private:
  LayerNormOptions options_;
};

}  // namespace xgrad::nn
