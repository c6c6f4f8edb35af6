#include "xgrad/models/seq2seq.h"

#include <algorithm>

#include "configuration.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/indexing.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/loss.h"
#include "xgrad/framework/reduce.h"
#include "xgrad/framework/softmax.h"

namespace xgrad::models {
namespace {

const config::KindNames<AttentionKind> attention_names{
    {AttentionKind::additive, "additive"},       {AttentionKind::dot, "dot"},
    {AttentionKind::scaled_dot, "scaled-dot"},   {AttentionKind::general, "general"},
    {AttentionKind::multihead, "multihead"},     {AttentionKind::local_monotonic, "local-m"},
    {AttentionKind::local_predictive, "local-p"}};

void validate(const Seq2SeqOptions& o) {
  const char* model = "Seq2Seq";
  config::check_size(model, "source_vocabulary", o.source_vocabulary, config::max_vocabulary);
  config::check_size(model, "target_vocabulary", o.target_vocabulary, config::max_vocabulary);
  config::check_size(model, "embedding_size", o.embedding_size, config::max_size);
  config::check_size(model, "encoder_hidden", o.encoder_hidden, config::max_size);
  config::check_size(model, "decoder_hidden", o.decoder_hidden, config::max_size);
  config::check_size(model, "encoder_layers", o.encoder_layers, 64);
  config::check_size(model, "attention_heads", o.attention_heads, config::max_size);
  if (o.local_window > config::max_size) {
    throw std::invalid_argument(detail::message("Seq2Seq: local_window ", o.local_window, " exceeds ", config::max_size));
  }
  config::check_dropout(model, o.dropout);
  for (auto [name, id] : {std::pair{"pad_id", o.pad_id}, {"sos_id", o.sos_id}, {"eos_id", o.eos_id}}) {
    if (id < 0 || static_cast<std::size_t>(id) >= std::min(o.source_vocabulary, o.target_vocabulary)) {
      throw std::invalid_argument(detail::message("Seq2Seq: ", name, " ", id, " is outside the vocabularies"));
    }
  }
  config::check_parameter_count(model, estimated_parameters(o));
}

}  // namespace

double estimated_parameters(const Seq2SeqOptions& o) {
  // Weights per layer and direction of a recurrence: gates x H x (input + H + 2 biases).
  const double gates = double(nn::gate_count(o.cell)), e = double(o.embedding_size), h = double(o.encoder_hidden),
               d = double(o.decoder_hidden), memory = 2 * h;
  return (double(o.source_vocabulary) + double(o.target_vocabulary)) * e + 2 * gates * h * (e + h + 2) +
         2 * (double(o.encoder_layers) - 1) * gates * h * (memory + h + 2) + memory * d +
         gates * d * (e + memory + 2 * d + 2) + 4 * d * (d + memory) + (d + memory + e + 1) * double(o.target_vocabulary);
}

namespace {

template <class T>
std::unique_ptr<nn::Attention<T>> make_attention(const Seq2SeqOptions& o) {
  const std::size_t query = o.decoder_hidden, key = 2 * o.encoder_hidden;
  auto require_equal_sizes = [&] {
    if (query != key) {
      throw std::invalid_argument(detail::message("Seq2Seq: ", to_string(o.attention), " attention needs decoder_hidden (",
                                                  query, ") equal to 2 x encoder_hidden (", key, ")"));
    }
  };
  switch (o.attention) {
    case AttentionKind::additive:
      return std::make_unique<nn::AdditiveAttention<T>>(
          nn::AdditiveAttentionOptions{.query_size = query, .key_size = key, .attention_size = query});
    case AttentionKind::dot:
      require_equal_sizes();
      return std::make_unique<nn::DotAttention<T>>();
    case AttentionKind::scaled_dot:
      require_equal_sizes();
      return std::make_unique<nn::ScaledDotAttention<T>>();
    case AttentionKind::general:
      return std::make_unique<nn::GeneralAttention<T>>(nn::GeneralAttentionOptions{.query_size = query, .key_size = key});
    case AttentionKind::multihead:
      require_equal_sizes();
      return std::make_unique<nn::MultiheadAttention<T>>(
          nn::MultiheadAttentionOptions{.embed_dim = query, .num_heads = o.attention_heads});
    case AttentionKind::local_monotonic:
    case AttentionKind::local_predictive:
      return std::make_unique<nn::LocalAttention<T>>(nn::LocalAttentionOptions{
          .query_size = query,
          .key_size = key,
          .window = o.local_window,
          .alignment = o.attention == AttentionKind::local_monotonic ? nn::LocalAlignment::monotonic
                                                                     : nn::LocalAlignment::predictive});
  }
  throw std::invalid_argument("Seq2Seq: unknown attention kind");
}

}  // namespace

std::string to_string(AttentionKind attention) { return config::name_of(attention, attention_names); }
AttentionKind attention_kind_from_string(const std::string& name) {
  return config::kind_named("attention", name, attention_names);
}

void to_json(nlohmann::json& json, AttentionKind attention) { json = to_string(attention); }
void from_json(const nlohmann::json& json, AttentionKind& attention) {
  attention = attention_kind_from_string(json.get<std::string>());
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Seq2SeqOptions, source_vocabulary, target_vocabulary, embedding_size, encoder_hidden,
                                   decoder_hidden, encoder_layers, cell, attention, input_feeding, attention_heads,
                                   local_window, dropout, pad_id, sos_id, eos_id)

std::string to_json(const Seq2SeqOptions& options) { return config::write(options); }

Seq2SeqOptions seq2seq_options_from_json(const std::string& text) {
  const Seq2SeqOptions options = config::read<Seq2SeqOptions>(text);
  validate(options);
  return options;
}

// ---------------------------------------------------------------------------------------

template <class T>
struct Seq2Seq<T>::Encoded {
  nn::AttentionMemory<T> memory;  // encoder outputs [B, S, 2H] as keys and values
  Mask padding;                   // [B, S], true past each sentence's end
  Tensor<T> summary;              // [B, 2H]: the last layer's final forward and backward states
};

template <class T>
struct Seq2Seq<T>::DecoderState {
  nn::RecurrentState<T> recurrent;  // the decoder cell's: h [B, decoder_hidden], and c for the LSTM
  Tensor<T> attentional;            // input feeding only: the previous attentional vector
};

template <class T>
Seq2Seq<T>::Seq2Seq(const Seq2SeqOptions& options)
    : options_((validate(options), options)),
      source_embedding_(
          {.num_embeddings = options.source_vocabulary, .embedding_dim = options.embedding_size, .padding_idx = options.pad_id}),
      target_embedding_(
          {.num_embeddings = options.target_vocabulary, .embedding_dim = options.embedding_size, .padding_idx = options.pad_id}),
      dropout_(options.dropout),
      bridge_({.in_features = 2 * options.encoder_hidden, .out_features = options.decoder_hidden}),
      output_({.in_features = options.decoder_hidden + 2 * options.encoder_hidden + options.embedding_size,
               .out_features = options.target_vocabulary}) {
  this->register_module("source_embedding", source_embedding_);
  this->register_module("target_embedding", target_embedding_);
  this->register_module("dropout", dropout_);
  const nn::RnnOptions encoder{.input_size = options.embedding_size,
                               .hidden_size = options.encoder_hidden,
                               .num_layers = options.encoder_layers,
                               .bidirectional = true,
                               .dropout = options.encoder_layers > 1 ? options.dropout : 0.0};
  encoder_ = nn::make_recurrent_layer<T>(options.cell, encoder);
  this->register_module("encoder", *encoder_);
  this->register_module("bridge", bridge_);
  const std::size_t memory_size = 2 * options.encoder_hidden;
  const nn::RnnCellOptions cell{
      .input_size = options.embedding_size + (options.input_feeding ? options.decoder_hidden : memory_size),
      .hidden_size = options.decoder_hidden};
  decoder_ = nn::make_recurrent_cell<T>(options.cell, cell);
  this->register_module("decoder", *decoder_);
  attention_ = make_attention<T>(options);
  this->register_module("attention", *attention_);
  if (options.input_feeding) {
    attentional_ = std::make_unique<nn::Linear<T>>(
        nn::LinearOptions{.in_features = memory_size + options.decoder_hidden, .out_features = options.decoder_hidden});
    this->register_module("attentional", *attentional_);
  }
  this->register_module("output", output_);
}

template <class T>
typename Seq2Seq<T>::Encoded Seq2Seq<T>::encode(const PaddedBatch& source) const {
  check_source_batch("Seq2Seq", source);
  const Tensor<T> embedded = dropout_(source_embedding_(source.ids));
  const nn::RnnOutput<T> encoded = encoder_->run(embedded, source.lengths);
  const auto last_forward = static_cast<std::int64_t>(2 * options_.encoder_layers - 2);
  Tensor<T> summary = concat<T>({select(encoded.h_n, 0, last_forward), select(encoded.h_n, 0, last_forward + 1)}, 1);
  return {attention_->prepare(encoded.output, encoded.output), padding_mask(source.lengths, source.ids.shape()[1]),
          std::move(summary)};
}

template <class T>
typename Seq2Seq<T>::DecoderState Seq2Seq<T>::initial_state(const Encoded& encoded) const {
  DecoderState state;
  state.recurrent.h = tanh(bridge_(encoded.summary));  // an LSTM's c starts undefined: zeros
  if (options_.input_feeding) state.attentional = Tensor<T>::zeros(state.recurrent.h.shape());
  return state;
}

template <class T>
std::pair<Tensor<T>, Tensor<T>> Seq2Seq<T>::step(const Tensor<T>& embedded, const Encoded& encoded, DecoderState& state,
                                                 std::size_t position) const {
  const nn::AttendOptions attend{.key_padding = encoded.padding, .query_offset = position};
  if (!options_.input_feeding) {  // Bahdanau: the previous state chooses what to read
    const nn::AttentionOutput<T> read = attention_->attend(unsqueeze(state.recurrent.h, 1), encoded.memory, attend);
    const Tensor<T> context = squeeze(read.context, 1);
    state.recurrent = decoder_->step(concat<T>({embedded, context}, 1), state.recurrent);
    return {concat<T>({state.recurrent.h, context, embedded}, 1), squeeze(read.weights, 1)};
  }
  // Luong: step with the previous attentional vector, then attend with the new state.
  state.recurrent = decoder_->step(concat<T>({embedded, state.attentional}, 1), state.recurrent);
  const nn::AttentionOutput<T> read = attention_->attend(unsqueeze(state.recurrent.h, 1), encoded.memory, attend);
  const Tensor<T> context = squeeze(read.context, 1);
  state.attentional = tanh((*attentional_)(concat<T>({context, state.recurrent.h}, 1)));
  return {concat<T>({state.attentional, context, embedded}, 1), squeeze(read.weights, 1)};
}

template <class T>
Tensor<T> Seq2Seq<T>::loss(const PaddedBatch& source, const TargetBatch& target,
                           const TranslationLossOptions& options) const {
  check_source_batch("Seq2Seq", source);
  check_target_batch("Seq2Seq", source, target);
  const Encoded encoded = encode(source);
  DecoderState state = initial_state(encoded);
  const Tensor<T> embedded = dropout_(target_embedding_(target.inputs));  // [B, T, E]
  const std::size_t steps = target.inputs.shape()[1];
  const CrossEntropyOptions loss_options{.ignore_index = options_.pad_id, .label_smoothing = options.label_smoothing};
  if (options.teacher_forcing >= 1.0) {
    // Every input is known: run the decoder, then project only the real target positions at once.
    std::vector<Tensor<T>> features;
    for (std::size_t t = 0; t < steps; ++t) {
      features.push_back(step(select(embedded, 1, static_cast<std::int64_t>(t)), encoded, state, t).first);
    }
    const Tensor<T> all = reshape(stack(features, 1), {-1, static_cast<std::int64_t>(output_.options().in_features)});
    const auto [rows, tokens] = real_target_positions(target.outputs, options_.pad_id);
    return cross_entropy(output_(index_select(all, 0, rows)), tokens, loss_options);
  }
  Generator& coin = options.generator != nullptr ? *options.generator : default_generator();
  std::vector<Tensor<T>> logits;
  Tensor<T> input = select(embedded, 1, 0);
  for (std::size_t t = 0; t < steps; ++t) {
    logits.push_back(output_(step(input, encoded, state, t).first));
    if (t + 1 == steps) break;
    input = coin.uniform() < options.teacher_forcing ? select(embedded, 1, static_cast<std::int64_t>(t + 1))
                                             : dropout_(target_embedding_(argmax(logits.back(), -1)));
  }
  return cross_entropy(stack(logits, 1), target.outputs, loss_options);
}

// The model as the searches see it: the state is the encoded source and the decoder's state,
// a row per hypothesis.
template <class T>
class Seq2Seq<T>::SearchDecoder final : public StepDecoder<T> {
 public:
  using State = typename StepDecoder<T>::State;

  explicit SearchDecoder(const Seq2Seq& model) : model_(model) {}

  std::int64_t sos_id() const override { return model_.options_.sos_id; }
  std::int64_t eos_id() const override { return model_.options_.eos_id; }
  std::size_t vocabulary_size() const override { return model_.options_.target_vocabulary; }

  std::unique_ptr<State> begin(const PaddedBatch& source, std::size_t copies) const override {
    Encoded encoded = model_.encode(source);
    if (copies > 1) repeat_rows(encoded, copies);
    auto state = std::make_unique<SearchState>();
    state->decoder = model_.initial_state(encoded);
    state->encoded = std::move(encoded);
    return state;
  }

  DecoderStep<T> step(const Indices& previous, State& state, std::size_t position) const override {
    auto& [encoded, decoder] = static_cast<SearchState&>(state);
    const auto [features, weights] = model_.step(model_.target_embedding_(previous), encoded, decoder, position);
    return {log_softmax(model_.output_(features), -1), weights};
  }

  // Only the decoder's state: rows stay within their sentence, whose encoding they share.
  void select(State& state, const Indices& rows) const override {
    DecoderState& decoder = static_cast<SearchState&>(state).decoder;
    decoder.recurrent.h = index_select(decoder.recurrent.h, 0, rows);
    if (decoder.recurrent.c.defined()) decoder.recurrent.c = index_select(decoder.recurrent.c, 0, rows);
    if (decoder.attentional.defined()) decoder.attentional = index_select(decoder.attentional, 0, rows);
  }

 private:
  struct SearchState final : State {
    Encoded encoded;
    DecoderState decoder;
  };

  // Row b * copies + k becomes sentence b, before the bridge reads the summary.
  static void repeat_rows(Encoded& encoded, std::size_t copies) {
    const std::size_t sentences = encoded.padding.shape()[0];
    auto repeat = [&](const Tensor<T>& t) { return repeat_sentence_rows(t, sentences, copies); };
    encoded.memory = {repeat(encoded.memory.keys), repeat(encoded.memory.values), repeat(encoded.memory.projected_keys),
                      repeat(encoded.memory.projected_values)};
    encoded.summary = repeat(encoded.summary);
    encoded.padding = repeat_sentence_rows(encoded.padding, copies);
  }

  const Seq2Seq& model_;
};

template <class T>
std::unique_ptr<StepDecoder<T>> Seq2Seq<T>::step_decoder() const {
  return std::make_unique<SearchDecoder>(*this);
}

template class Seq2Seq<float>;
template class Seq2Seq<double>;

}  // namespace xgrad::models
