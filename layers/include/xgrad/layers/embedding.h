#pragma once
// Embedding: a lookup table of vectors, PyTorch's nn.Embedding. Rows are drawn from N(0, 1);
// the padding row, if any, starts at zero and never receives a gradient.

#include <cstddef>
#include <cstdint>
#include <optional>

#include "xgrad/layers/module.h"

namespace xgrad::nn {

struct EmbeddingOptions {
  std::size_t num_embeddings = 0;
  std::size_t embedding_dim = 0;
  // Negative values count from the end, as in PyTorch.
  std::optional<std::int64_t> padding_idx = std::nullopt;
};

template <class T = float>
class Embedding : public Module<T> {
 public:
  explicit Embedding(const EmbeddingOptions& options);
  // A table holding `matrix` [num, dim]; frozen (no gradient) unless `freeze` is false.
  static Embedding from_pretrained(const Array<T>& matrix, bool freeze = true,
                                   std::optional<std::int64_t> padding_idx = std::nullopt);

  // ids of any shape -> [ids..., embedding_dim]; an id outside the table is an index_error.
  Tensor<T> forward(const Indices& ids) const;
  Tensor<T> operator()(const Indices& ids) const { return forward(ids); }
  // A frozen table still appears in parameters() and state_dict() but gets no gradient.
  void freeze(bool frozen = true) { weight.set_requires_grad(!frozen); }
  const EmbeddingOptions& options() const noexcept { return options_; }

  Tensor<T> weight;  // [num_embeddings, embedding_dim]

 private:
  Embedding(const Array<T>& matrix, bool freeze, std::optional<std::int64_t> padding_idx);
  EmbeddingOptions options_;
};

}  // namespace xgrad::nn
