#include "xgrad/models/seq2seq.h"

#include <algorithm>
#include <cmath>
#include <limits>

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

void check_source(const PaddedBatch& source) {
  const Shape& shape = source.ids.shape();
  if (shape.size() != 2 || source.lengths.size() != shape[0]) {
    throw shape_error(detail::message("Seq2Seq: source tokens of shape ", shape, " with ", source.lengths.size(),
                                      " lengths; expected tokens [B, S] and B lengths"));
  }
  for (std::size_t b = 0; b < source.lengths.size(); ++b) {
    if (source.lengths[b] == 0 || source.lengths[b] > shape[1]) {
      throw shape_error(detail::message("Seq2Seq: source length ", source.lengths[b], " of sentence ", b,
                                        " is outside [1, ", shape[1], "]"));
    }
  }
}

void check_target(const PaddedBatch& source, const TargetBatch& target) {
  const Shape& in = target.inputs.shape();
  if (in.size() != 2 || in != target.outputs.shape() || in[0] != source.ids.shape()[0] || in[1] == 0) {
    throw shape_error(detail::message("Seq2Seq: target inputs of shape ", in, " and outputs of shape ",
                                      target.outputs.shape(), " for a source batch of shape ", source.ids.shape(),
                                      "; expected both [B, T] with the source's B and T >= 1"));
  }
}

// The row of every target position holding a real token, and those tokens.
std::pair<Indices, Indices> real_positions(const Indices& outputs, std::int64_t pad_id) {
  std::vector<std::int64_t> rows, tokens;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (outputs.data()[i] == pad_id) continue;
    rows.push_back(static_cast<std::int64_t>(i));
    tokens.push_back(outputs.data()[i]);
  }
  Indices row_ids = Indices::from_shape({rows.size()}), token_ids = Indices::from_shape({tokens.size()});
  std::copy(rows.begin(), rows.end(), row_ids.begin());
  std::copy(tokens.begin(), tokens.end(), token_ids.begin());
  return {row_ids, token_ids};
}

std::size_t decode_limit(std::size_t source_length, const SearchOptions& options) {
  return std::max<std::size_t>(
      1, static_cast<std::size_t>(options.max_length_ratio * static_cast<double>(source_length)) + options.max_length_extra);
}

// The first `length` weights of row `row` of [rows, S] attention weights.
std::vector<float> attention_row(const auto& weights, std::size_t row, std::size_t length) {
  const std::size_t width = weights.shape()[1];
  std::vector<float> values(length);
  for (std::size_t s = 0; s < length; ++s) values[s] = static_cast<float>(weights.data()[row * width + s]);
  return values;
}

Array<float> attention_matrix(const std::vector<std::vector<float>>& rows, std::size_t length) {
  Array<float> matrix = Array<float>::from_shape({rows.size(), length});
  for (std::size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), matrix.data() + i * length);
  return matrix;
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
  std::vector<std::size_t> lengths;
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
  check_source(source);
  const Tensor<T> embedded = dropout_(source_embedding_(source.ids));
  const nn::RnnOutput<T> encoded = encoder_->run(embedded, source.lengths);
  const auto last_forward = static_cast<std::int64_t>(2 * options_.encoder_layers - 2);
  Tensor<T> summary = concat<T>({select(encoded.h_n, 0, last_forward), select(encoded.h_n, 0, last_forward + 1)}, 1);
  return {attention_->prepare(encoded.output, encoded.output), padding_mask(source.lengths, source.ids.shape()[1]),
          std::move(summary), source.lengths};
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
Tensor<T> Seq2Seq<T>::loss(const PaddedBatch& source, const TargetBatch& target, double teacher_forcing,
                           double label_smoothing, Generator* generator) const {
  check_target(source, target);
  const Encoded encoded = encode(source);
  DecoderState state = initial_state(encoded);
  const Tensor<T> embedded = dropout_(target_embedding_(target.inputs));  // [B, T, E]
  const std::size_t steps = target.inputs.shape()[1];
  const CrossEntropyOptions loss_options{.ignore_index = options_.pad_id, .label_smoothing = label_smoothing};
  if (teacher_forcing >= 1.0) {
    // Every input is known: run the decoder, then project only the real target positions at once.
    std::vector<Tensor<T>> features;
    for (std::size_t t = 0; t < steps; ++t) {
      features.push_back(step(select(embedded, 1, static_cast<std::int64_t>(t)), encoded, state, t).first);
    }
    const Tensor<T> all = reshape(stack(features, 1), {-1, static_cast<std::int64_t>(output_.options().in_features)});
    const auto [rows, tokens] = real_positions(target.outputs, options_.pad_id);
    return cross_entropy(output_(index_select(all, 0, rows)), tokens, loss_options);
  }
  Generator& coin = generator != nullptr ? *generator : default_generator();
  std::vector<Tensor<T>> logits;
  Tensor<T> input = select(embedded, 1, 0);
  for (std::size_t t = 0; t < steps; ++t) {
    logits.push_back(output_(step(input, encoded, state, t).first));
    if (t + 1 == steps) break;
    input = coin.uniform() < teacher_forcing ? select(embedded, 1, static_cast<std::int64_t>(t + 1))
                                             : dropout_(target_embedding_(argmax(logits.back(), -1)));
  }
  return cross_entropy(stack(logits, 1), target.outputs, loss_options);
}

template <class T>
std::pair<double, std::size_t> Seq2Seq<T>::evaluate_loss(const PaddedBatch& source, const TargetBatch& target) const {
  NoGradGuard no_graph;
  const Tensor<T> mean_loss = loss(source, target);
  const auto [rows, tokens] = real_positions(target.outputs, options_.pad_id);
  return {static_cast<double>(mean_loss.item()) * static_cast<double>(tokens.size()), tokens.size()};
}

template <class T>
std::vector<Translation> Seq2Seq<T>::translate(const PaddedBatch& source, const SearchOptions& options) const {
  return options.beam_size == 1 ? greedy(source, options) : beam_search(source, options);
}

template <class T>
std::vector<Translation> Seq2Seq<T>::greedy(const PaddedBatch& source, const SearchOptions& options) const {
  NoGradGuard no_graph;
  const Encoded encoded = encode(source);
  DecoderState state = initial_state(encoded);
  const std::size_t batch = source.lengths.size();
  std::vector<Translation> results(batch);
  std::vector<std::vector<std::vector<float>>> attention(batch);
  std::vector<bool> done(batch, false);
  std::size_t longest = 0;
  for (std::size_t length : source.lengths) longest = std::max(longest, decode_limit(length, options));
  Indices previous(Shape{batch}, options_.sos_id);
  for (std::size_t t = 0; t < longest; ++t) {
    const auto [features, weights] = step(target_embedding_(previous), encoded, state, t);
    const Tensor<T> log_probs = log_softmax(output_(features), -1);
    const Indices next = argmax(log_probs, -1);
    bool all_done = true;
    for (std::size_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      const std::int64_t token = next(b);
      results[b].score += static_cast<double>(log_probs.value()(b, token));
      attention[b].push_back(attention_row(weights.value(), b, source.lengths[b]));
      done[b] = token == options_.eos_id || t + 1 >= decode_limit(source.lengths[b], options);
      if (token != options_.eos_id) results[b].tokens.push_back(token);
      previous(b) = token;
      all_done = all_done && done[b];
    }
    if (all_done) break;
  }
  for (std::size_t b = 0; b < batch; ++b) results[b].attention = attention_matrix(attention[b], source.lengths[b]);
  return results;
}

template <class T>
std::vector<Translation> Seq2Seq<T>::beam_search(const PaddedBatch& source, const SearchOptions& options) const {
  const std::size_t width = options.beam_size;
  if (width == 0 || width > options_.target_vocabulary) {
    throw std::invalid_argument(detail::message("beam search: beam size ", width, " must lie in [1, ",
                                                options_.target_vocabulary, "] (the target vocabulary)"));
  }
  NoGradGuard no_graph;
  check_source(source);
  const std::size_t batch = source.lengths.size(), rows = batch * width;
  // Row b * width + k holds hypothesis k of sentence b, so every row keeps its sentence.
  Indices sentence_of_row = Indices::from_shape({rows});
  for (std::size_t r = 0; r < rows; ++r) sentence_of_row(r) = static_cast<std::int64_t>(r / width);
  Encoded encoded = encode(source);
  auto repeat = [&](const Tensor<T>& t) { return t.defined() ? index_select(t, 0, sentence_of_row) : t; };
  encoded.memory = {repeat(encoded.memory.keys), repeat(encoded.memory.values), repeat(encoded.memory.projected_keys),
                    repeat(encoded.memory.projected_values)};
  encoded.summary = repeat(encoded.summary);
  Mask padding = Mask::from_shape({rows, encoded.padding.shape()[1]});
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy_n(encoded.padding.data() + (r / width) * padding.shape()[1], padding.shape()[1],
                padding.data() + r * padding.shape()[1]);
  }
  encoded.padding = std::move(padding);
  DecoderState state = initial_state(encoded);

  struct Hypothesis {
    std::vector<std::int64_t> tokens;
    std::vector<std::vector<float>> attention;
    double log_prob = -std::numeric_limits<double>::infinity();
  };
  std::vector<Hypothesis> beams(rows);
  for (std::size_t b = 0; b < batch; ++b) beams[b * width].log_prob = 0;  // one live hypothesis to start
  std::vector<std::vector<Translation>> finished(batch);
  std::vector<bool> done(batch, false);
  std::size_t longest = 0;
  for (std::size_t length : source.lengths) longest = std::max(longest, decode_limit(length, options));
  auto finish = [&](std::size_t b, Hypothesis hypothesis) {
    const double length = static_cast<double>(hypothesis.tokens.size() + 1);
    Translation translation{std::move(hypothesis.tokens), hypothesis.log_prob / std::pow(length, options.length_penalty),
                            attention_matrix(hypothesis.attention, source.lengths[b])};
    finished[b].push_back(std::move(translation));
  };

  const std::size_t vocabulary = options_.target_vocabulary;
  Indices previous(Shape{rows}, options_.sos_id);
  for (std::size_t t = 0; t < longest; ++t) {
    const auto [features, weights] = step(target_embedding_(previous), encoded, state, t);
    const Array<T> log_probs = log_softmax(output_(features), -1).value();
    std::vector<Hypothesis> next(rows);
    Indices origins = Indices::from_shape({rows});
    for (std::size_t r = 0; r < rows; ++r) origins(r) = static_cast<std::int64_t>(r);  // finished rows idle in place
    std::vector<std::pair<double, std::size_t>> candidates;
    for (std::size_t b = 0; b < batch; ++b) {
      if (done[b]) continue;
      candidates.clear();
      for (std::size_t k = 0; k < width; ++k) {
        const std::size_t row = b * width + k;
        if (std::isinf(beams[row].log_prob)) continue;
        const T* row_log_probs = log_probs.data() + row * vocabulary;
        for (std::size_t v = 0; v < vocabulary; ++v) {
          candidates.emplace_back(beams[row].log_prob + static_cast<double>(row_log_probs[v]), k * vocabulary + v);
        }
      }
      // The best 2k candidates always hold k that do not end the sentence.
      const std::size_t considered = std::min(candidates.size(), 2 * width);
      std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(considered), candidates.end(),
                        [](const auto& a, const auto& c) { return a.first > c.first; });
      const bool last_step = t + 1 >= decode_limit(source.lengths[b], options);
      std::size_t kept = 0;
      for (std::size_t i = 0; i < considered && kept < width && finished[b].size() < width; ++i) {
        const auto [log_prob, index] = candidates[i];
        const std::size_t origin = b * width + index / vocabulary;
        const auto token = static_cast<std::int64_t>(index % vocabulary);
        Hypothesis extended{beams[origin].tokens, beams[origin].attention, log_prob};
        extended.attention.push_back(attention_row(weights.value(), origin, source.lengths[b]));
        if (token != options_.eos_id) extended.tokens.push_back(token);
        if (token == options_.eos_id || last_step) {
          finish(b, std::move(extended));
          continue;
        }
        const std::size_t row = b * width + kept++;
        origins(row) = static_cast<std::int64_t>(origin);
        next[row] = std::move(extended);
      }
      done[b] = finished[b].size() >= width || last_step || kept == 0;
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    beams = std::move(next);
    for (std::size_t r = 0; r < rows; ++r) previous(r) = beams[r].tokens.empty() ? options_.sos_id : beams[r].tokens.back();
    state.recurrent.h = index_select(state.recurrent.h, 0, origins);
    if (state.recurrent.c.defined()) state.recurrent.c = index_select(state.recurrent.c, 0, origins);
    if (state.attentional.defined()) state.attentional = index_select(state.attentional, 0, origins);
  }
  std::vector<Translation> best(batch);
  for (std::size_t b = 0; b < batch; ++b) {
    const auto winner = std::max_element(finished[b].begin(), finished[b].end(),
                                         [](const Translation& a, const Translation& c) { return a.score < c.score; });
    best[b] = std::move(*winner);
  }
  return best;
}

template class Seq2Seq<float>;
template class Seq2Seq<double>;

}  // namespace xgrad::models
