#include "xgrad/models/classifier.h"

#include <cmath>

#include "configuration.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/indexing.h"
#include "xgrad/framework/init.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/loss.h"

namespace xgrad::models {
namespace {

const config::KindNames<PoolingKind> pooling_names{{PoolingKind::additive, "additive"},
                                                   {PoolingKind::multihead, "multihead"}};

std::size_t encoder_output_size(const ClassifierOptions& o) { return o.hidden_size * (o.bidirectional ? 2 : 1); }

}  // namespace

double estimated_parameters(const ClassifierOptions& o) {
  const double gates = double(nn::gate_count(o.cell)), directions = o.bidirectional ? 2 : 1;
  const double e = double(o.embedding_size), h = double(o.hidden_size), states = double(encoder_output_size(o));
  return double(o.vocabulary) * e + directions * gates * h * (e + h + 2) +
         directions * (double(o.layers) - 1) * gates * h * (states + h + 2) +
         4 * states * (states + double(o.attention_size)) + (states + 1) * double(o.classes);
}

namespace {

void validate(const ClassifierOptions& o) {
  const char* model = "SequenceClassifier";
  config::check_size(model, "vocabulary", o.vocabulary, config::max_vocabulary);
  config::check_size(model, "classes", o.classes, config::max_vocabulary);
  config::check_size(model, "embedding_size", o.embedding_size, config::max_size);
  config::check_size(model, "hidden_size", o.hidden_size, config::max_size);
  config::check_size(model, "layers", o.layers, 64);
  config::check_size(model, "attention_size", o.attention_size, config::max_size);
  config::check_size(model, "attention_heads", o.attention_heads, config::max_size);
  config::check_dropout(model, o.dropout);
  if (o.pad_id < 0 || static_cast<std::size_t>(o.pad_id) >= o.vocabulary) {
    throw std::invalid_argument(detail::message("SequenceClassifier: pad_id ", o.pad_id, " is outside the vocabulary"));
  }
  if (o.pooling == PoolingKind::multihead && encoder_output_size(o) % o.attention_heads != 0) {
    throw std::invalid_argument(detail::message("SequenceClassifier: ", o.attention_heads,
                                                " attention heads do not divide the encoder output size ",
                                                encoder_output_size(o)));
  }
  config::check_parameter_count(model, estimated_parameters(o));
}

std::size_t query_size(const ClassifierOptions& o) {
  return o.pooling == PoolingKind::additive ? o.attention_size : encoder_output_size(o);
}

}  // namespace

std::string to_string(PoolingKind pooling) { return config::name_of(pooling, pooling_names); }
PoolingKind pooling_kind_from_string(const std::string& name) { return config::kind_named("pooling", name, pooling_names); }

void to_json(nlohmann::json& json, PoolingKind pooling) { json = to_string(pooling); }
void from_json(const nlohmann::json& json, PoolingKind& pooling) { pooling = pooling_kind_from_string(json.get<std::string>()); }

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ClassifierOptions, vocabulary, classes, embedding_size, hidden_size, layers,
                                   bidirectional, cell, pooling, attention_size, attention_heads, dropout, pad_id)

std::string to_json(const ClassifierOptions& options) { return config::write(options); }

ClassifierOptions classifier_options_from_json(const std::string& text) {
  const ClassifierOptions options = config::read<ClassifierOptions>(text);
  validate(options);
  return options;
}

template <class T>
SequenceClassifier<T>::SequenceClassifier(const ClassifierOptions& options)
    : options_((validate(options), options)),
      embedding_({.num_embeddings = options.vocabulary, .embedding_dim = options.embedding_size, .padding_idx = options.pad_id}),
      dropout_(options.dropout),
      output_({.in_features = encoder_output_size(options), .out_features = options.classes}) {
  const std::size_t q = query_size(options);
  query = this->register_parameter("query", Tensor<T>::zeros({1, 1, q}));
  init::uniform(query, -1.0 / std::sqrt(double(q)), 1.0 / std::sqrt(double(q)));
  this->register_module("embedding", embedding_);
  this->register_module("dropout", dropout_);
  const nn::RnnOptions encoder{.input_size = options.embedding_size,
                               .hidden_size = options.hidden_size,
                               .num_layers = options.layers,
                               .bidirectional = options.bidirectional,
                               .dropout = options.layers > 1 ? options.dropout : 0.0};
  encoder_ = nn::make_recurrent_layer<T>(options.cell, encoder);
  this->register_module("encoder", *encoder_);
  const std::size_t states = encoder_output_size(options);
  if (options.pooling == PoolingKind::additive) {
    pooling_ = std::make_unique<nn::AdditiveAttention<T>>(
        nn::AdditiveAttentionOptions{.query_size = q, .key_size = states, .attention_size = options.attention_size});
  } else {
    pooling_ = std::make_unique<nn::MultiheadAttention<T>>(
        nn::MultiheadAttentionOptions{.embed_dim = states, .num_heads = options.attention_heads});
  }
  this->register_module("pooling", *pooling_);
  this->register_module("output", output_);
}

template <class T>
Classification<T> SequenceClassifier<T>::forward(const PaddedBatch& batch) const {
  const Shape& shape = batch.ids.shape();
  if (shape.size() != 2 || batch.lengths.size() != shape[0]) {
    throw shape_error(detail::message("SequenceClassifier: tokens of shape ", shape, " with ", batch.lengths.size(),
                                      " lengths; expected tokens [B, T] and B lengths"));
  }
  for (std::size_t b = 0; b < shape[0]; ++b) {
    if (batch.lengths[b] == 0 || batch.lengths[b] > shape[1]) {
      throw shape_error(detail::message("SequenceClassifier: length ", batch.lengths[b], " of sequence ", b,
                                        " is outside [1, ", shape[1], "]"));
    }
  }
  const Tensor<T> embedded = dropout_(embedding_(batch.ids));
  const Tensor<T> states = encoder_->run(embedded, batch.lengths).output;
  // The same learned query for every sequence of the batch.
  const Tensor<T> queries = index_select(query, 0, Indices(Shape{shape[0]}, 0));
  const nn::AttentionOutput<T> pooled = pooling_->forward(queries, states, states, {.key_padding = padding_mask(batch.lengths, shape[1])});
  return {output_(dropout_(squeeze(pooled.context, 1))), squeeze(pooled.weights, 1)};
}

template <class T>
Tensor<T> SequenceClassifier<T>::loss(const PaddedBatch& batch, const Indices& labels, double label_smoothing) const {
  return cross_entropy(forward(batch).logits, labels, {.label_smoothing = label_smoothing});
}

template class SequenceClassifier<float>;
template class SequenceClassifier<double>;

}  // namespace xgrad::models
