#pragma once
// What the Transformer models share behind their options: the JSON names of their choices,
// the checks of the shape they ask for, their stacks' options and the stacks' parameter
// counts. The options types (TransformerTranslatorOptions, TransformerClassifierOptions)
// name the shared fields alike: model_size, heads, feedforward_size, dropout, activation,
// norm_first, layer_norm_eps, max_positions.

#include <cmath>
#include <cstddef>
#include <stdexcept>

#include "configuration.h"
#include "xgrad/framework/errors.h"
#include "xgrad/layers/transformer.h"
#include "xgrad/models/transformer_input.h"

namespace xgrad::models::config {

inline const KindNames<PositionKind> position_names{{PositionKind::sinusoidal, "sinusoidal"},
                                                    {PositionKind::learned, "learned"}};
inline const KindNames<nn::TransformerActivation> activation_names{{nn::TransformerActivation::relu, "relu"},
                                                                   {nn::TransformerActivation::gelu, "gelu"}};

// The sizes every Transformer's options must have, each std::invalid_argument naming
// `model` and the option.
template <class Options>
void check_transformer_shape(const char* model, const Options& o) {
  check_size(model, "model_size", o.model_size, max_size);
  check_size(model, "heads", o.heads, o.model_size);
  check_size(model, "feedforward_size", o.feedforward_size, max_size);
  check_size(model, "max_positions", o.max_positions, max_size);
  check_dropout(model, o.dropout);
  if (o.model_size % o.heads != 0) {
    throw std::invalid_argument(xgrad::detail::message(model, ": heads ", o.heads, " does not divide model_size ", o.model_size));
  }
  if (!(o.layer_norm_eps > 0 && std::isfinite(o.layer_norm_eps))) {
    throw std::invalid_argument(xgrad::detail::message(model, ": layer_norm_eps ", o.layer_norm_eps, " must be positive"));
  }
}

// A stack of `layers` layers of the options' shape, ending with a LayerNorm.
template <class Options>
nn::TransformerStackOptions stack_options(const Options& o, std::size_t layers) {
  return {.layer = {.d_model = o.model_size,
                    .nhead = o.heads,
                    .dim_feedforward = o.feedforward_size,
                    .dropout = o.dropout,
                    .activation = o.activation,
                    .layer_norm_eps = o.layer_norm_eps,
                    .norm_first = o.norm_first},
          .num_layers = layers,
          .final_norm = true};
}

// Parameters of one attention block, one feed-forward block and one LayerNorm of that shape.
struct TransformerBlockParameters {
  double attention, feedforward, norm;
};
inline TransformerBlockParameters transformer_block_parameters(std::size_t model_size, std::size_t feedforward_size) {
  const double d = double(model_size), ff = double(feedforward_size);
  return {.attention = 4 * d * d + 4 * d, .feedforward = 2 * d * ff + ff + d, .norm = 2 * d};
}

// Parameters of an encoder stack of `layers` layers with its final norm.
inline double encoder_stack_parameters(std::size_t model_size, std::size_t feedforward_size, std::size_t layers) {
  const auto [attention, feedforward, norm] = transformer_block_parameters(model_size, feedforward_size);
  return double(layers) * (attention + feedforward + 2 * norm) + norm;
}

}  // namespace xgrad::models::config

namespace xgrad::models {

// Found by nlohmann through argument-dependent lookup.
inline void to_json(nlohmann::json& json, PositionKind positions) { json = to_string(positions); }
inline void from_json(const nlohmann::json& json, PositionKind& positions) {
  positions = position_kind_from_string(json.get<std::string>());
}

}  // namespace xgrad::models

namespace xgrad::nn {

// Found by nlohmann through argument-dependent lookup (the activation lives in nn).
inline void to_json(nlohmann::json& json, TransformerActivation activation) { json = models::to_string(activation); }
inline void from_json(const nlohmann::json& json, TransformerActivation& activation) {
  activation = models::transformer_activation_from_string(json.get<std::string>());
}

}  // namespace xgrad::nn
