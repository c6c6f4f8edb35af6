#pragma once
// What the classifiers share between their encoders and their output layers: the check of
// a batch, and the pooling of the encoder's states [B, T, D] into one vector per text.

#include <cstddef>
#include <vector>

#include "xgrad/layers/attention.h"
#include "xgrad/models/batching.h"

namespace xgrad::models {

template <class T>
struct Pooled {
  Tensor<T> summary;  // [B, D]
  Tensor<T> weights;  // [B, T]: each position's share of its text's summary (0 on padding)
};

// shape_error naming `model` and the shapes unless the batch is ids [B, T] with B lengths in [1, T].
void check_classification_batch(const char* model, const PaddedBatch& batch);

// A learned query [1, 1, size] for attention pooling, drawn from U(-1/sqrt(size), 1/sqrt(size)).
template <class T>
Tensor<T> initial_pooling_query(std::size_t size);

// Attention pooling: the same learned query [1, 1, Q] asks `attention` about every real
// position of each text; the summary is the attention's context.
template <class T>
Pooled<T> attention_pool(const Tensor<T>& query, const nn::Attention<T>& attention, const Tensor<T>& states,
                         const std::vector<std::size_t>& lengths);

// Mean pooling: each text's summary is the mean of its real positions' states (weights 1 /
// length on them, 0 on padding).
template <class T>
Pooled<T> mean_pool(const Tensor<T>& states, const std::vector<std::size_t>& lengths);

}  // namespace xgrad::models
