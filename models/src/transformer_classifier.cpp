#include "xgrad/models/transformer_classifier.h"

#include "classifier_pooling.h"
#include "transformer_parts.h"
#include "xgrad/framework/errors.h"

namespace xgrad::models {
namespace {

constexpr const char* model_name = "TransformerClassifier";

const config::KindNames<TransformerPooling> pooling_names{{TransformerPooling::attention, "attention"},
                                                          {TransformerPooling::mean, "mean"}};

}  // namespace

std::string to_string(TransformerPooling pooling) { return config::name_of(pooling, pooling_names); }
TransformerPooling transformer_pooling_from_string(const std::string& name) {
  return config::kind_named("pooling", name, pooling_names);
}

void to_json(nlohmann::json& json, TransformerPooling pooling) { json = to_string(pooling); }
void from_json(const nlohmann::json& json, TransformerPooling& pooling) {
  pooling = transformer_pooling_from_string(json.get<std::string>());
}

double estimated_parameters(const TransformerClassifierOptions& o) {
  const double d = double(o.model_size);
  const double embeddings = double(o.vocabulary) * d;
  const double positions = o.positions == PositionKind::learned ? double(o.max_positions) * d : 0.0;
  const double encoder = config::encoder_stack_parameters(o.model_size, o.feedforward_size, o.encoder_layers);
  const double pooling =
      o.pooling == TransformerPooling::attention ? d + config::transformer_block_parameters(o.model_size, 1).attention : 0.0;
  return embeddings + positions + encoder + pooling + (d + 1) * double(o.classes);
}

namespace {

void validate(const TransformerClassifierOptions& o) {
  config::check_size(model_name, "vocabulary", o.vocabulary, config::max_vocabulary);
  config::check_size(model_name, "classes", o.classes, config::max_vocabulary);
  config::check_transformer_shape(model_name, o);
  config::check_size(model_name, "encoder_layers", o.encoder_layers, 64);
  if (o.pad_id < 0 || static_cast<std::size_t>(o.pad_id) >= o.vocabulary) {
    throw std::invalid_argument(detail::message(model_name, ": pad_id ", o.pad_id, " is outside the vocabulary"));
  }
  config::check_parameter_count(model_name, estimated_parameters(o));
}

}  // namespace

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TransformerClassifierOptions, vocabulary, classes, model_size, heads, feedforward_size,
                                   encoder_layers, dropout, activation, norm_first, layer_norm_eps, positions,
                                   max_positions, pooling, pad_id)

std::string to_json(const TransformerClassifierOptions& options) { return config::write(options); }

TransformerClassifierOptions transformer_classifier_options_from_json(const std::string& text) {
  const TransformerClassifierOptions options = config::read<TransformerClassifierOptions>(text);
  validate(options);
  return options;
}

template <class T>
TransformerClassifier<T>::TransformerClassifier(const TransformerClassifierOptions& options)
    : options_((validate(options), options)),
      embedding_({.num_embeddings = options.vocabulary, .embedding_dim = options.model_size, .padding_idx = options.pad_id}),
      dropout_(options.dropout),
      encoder_(config::stack_options(options, options.encoder_layers)),
      output_({.in_features = options.model_size, .out_features = options.classes}) {
  this->register_module("embedding", scaled_for_the_model(embedding_));
  const nn::PositionalEncodingOptions positions{.d_model = options.model_size, .max_len = options.max_positions};
  if (options.positions == PositionKind::learned) {
    positions_ = std::make_unique<nn::LearnedPositionalEncoding<T>>(positions);
    this->register_module("positions", *positions_);
  } else {
    sinusoidal_ = std::make_unique<nn::SinusoidalPositionalEncoding<T>>(positions);
  }
  this->register_module("dropout", dropout_);
  this->register_module("encoder", encoder_);
  if (options.pooling == TransformerPooling::attention) {
    query = this->register_parameter("query", initial_pooling_query<T>(options.model_size));
    pooling_ = std::make_unique<nn::MultiheadAttention<T>>(
        nn::MultiheadAttentionOptions{.embed_dim = options.model_size, .num_heads = options.heads});
    this->register_module("pooling", *pooling_);
  }
  this->register_module("output", output_);
}

template <class T>
Classification<T> TransformerClassifier<T>::forward(const PaddedBatch& batch) const {
  check_classification_batch(model_name, batch);
  const std::size_t length = batch.ids.shape()[1];
  if (length > options_.max_positions) {
    throw shape_error(detail::message(model_name, ": a batch of ", length, " positions; the model reads at most ",
                                      options_.max_positions, " (max_positions)"));
  }
  const Tensor<T> x = transformer_input(embedding_, batch.ids, 0, sinusoidal_.get(), positions_.get());
  const Tensor<T> states = encoder_(dropout_(x), {.key_padding = padding_mask(batch.lengths, length)});
  const Pooled<T> pooled =
      pooling_ ? attention_pool(query, *pooling_, states, batch.lengths) : mean_pool(states, batch.lengths);
  return {output_(dropout_(pooled.summary)), pooled.weights};
}

template class TransformerClassifier<float>;
template class TransformerClassifier<double>;

}  // namespace xgrad::models
