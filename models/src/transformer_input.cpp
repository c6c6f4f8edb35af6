#include "xgrad/models/transformer_input.h"

#include <cmath>

#include "transformer_parts.h"
#include "xgrad/framework/elementwise.h"

namespace xgrad::models {

std::string to_string(PositionKind positions) { return config::name_of(positions, config::position_names); }
PositionKind position_kind_from_string(const std::string& name) {
  return config::kind_named("positions", name, config::position_names);
}
std::string to_string(nn::TransformerActivation activation) { return config::name_of(activation, config::activation_names); }
nn::TransformerActivation transformer_activation_from_string(const std::string& name) {
  return config::kind_named("activation", name, config::activation_names);
}

template <class T>
nn::Embedding<T>& scaled_for_the_model(nn::Embedding<T>& embedding) {
  embedding.weight.mutable_value() *= T(1.0 / std::sqrt(static_cast<double>(embedding.options().embedding_dim)));
  return embedding;
}

template <class T>
Tensor<T> transformer_input(const nn::Embedding<T>& embedding, const Indices& ids, std::size_t offset,
                            const nn::SinusoidalPositionalEncoding<T>* sinusoidal,
                            const nn::LearnedPositionalEncoding<T>* learned) {
  const Tensor<T> x = mul(embedding(ids), T(std::sqrt(static_cast<double>(embedding.options().embedding_dim))));
  return sinusoidal ? (*sinusoidal)(x, offset) : (*learned)(x, offset);
}

template nn::Embedding<float>& scaled_for_the_model(nn::Embedding<float>&);
template nn::Embedding<double>& scaled_for_the_model(nn::Embedding<double>&);
template Tensor<float> transformer_input(const nn::Embedding<float>&, const Indices&, std::size_t,
                                         const nn::SinusoidalPositionalEncoding<float>*,
                                         const nn::LearnedPositionalEncoding<float>*);
template Tensor<double> transformer_input(const nn::Embedding<double>&, const Indices&, std::size_t,
                                          const nn::SinusoidalPositionalEncoding<double>*,
                                          const nn::LearnedPositionalEncoding<double>*);

}  // namespace xgrad::models
