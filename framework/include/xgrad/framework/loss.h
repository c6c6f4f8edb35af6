#pragma once
// Loss functions. Class scores are on the last axis: logits [..., C] with targets [...],
// so that [batch, time, vocabulary] scores pair with [batch, time] targets directly.

#include <cstdint>

#include "xgrad/framework/tensor.h"

namespace xgrad {

enum class Reduction {
  none,  // one loss per target
  mean,  // averaged over the targets that count (ignored ones excluded)
  sum,
};

struct CrossEntropyOptions {
  // Targets equal to this contribute no loss and no gradient (padding).
  std::int64_t ignore_index = -100;
  // Mixes the one-hot target with the uniform distribution over classes, as PyTorch does:
  // loss = (1 - s) * nll + s / C * sum_j(-log p_j).
  double label_smoothing = 0.0;
  Reduction reduction = Reduction::mean;
};

struct NllLossOptions {
  std::int64_t ignore_index = -100;
  Reduction reduction = Reduction::mean;
};

// Softmax cross-entropy from unnormalised scores, fused: log-sum-exp per row in forward, and
// dx = softmax - target distribution in backward, without storing the probabilities.
// A mean over zero counted targets (all ignored) is 0 with zero gradient, where PyTorch
// returns NaN.
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Indices& targets,
                        const CrossEntropyOptions& options = {});

// Negative log-likelihood of targets under log-probabilities [..., C].
template <class T>
Tensor<T> nll_loss(const Tensor<T>& log_probs, const Indices& targets, const NllLossOptions& options = {});

// Binary cross-entropy on logits in the stable form max(x, 0) - x * y + log(1 + exp(-|x|)).
// Targets (same shape) may require grad.
template <class T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Tensor<T>& targets,
                                           Reduction reduction = Reduction::mean);

// (input - target)^2, same shapes.
template <class T>
Tensor<T> mse_loss(const Tensor<T>& input, const Tensor<T>& target, Reduction reduction = Reduction::mean);

}  // namespace xgrad
