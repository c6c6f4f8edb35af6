#include "xgrad/models/classifier.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "configuration.h"
#include "classifier_pooling.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/indexing.h"
#include "xgrad/framework/init.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/loss.h"
#include "xgrad/framework/matmul.h"

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

void check_classification_batch(const char* model, const PaddedBatch& batch) {
  const Shape& shape = batch.ids.shape();
  if (shape.size() != 2 || batch.lengths.size() != shape[0]) {
    throw shape_error(detail::message(model, ": tokens of shape ", shape, " with ", batch.lengths.size(),
                                      " lengths; expected tokens [B, T] and B lengths"));
  }
  for (std::size_t b = 0; b < shape[0]; ++b) {
    if (batch.lengths[b] == 0 || batch.lengths[b] > shape[1]) {
      throw shape_error(detail::message(model, ": length ", batch.lengths[b], " of sequence ", b, " is outside [1, ",
                                        shape[1], "]"));
    }
  }
}

template <class T>
Tensor<T> initial_pooling_query(std::size_t size) {
  Tensor<T> query = Tensor<T>::zeros({1, 1, size});
  init::uniform(query, -1.0 / std::sqrt(double(size)), 1.0 / std::sqrt(double(size)));
  return query;
}

template <class T>
Pooled<T> attention_pool(const Tensor<T>& query, const nn::Attention<T>& attention, const Tensor<T>& states,
                         const std::vector<std::size_t>& lengths) {
  const Indices every_text(Shape{lengths.size()}, 0);
  const nn::AttentionOutput<T> pooled = attention.forward(index_select(query, 0, every_text), states, states,
                                                          {.key_padding = padding_mask(lengths, states.shape()[1])});
  return {squeeze(pooled.context, 1), squeeze(pooled.weights, 1)};
}

template <class T>
Pooled<T> mean_pool(const Tensor<T>& states, const std::vector<std::size_t>& lengths) {
  const std::size_t texts = lengths.size(), positions = states.shape()[1];
  Array<T> weights = Array<T>::from_shape({texts, 1, positions});
  weights.fill(T(0));
  for (std::size_t b = 0; b < texts; ++b) {
    std::fill_n(weights.data() + b * positions, lengths[b], T(1) / T(lengths[b]));
  }
  const Tensor<T> shares(std::move(weights));
  // [B, 1, T] x [B, T, D] -> [B, 1, D]: the weighted sum of each text's states.
  return {squeeze(matmul(shares, states), 1), squeeze(shares, 1)};
}

template <class T>
Tensor<T> Classifier<T>::loss(const PaddedBatch& batch, const Indices& labels, double label_smoothing) const {
  return cross_entropy(forward(batch).logits, labels, {.label_smoothing = label_smoothing});
}

template <class T>
SequenceClassifier<T>::SequenceClassifier(const ClassifierOptions& options)
    : options_((validate(options), options)),
      embedding_({.num_embeddings = options.vocabulary, .embedding_dim = options.embedding_size, .padding_idx = options.pad_id}),
      dropout_(options.dropout),
      output_({.in_features = encoder_output_size(options), .out_features = options.classes}) {
  const std::size_t q = query_size(options);
  query = this->register_parameter("query", initial_pooling_query<T>(q));
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
std::size_t SequenceClassifier<T>::max_length() const {
  return std::numeric_limits<std::size_t>::max();
}

template <class T>
Classification<T> SequenceClassifier<T>::forward(const PaddedBatch& batch) const {
  check_classification_batch("SequenceClassifier", batch);
  const Tensor<T> embedded = dropout_(embedding_(batch.ids));
  const Tensor<T> states = encoder_->run(embedded, batch.lengths).output;
  const Pooled<T> pooled = attention_pool(query, *pooling_, states, batch.lengths);
  return {output_(dropout_(pooled.summary)), pooled.weights};
}

template class Classifier<float>;
template class Classifier<double>;
template class SequenceClassifier<float>;
template class SequenceClassifier<double>;
template Tensor<float> initial_pooling_query(std::size_t);
template Tensor<double> initial_pooling_query(std::size_t);
template Pooled<float> attention_pool(const Tensor<float>&, const nn::Attention<float>&, const Tensor<float>&,
                                      const std::vector<std::size_t>&);
template Pooled<double> attention_pool(const Tensor<double>&, const nn::Attention<double>&, const Tensor<double>&,
                                       const std::vector<std::size_t>&);
template Pooled<float> mean_pool(const Tensor<float>&, const std::vector<std::size_t>&);
template Pooled<double> mean_pool(const Tensor<double>&, const std::vector<std::size_t>&);

}  // namespace xgrad::models
