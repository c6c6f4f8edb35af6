#pragma once
// Dropout as a module: active in training mode, the identity in evaluation mode. Masks
// come from the thread's default generator (see manual_seed) unless one is given.

#include "xgrad/framework/random.h"
#include "xgrad/layers/module.h"

namespace xgrad::nn {

template <class T = float>
class Dropout : public Module<T> {
 public:
  explicit Dropout(double p = 0.5, Generator* generator = nullptr);

  Tensor<T> forward(const Tensor<T>& x) const;
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  double p() const noexcept { return p_; }

 private:
  double p_;
  Generator* generator_;
};

}  // namespace xgrad::nn
