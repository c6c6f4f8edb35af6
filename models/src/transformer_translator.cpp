#include "xgrad/models/transformer_translator.h"

#include <cmath>
#include <limits>

#include "transformer_parts.h"
#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/indexing.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/loss.h"
#include "xgrad/framework/matmul.h"
#include "xgrad/framework/softmax.h"

namespace xgrad::models {
namespace {

constexpr const char* model_name = "TransformerTranslator";

void validate(const TransformerTranslatorOptions& o) {
  config::check_size(model_name, "source_vocabulary", o.source_vocabulary, config::max_vocabulary);
  config::check_size(model_name, "target_vocabulary", o.target_vocabulary, config::max_vocabulary);
  config::check_transformer_shape(model_name, o);
  config::check_size(model_name, "encoder_layers", o.encoder_layers, 64);
  config::check_size(model_name, "decoder_layers", o.decoder_layers, 64);
  if (o.share_embeddings && o.source_vocabulary != o.target_vocabulary) {
    throw std::invalid_argument(detail::message(model_name, ": share_embeddings needs one joint vocabulary, but the source has ",
                                                o.source_vocabulary, " entries and the target ", o.target_vocabulary));
  }
  for (auto [name, id] : {std::pair{"pad_id", o.pad_id}, {"sos_id", o.sos_id}, {"eos_id", o.eos_id}}) {
    if (id < 0 || static_cast<std::size_t>(id) >= std::min(o.source_vocabulary, o.target_vocabulary)) {
      throw std::invalid_argument(detail::message(model_name, ": ", name, " ", id, " is outside the vocabularies"));
    }
  }
  config::check_parameter_count(model_name, estimated_parameters(o));
}

Indices column(const Indices& ids) {
  Indices column = ids;
  column.reshape({ids.size(), 1});
  return column;
}

}  // namespace

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TransformerTranslatorOptions, source_vocabulary, target_vocabulary, model_size, heads,
                                   feedforward_size, encoder_layers, decoder_layers, dropout, activation, norm_first,
                                   layer_norm_eps, positions, max_positions, share_embeddings, tie_output, pad_id, sos_id,
                                   eos_id)

std::string to_json(const TransformerTranslatorOptions& options) { return config::write(options); }

TransformerTranslatorOptions transformer_translator_options_from_json(const std::string& text) {
  const TransformerTranslatorOptions options = config::read<TransformerTranslatorOptions>(text);
  validate(options);
  return options;
}

double estimated_parameters(const TransformerTranslatorOptions& o) {
  const double d = double(o.model_size), target = double(o.target_vocabulary);
  const auto [attention, feedforward, norm] = config::transformer_block_parameters(o.model_size, o.feedforward_size);
  const double embeddings = (o.share_embeddings ? 0.0 : double(o.source_vocabulary)) * d + target * d;
  const double positions = o.positions == PositionKind::learned ? 2 * double(o.max_positions) * d : 0.0;
  const double encoder = config::encoder_stack_parameters(o.model_size, o.feedforward_size, o.encoder_layers);
  const double decoder = double(o.decoder_layers) * (2 * attention + feedforward + 3 * norm) + norm;
  const double output = (o.tie_output ? 0.0 : target * d) + target;
  return embeddings + positions + encoder + decoder + output;
}

template <class T>
TransformerTranslator<T>::TransformerTranslator(const TransformerTranslatorOptions& options)
    : options_((validate(options), options)),
      reported_layer_(options.decoder_layers - 1),
      target_embedding_(
          {.num_embeddings = options.target_vocabulary, .embedding_dim = options.model_size, .padding_idx = options.pad_id}),
      dropout_(options.dropout),
      encoder_(config::stack_options(options, options.encoder_layers)),
      decoder_(config::stack_options(options, options.decoder_layers)) {
  if (!options.share_embeddings) {
    source_embedding_.emplace(nn::EmbeddingOptions{
        .num_embeddings = options.source_vocabulary, .embedding_dim = options.model_size, .padding_idx = options.pad_id});
    this->register_module("source_embedding", scaled_for_the_model(*source_embedding_));
  }
  this->register_module("target_embedding", scaled_for_the_model(target_embedding_));
  const nn::PositionalEncodingOptions positions{.d_model = options.model_size, .max_len = options.max_positions};
  if (options.positions == PositionKind::learned) {
    source_positions_ = std::make_unique<nn::LearnedPositionalEncoding<T>>(positions);
    target_positions_ = std::make_unique<nn::LearnedPositionalEncoding<T>>(positions);
    this->register_module("source_positions", *source_positions_);
    this->register_module("target_positions", *target_positions_);
  } else {
    sinusoidal_ = std::make_unique<nn::SinusoidalPositionalEncoding<T>>(positions);
  }
  this->register_module("dropout", dropout_);
  this->register_module("encoder", encoder_);
  this->register_module("decoder", decoder_);
  if (options.tie_output) {
    output_bias_ = this->register_parameter("output_bias", Tensor<T>::zeros({options.target_vocabulary}));
  } else {
    output_.emplace(nn::LinearOptions{.in_features = options.model_size, .out_features = options.target_vocabulary});
    this->register_module("output", *output_);
  }
}

template <class T>
void TransformerTranslator<T>::report_attention(const ReportedAttention& reported) {
  const std::size_t layer = reported.layer.value_or(options_.decoder_layers - 1);
  if (layer >= options_.decoder_layers) {
    throw std::invalid_argument(detail::message(model_name, ": attention of layer ", layer, " asked for; the decoder has ",
                                                options_.decoder_layers, " layers (0 to ", options_.decoder_layers - 1, ")"));
  }
  if (reported.head && *reported.head >= options_.heads) {
    throw std::invalid_argument(detail::message(model_name, ": attention of head ", *reported.head, " asked for; the layers have ",
                                                options_.heads, " heads (0 to ", options_.heads - 1, ")"));
  }
  reported_layer_ = layer;
  reported_head_ = reported.head;
}

template <class T>
typename TransformerTranslator<T>::Encoded TransformerTranslator<T>::encode(const PaddedBatch& source) const {
  check_source_batch(model_name, source);
  const std::size_t length = source.ids.shape()[1];
  if (length > options_.max_positions) {
    throw shape_error(detail::message(model_name, ": a source batch of ", length, " positions; the model reads at most ",
                                      options_.max_positions, " (max_positions)"));
  }
  const nn::Embedding<T>& embedding = source_embedding_ ? *source_embedding_ : target_embedding_;
  const Tensor<T> x = transformer_input(embedding, source.ids, 0, sinusoidal_.get(), source_positions_.get());
  Mask padding = padding_mask(source.lengths, length);
  Tensor<T> memory = encoder_(dropout_(x), {.key_padding = padding});
  return {std::move(memory), std::move(padding)};
}

template <class T>
Tensor<T> TransformerTranslator<T>::embed_target(const Indices& ids, std::size_t offset) const {
  return dropout_(transformer_input(target_embedding_, ids, offset, sinusoidal_.get(), target_positions_.get()));
}

template <class T>
Tensor<T> TransformerTranslator<T>::project(const Tensor<T>& features) const {
  return output_ ? (*output_)(features) : linear(features, target_embedding_.weight, output_bias_);
}

template <class T>
Tensor<T> TransformerTranslator<T>::decode(const Encoded& encoded, const Indices& target_inputs) const {
  const std::size_t steps = target_inputs.shape()[1];
  if (steps > options_.max_positions) {
    throw shape_error(detail::message(model_name, ": a target batch of ", steps, " positions; the model writes at most ",
                                      options_.max_positions, " (max_positions)"));
  }
  // Target padding needs no mask: it sits after every real token, which the causal mask
  // already keeps from seeing it, and the loss ignores the padded positions themselves.
  return decoder_(embed_target(target_inputs, 0), encoded.memory, {.causal = true}, {.key_padding = encoded.padding});
}

template <class T>
Tensor<T> TransformerTranslator<T>::forward(const PaddedBatch& source, const Indices& target_inputs) const {
  const Encoded encoded = encode(source);
  if (target_inputs.dimension() != 2 || target_inputs.shape()[0] != source.ids.shape()[0]) {
    throw shape_error(detail::message(model_name, ": target inputs of shape ", target_inputs.shape(),
                                      " for a source batch of shape ", source.ids.shape(), "; expected [B, T]"));
  }
  return project(decode(encoded, target_inputs));
}

template <class T>
Tensor<T> TransformerTranslator<T>::loss(const PaddedBatch& source, const TargetBatch& target,
                                         const TranslationLossOptions& options) const {
  if (options.teacher_forcing < 1.0) {
    throw std::invalid_argument(detail::message(model_name, ": teacher_forcing ", options.teacher_forcing,
                                                " asked for; the decoder reads the whole reference at once (1 only)"));
  }
  check_source_batch(model_name, source);
  check_target_batch(model_name, source, target);
  const Tensor<T> decoded = decode(encode(source), target.inputs);
  const auto [rows, tokens] = real_target_positions(target.outputs, options_.pad_id);
  const Tensor<T> features =
      index_select(reshape(decoded, {-1, static_cast<std::int64_t>(options_.model_size)}), 0, rows);
  return cross_entropy(project(features), tokens,
                       {.ignore_index = options_.pad_id, .label_smoothing = options.label_smoothing});
}

// The model as the searches see it: the state is the decoder's cache (the memory and its
// padding, prepared once, and every layer's keys and values so far), a row per hypothesis.
template <class T>
class TransformerTranslator<T>::SearchDecoder final : public StepDecoder<T> {
 public:
  using State = typename StepDecoder<T>::State;

  explicit SearchDecoder(const TransformerTranslator& model) : model_(model) {}

  std::int64_t sos_id() const override { return model_.options_.sos_id; }
  std::int64_t eos_id() const override { return model_.options_.eos_id; }
  std::size_t vocabulary_size() const override { return model_.options_.target_vocabulary; }

  std::unique_ptr<State> begin(const PaddedBatch& source, std::size_t copies) const override {
    Encoded encoded = model_.encode(source);
    const std::size_t sentences = source.lengths.size();
    if (copies > 1) {
      encoded.memory = repeat_sentence_rows(encoded.memory, sentences, copies);
      encoded.padding = repeat_sentence_rows(encoded.padding, copies);
    }
    auto state = std::make_unique<SearchState>();
    state->cache = model_.decoder_.begin(encoded.memory, encoded.padding);
    state->source_length = source.ids.shape()[1];
    return state;
  }

  // A hypothesis that reaches max_positions can only end: the model has no position past it.
  DecoderStep<T> step(const Indices& previous, State& state, std::size_t position) const override {
    auto& [cache, source_length] = static_cast<SearchState&>(state);
    if (position >= model_.options_.max_positions) return only_the_end(previous.size(), source_length);
    const std::optional<std::size_t>& head = model_.reported_head_;
    const nn::TransformerDecoderStep<T> decoded = model_.decoder_.step(
        cache, model_.embed_target(column(previous), position), {.average_attn_weights = !head.has_value()});
    const auto width = static_cast<std::int64_t>(model_.options_.model_size);
    const Tensor<T> logits = model_.project(reshape(decoded.output, {-1, width}));
    const Tensor<T>& attention = decoded.cross_attention[model_.reported_layer_];  // [B, 1, S] or [B, H, 1, S]
    return {log_softmax(logits, -1), squeeze(head ? xgrad::select(attention, 1, static_cast<std::int64_t>(*head)) : attention, 1)};
  }

  // Only the target side: rows stay within their sentence, whose memory they share.
  void select(State& state, const Indices& rows) const override {
    static_cast<SearchState&>(state).cache.select_target(rows);
  }

 private:
  struct SearchState final : State {
    nn::TransformerDecoderCache<T> cache;
    std::size_t source_length = 0;
  };

  DecoderStep<T> only_the_end(std::size_t rows, std::size_t source_length) const {
    const std::size_t vocabulary = model_.options_.target_vocabulary;
    Array<T> log_probs = Array<T>::from_shape({rows, vocabulary});
    log_probs.fill(-std::numeric_limits<T>::infinity());
    for (std::size_t r = 0; r < rows; ++r) log_probs(r, static_cast<std::size_t>(model_.options_.eos_id)) = T(0);
    return {Tensor<T>(std::move(log_probs)), Tensor<T>::zeros({rows, source_length})};
  }

  const TransformerTranslator& model_;
};

template <class T>
std::unique_ptr<StepDecoder<T>> TransformerTranslator<T>::step_decoder() const {
  return std::make_unique<SearchDecoder>(*this);
}

template class TransformerTranslator<float>;
template class TransformerTranslator<double>;

}  // namespace xgrad::models
