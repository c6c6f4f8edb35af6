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
#include "xgrad/models/batching.h"
#include "xgrad/models/search.h"

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

// Source sentences are a PaddedBatch: ids [B, S] padded with pad_id, and B lengths >= 1.

// Teacher-forcing targets: decoder inputs start with <sos>, outputs end with <eos>; both are
// padded with pad_id.
struct TargetBatch {
  Indices inputs;   // [B, T]
  Indices outputs;  // [B, T]
};

template <class T = float>
class Seq2Seq : public nn::Module<T> {
 public:
  explicit Seq2Seq(const Seq2SeqOptions& options);

  // Mean cross-entropy per target token (padding excluded). With teacher_forcing < 1 each
  // step feeds, with probability 1 - teacher_forcing, the model's own previous prediction.
  Tensor<T> loss(const PaddedBatch& source, const TargetBatch& target, double teacher_forcing = 1.0,
                 double label_smoothing = 0.0, Generator* generator = nullptr) const;
  // Token-summed cross-entropy and the number of target tokens, for perplexity over a corpus.
  std::pair<double, std::size_t> evaluate_loss(const PaddedBatch& source, const TargetBatch& target) const;

  // Decodes a batch without recording a graph (search.h): greedy when beam_size is 1, beam
  // search otherwise. Call eval() first, or dropout stays active.
  std::vector<Translation> translate(const PaddedBatch& source, const SearchOptions& options = {}) const;
  std::vector<Translation> greedy(const PaddedBatch& source, const SearchOptions& options = {}) const;
  // Batched beam search (models::beam_search); with beam_size 1 it gives exactly what greedy gives.
  std::vector<Translation> beam_search(const PaddedBatch& source, const SearchOptions& options) const;

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
