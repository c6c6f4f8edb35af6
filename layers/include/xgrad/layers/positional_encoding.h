#pragma once
// Positional encodings added to a sequence of embeddings, each with an offset: an
// incremental decoder adds the encoding of position t to the embedding of its t-th token.
//
// Sinusoidal (the PyTorch tutorial's, "Attention is all you need"): no parameters,
//   pe[pos, 2i] = sin(pos / 10000^(2i / d)), pe[pos, 2i + 1] = cos(pos / 10000^(2i / d)).
// Learned: a table [max_len, d_model] registered as the parameter "weight", N(0, 1) as
// nn.Embedding starts.

#include <cstddef>

#include "xgrad/layers/module.h"

namespace xgrad::nn {

struct PositionalEncodingOptions {
  std::size_t d_model = 0;  // positive
  // Sinusoidal: positions computed once (others are computed when asked for).
  // Learned: the table's rows, the number of positions it can encode. Positive.
  std::size_t max_len = 5000;
  bool batch_first = true;  // x is [B, T, d_model]; false: [T, B, d_model]
};

template <class T = float>
class SinusoidalPositionalEncoding : public Module<T> {
 public:
  explicit SinusoidalPositionalEncoding(const PositionalEncodingOptions& options);

  // x + pe[offset .. offset + T): x [B, T, d_model] (or [T, B, d_model]) -> the same shape.
  Tensor<T> forward(const Tensor<T>& x, std::size_t offset = 0) const;
  Tensor<T> operator()(const Tensor<T>& x, std::size_t offset = 0) const { return forward(x, offset); }
  // pe[offset .. offset + length): [length, d_model].
  Array<T> encoding(std::size_t length, std::size_t offset = 0) const;
  const PositionalEncodingOptions& options() const noexcept { return options_; }

 private:
  PositionalEncodingOptions options_;
  Array<T> table_;  // pe[0 .. max_len)
};

template <class T = float>
class LearnedPositionalEncoding : public Module<T> {
 public:
  explicit LearnedPositionalEncoding(const PositionalEncodingOptions& options);

  // x + weight[offset .. offset + T): x [B, T, d_model] (or [T, B, d_model]) -> the same
  // shape. Positions at or past max_len are an index_error.
  Tensor<T> forward(const Tensor<T>& x, std::size_t offset = 0) const;
  Tensor<T> operator()(const Tensor<T>& x, std::size_t offset = 0) const { return forward(x, offset); }
  const PositionalEncodingOptions& options() const noexcept { return options_; }

  Tensor<T> weight;  // [max_len, d_model]

 private:
  PositionalEncodingOptions options_;
};

}  // namespace xgrad::nn
