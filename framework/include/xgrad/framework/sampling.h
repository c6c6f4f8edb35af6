#pragma once
// Drawing categories from weights and picking the largest values: what a decoder needs to
// choose its next tokens. Every draw comes from a Generator (random.h), so that one seed
// reproduces the same tokens.

#include <cstddef>

#include "xgrad/framework/random.h"
#include "xgrad/framework/tensor.h"

namespace xgrad {

// num_samples category indices for each row of `weights` [V] or [B, V], as torch.multinomial:
// shape [num_samples] or [B, num_samples]. The weights need not sum to 1. With replacement
// the samples are independent; without, a category is drawn at most once per row, each draw
// from the weights of the categories not drawn yet. Throws std::invalid_argument for a
// negative, infinite or NaN weight, a row whose weights are all 0, or (without replacement)
// more samples than a row has categories of non-zero weight; shape_error for other ranks.
template <class T>
Indices multinomial(const Tensor<T>& weights, std::size_t num_samples, bool replacement, Generator& generator);

template <class T>
struct TopK {
  Tensor<T> values;  // [..., k]; differentiable: the gradient reaches the chosen entries
  Indices indices;   // [..., k]: their positions along the last axis
};

// The k largest values along the last axis with their positions, largest first and equal
// values in order of position (torch.topk, sorted; a NaN counts as larger than any number, as
// there). shape_error for a scalar or k above the last axis' extent.
template <class T>
TopK<T> top_k(const Tensor<T>& x, std::size_t k);

struct SamplingOptions {
  // > 0: sample from softmax(logits / temperature); 0: take the largest logit (greedy).
  double temperature = 1.0;
  // > 0: sample among the top_k largest logits only (exactly top_k, ties to the lower index
  // as in top_k()); 0, or not below the vocabulary size: among all.
  std::size_t top_k = 0;
};

// One token per row of `logits` [B, V] -> [B]. Greedy (temperature 0) picks the lowest index
// among equal maxima and draws nothing from the generator; otherwise each row takes one
// uniform draw. std::invalid_argument for a negative or non-finite temperature, a NaN logit
// or a row whose logits are all -inf; shape_error for other ranks or V = 0.
template <class T>
Indices sample_logits(const Tensor<T>& logits, const SamplingOptions& options, Generator& generator);

}  // namespace xgrad
