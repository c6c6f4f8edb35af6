// Linear, Embedding, Dropout and LayerNorm: thin modules over one framework operation each.
#include <cmath>
#include <type_traits>

#include "xgrad/framework/dropout.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/indexing.h"
#include "xgrad/framework/init.h"
#include "xgrad/framework/matmul.h"
#include "xgrad/framework/normalization.h"
#include "xgrad/layers/dropout.h"
#include "xgrad/layers/embedding.h"
#include "xgrad/layers/layer_norm.h"
#include "xgrad/layers/linear.h"

namespace xgrad::nn {

template <class T>
Linear<T>::Linear(const LinearOptions& options) : options_(options) {
  if (options.in_features == 0 || options.out_features == 0) {
    throw std::invalid_argument(detail::message("Linear: in_features (", options.in_features, ") and out_features (",
                                                options.out_features, ") must be positive"));
  }
  weight = this->register_parameter("weight", Tensor<T>::zeros({options.out_features, options.in_features}));
  // PyTorch: kaiming_uniform(a = sqrt(5)) for the weight, U(+-1/sqrt(fan_in)) for the bias.
  init::kaiming_uniform(weight, std::sqrt(5.0));
  if (options.bias) {
    bias = this->register_parameter("bias", Tensor<T>::zeros({options.out_features}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(options.in_features));
    init::uniform(bias, -bound, bound);
  }
}

template <class T>
Tensor<T> Linear<T>::forward(const Tensor<T>& x) const {
  if constexpr (std::is_same_v<T, float>) {
    if (rounded_weight_) return linear(x, *rounded_weight_, bias);
  }
  return linear(x, weight, bias);
}

template <class T>
void Linear<T>::use_weight_format(WeightFormat format) {
  rounded_weight_.reset();
  if constexpr (std::is_same_v<T, float>) {
    if (format != WeightFormat::float32) rounded_weight_ = std::make_unique<const QuantizedMatrix>(weight.value(), format);
  }
}

namespace {
std::optional<std::int64_t> resolve_padding(std::optional<std::int64_t> padding_idx, std::size_t num) {
  if (!padding_idx) return std::nullopt;
  const auto n = static_cast<std::int64_t>(num);
  const std::int64_t index = *padding_idx < 0 ? *padding_idx + n : *padding_idx;
  if (index < 0 || index >= n) {
    throw std::invalid_argument(detail::message("Embedding: padding_idx ", *padding_idx, " is outside the ", num,
                                                "-row table"));
  }
  return index;
}
}  // namespace

template <class T>
Embedding<T>::Embedding(const EmbeddingOptions& options) : options_(options) {
  if (options.num_embeddings == 0 || options.embedding_dim == 0) {
    throw std::invalid_argument(detail::message("Embedding: num_embeddings (", options.num_embeddings,
                                                ") and embedding_dim (", options.embedding_dim, ") must be positive"));
  }
  options_.padding_idx = resolve_padding(options.padding_idx, options.num_embeddings);
  weight = this->register_parameter("weight", Tensor<T>::zeros({options.num_embeddings, options.embedding_dim}));
  init::normal(weight, 0.0, 1.0);
  if (options_.padding_idx) {
    auto row = weight.mutable_value().begin() + *options_.padding_idx * static_cast<std::ptrdiff_t>(options.embedding_dim);
    std::fill_n(row, options.embedding_dim, T(0));
  }
}

namespace {
template <class T>
EmbeddingOptions pretrained_options(const Array<T>& matrix, std::optional<std::int64_t> padding_idx) {
  if (matrix.dimension() != 2) {
    throw shape_error(detail::message("Embedding::from_pretrained: the matrix has shape ", matrix.shape(),
                                      "; expected [num_embeddings, embedding_dim]"));
  }
  return {.num_embeddings = matrix.shape()[0], .embedding_dim = matrix.shape()[1], .padding_idx = padding_idx};
}
}  // namespace

template <class T>
Embedding<T>::Embedding(const Array<T>& matrix, bool freeze, std::optional<std::int64_t> padding_idx)
    : Embedding(pretrained_options(matrix, padding_idx)) {
  weight.mutable_value() = matrix;
  this->freeze(freeze);
}

template <class T>
Embedding<T> Embedding<T>::from_pretrained(const Array<T>& matrix, bool freeze, std::optional<std::int64_t> padding_idx) {
  return Embedding(matrix, freeze, padding_idx);
}

template <class T>
Tensor<T> Embedding<T>::forward(const Indices& ids) const {
  return embedding(weight, ids, options_.padding_idx);
}

template <class T>
Dropout<T>::Dropout(double p, Generator* generator) : p_(p), generator_(generator) {
  if (!(p >= 0.0 && p <= 1.0)) throw std::invalid_argument(detail::message("Dropout: p = ", p, " must lie in [0, 1]"));
}

template <class T>
Tensor<T> Dropout<T>::forward(const Tensor<T>& x) const {
  return dropout(x, p_, this->is_training(), generator_ != nullptr ? *generator_ : default_generator());
}

template <class T>
LayerNorm<T>::LayerNorm(const LayerNormOptions& options) : options_(options) {
  if (options.normalized_shape.empty() || element_count(options.normalized_shape) == 0) {
    throw std::invalid_argument(detail::message("LayerNorm: normalized_shape ", options.normalized_shape,
                                                " must be non-empty with positive extents"));
  }
  if (options.elementwise_affine) {
    weight = this->register_parameter("weight", Tensor<T>::ones(options.normalized_shape));
    bias = this->register_parameter("bias", Tensor<T>::zeros(options.normalized_shape));
  }
}

template <class T>
Tensor<T> LayerNorm<T>::forward(const Tensor<T>& x) const {
  return layer_norm(x, options_.normalized_shape, weight, bias, options_.eps);
}

template class Linear<float>;
template class Linear<double>;
template class Embedding<float>;
template class Embedding<double>;
template class Dropout<float>;
template class Dropout<double>;
template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace xgrad::nn
