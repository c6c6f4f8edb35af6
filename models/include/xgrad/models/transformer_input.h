#pragma once
// What every Transformer model puts in front of its stacks, and how its options name the
// choices: token embeddings scaled by sqrt(d_model) (Vaswani et al., 2017, section 3.4),
// initialised N(0, 1 / d_model), plus sinusoidal or learned positions.

#include <cstddef>
#include <string>

#include "xgrad/layers/embedding.h"
#include "xgrad/layers/positional_encoding.h"
#include "xgrad/layers/transformer.h"

namespace xgrad::models {

enum class PositionKind { sinusoidal, learned };

std::string to_string(PositionKind positions);
PositionKind position_kind_from_string(const std::string& name);  // std::invalid_argument listing the choices
std::string to_string(nn::TransformerActivation activation);
nn::TransformerActivation transformer_activation_from_string(const std::string& name);

// Rescales a freshly initialised embedding (N(0, 1)) to N(0, 1 / d_model), d_model its width, so that the
// embedding scaled by sqrt(d_model) starts near unit variance and, tied to an output layer,
// gives logits of unit scale (fairseq's choice); the padding row stays zero. Returns `embedding`.
template <class T>
nn::Embedding<T>& scaled_for_the_model(nn::Embedding<T>& embedding);

// embedding(ids) * sqrt(d_model) plus the encoding of positions offset..: ids [B, T] ->
// [B, T, d_model]. Exactly one of `sinusoidal` and `learned` is given.
template <class T>
Tensor<T> transformer_input(const nn::Embedding<T>& embedding, const Indices& ids, std::size_t offset,
                            const nn::SinusoidalPositionalEncoding<T>* sinusoidal,
                            const nn::LearnedPositionalEncoding<T>* learned);

}  // namespace xgrad::models
