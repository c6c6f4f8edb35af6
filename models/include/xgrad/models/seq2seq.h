#pragma once
// An attention encoder-decoder for translation, assembled from public layers only:
//   encoder  Embedding -> dropout -> bidirectional GRU, LSTM or RNN (num_layers)
//   bridge   decoder's first state = tanh(W [last forward state; last backward state])
//   decoder  Embedding -> dropout -> the cell of the same kind, fed [embedding; context]
//            (Bahdanau: attend with the previous state, then step), or [embedding;
//            previous attentional vector] (Luong with input feeding: step, then attend)
//   output   Linear over [decoder state; context; embedding] -> target vocabulary
// with any attention variant from layers/. Source padding is masked in attention; target
// padding is ignored by the loss, and the output projection runs only at non-padding
// positions.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/framework/random.h"
#include "xgrad/layers/attention.h"
#include "xgrad/layers/dropout.h"
#include "xgrad/layers/embedding.h"
#include "xgrad/layers/linear.h"
#include "xgrad/layers/rnn.h"
#include "xgrad/models/translator.h"

namespace xgrad::models {

enum class AttentionKind { additive, dot, scaled_dot, general, multihead, local_monotonic, local_predictive };

// Names as used on the command line and in saved configurations ("additive", "dot", ...);
// the cell kind's are nn::to_string and nn::cell_kind_from_string.
std::string to_string(AttentionKind attention);
AttentionKind attention_kind_from_string(const std::string& name);  // std::invalid_argument listing the choices

struct Seq2SeqOptions {
  std::size_t source_vocabulary = 0;
  std::size_t target_vocabulary = 0;
  std::size_t embedding_size = 256;
  std::size_t encoder_hidden = 512;  // per direction
  std::size_t decoder_hidden = 512;
  std::size_t encoder_layers = 1;
  nn::CellKind cell = nn::CellKind::gru;
  AttentionKind attention = AttentionKind::additive;
  // Luong-style decoding: step first, attend with the new state, and feed the attentional
  // vector tanh(W_c [context; state]) into the next step. Otherwise Bahdanau-style.
  bool input_feeding = false;
  std::size_t attention_heads = 8;  // multihead only
  std::size_t local_window = 5;     // local attention only
  double dropout = 0.5;
  std::int64_t pad_id = 0;
  std::int64_t sos_id = 2;
  std::int64_t eos_id = 3;
};

// The options as JSON text and back (std::invalid_argument naming a missing or bad key).
std::string to_json(const Seq2SeqOptions& options);
Seq2SeqOptions seq2seq_options_from_json(const std::string& text);
// About how many parameters the options ask for (an upper estimate: every attention variant
// is counted as the largest); what the configuration limits are checked against.
double estimated_parameters(const Seq2SeqOptions& options);
// The most parameters a configuration may ask for: a file cannot make the program allocate
// more than about 2 GB of weights (and four times that for training).
inline constexpr double max_model_parameters = 5e8;

template <class T = float>
class Seq2Seq final : public Translator<T> {
 public:
  explicit Seq2Seq(const Seq2SeqOptions& options);

  // With teacher_forcing < 1 each step feeds, with probability 1 - teacher_forcing, the
  // model's own previous prediction.
  Tensor<T> loss(const PaddedBatch& source, const TargetBatch& target,
                 const TranslationLossOptions& options = {}) const override;
  std::unique_ptr<StepDecoder<T>> step_decoder() const override;
  std::string architecture() const override { return "rnn"; }
  std::string configuration() const override { return to_json(options_); }
  std::int64_t pad_id() const override { return options_.pad_id; }

  const Seq2SeqOptions& options() const noexcept { return options_; }

 private:
  struct Encoded;
  struct DecoderState;
  class SearchDecoder;  // the StepDecoder the searches drive
  Encoded encode(const PaddedBatch& source) const;
  DecoderState initial_state(const Encoded& encoded) const;
  // One decoder step for a batch of previous tokens: updates `state` and returns the features
  // the output projection reads ([state; context; embedding]) and the attention weights.
  std::pair<Tensor<T>, Tensor<T>> step(const Tensor<T>& embedded, const Encoded& encoded, DecoderState& state,
                                       std::size_t position) const;

  Seq2SeqOptions options_;
  nn::Embedding<T> source_embedding_;
  nn::Embedding<T> target_embedding_;
  nn::Dropout<T> dropout_;
  std::unique_ptr<nn::RecurrentLayer<T>> encoder_;
  nn::Linear<T> bridge_;
  std::unique_ptr<nn::RecurrentCell<T>> decoder_;
  std::unique_ptr<nn::Attention<T>> attention_;
  std::unique_ptr<nn::Linear<T>> attentional_;  // input feeding only: W_c
  nn::Linear<T> output_;
};

}  // namespace xgrad::models
