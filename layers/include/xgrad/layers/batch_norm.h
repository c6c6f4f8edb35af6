#pragma once
// BatchNorm2d: PyTorch's nn.BatchNorm2d over [B, C, H, W]. In training mode each channel is
// normalised with the batch's statistics, and the buffers `running_mean`, `running_var` (the
// unbiased variance) and `num_batches_tracked` are updated; in evaluation mode the running
// statistics normalise. The buffers are in the state dict under PyTorch's names, beside the
// affine parameters `weight` (ones) and `bias` (zeros).

#include <cstddef>
#include <optional>

#include "xgrad/layers/module.h"

namespace xgrad::nn {

struct BatchNorm2dOptions {
  std::size_t num_features = 0;  // channels
  double eps = 1e-5;
  // The running statistics' update weight; nullopt: their cumulative average over the batches
  // seen (PyTorch's momentum=None).
  std::optional<double> momentum = 0.1;
  bool affine = true;
  // Without running statistics, evaluation mode normalises with the batch's statistics too.
  bool track_running_stats = true;
};

template <class T = float>
class BatchNorm2d : public Module<T> {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& options);

  // [B, C, H, W] -> the same shape. In training mode this updates the running buffers, as
  // PyTorch's forward does; call it under NoGradGuard or not, the buffers take no gradient.
  Tensor<T> forward(const Tensor<T>& x) const;
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  const BatchNorm2dOptions& options() const noexcept { return options_; }

  Tensor<T> weight;               // [C]; undefined without affine
  Tensor<T> bias;                 // [C]; undefined without affine
  Tensor<T> running_mean;         // [C], zeros; undefined without track_running_stats
  Tensor<T> running_var;          // [C], ones; undefined without track_running_stats
  Tensor<T> num_batches_tracked;  // [] (PyTorch keeps it as int64); undefined without track_running_stats

 private:
  BatchNorm2dOptions options_;
};

}  // namespace xgrad::nn
