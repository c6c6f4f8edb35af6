#pragma once
// Recurrent layers with PyTorch's parameter names, gate layouts and formulas:
//   RNN:  h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu
//   LSTM: gates i, f, g, o stacked in that order in W_ih [4H, in], W_hh [4H, H]
//         c' = f * c + i * g;  h' = o * tanh(c')
//   GRU:  gates r, z, n stacked in that order in W_ih [3H, in], W_hh [3H, H]
//         n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h' = (1 - z) * n + z * h
// Parameters: weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, and the same with
// the suffix _reverse for the backward direction of a bidirectional layer. Every parameter
// starts uniform in +-1/sqrt(hidden_size), as in PyTorch.
//
// Inputs are batch-first, x [B, T, F]. Sequences may have their own lengths: steps at or
// beyond a sequence's length change neither its outputs (which are 0 there) nor its final
// state, so a padded batch gives exactly what each sequence gives alone (PyTorch's packed
// sequences). The input projection of all time steps is one GEMM per layer and direction;
// the recurrence is one fused node per layer and direction whose backward runs through time.
//
// Errors: std::invalid_argument from the constructors for a zero input_size, hidden_size or
// num_layers and a dropout outside [0, 1]; xgrad::shape_error from forward for x that is not
// [B, T, input_size], a lengths count other than B or a length above T, and h0 / c0 that are
// not [num_layers * D, B, H]. The cells check x [B, input_size] and h / c [B, H] likewise.

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

#include "xgrad/layers/module.h"

namespace xgrad::nn {

enum class RnnNonlinearity { tanh, relu };

struct RnnOptions {
  std::size_t input_size = 0;
  std::size_t hidden_size = 0;
  std::size_t num_layers = 1;
  bool bias = true;
  bool bidirectional = false;
  // Dropout on the outputs of every layer but the last, in training mode, with masks from the
  // default generator. With num_layers 1 no output lies between layers and the option has no
  // effect (PyTorch warns; here it is accepted silently).
  double dropout = 0.0;
  // RNN only.
  RnnNonlinearity nonlinearity = RnnNonlinearity::tanh;
};

template <class T>
struct RnnOutput {
  Tensor<T> output;  // [B, T, D * H], D = 2 when bidirectional (forward then backward halves)
  Tensor<T> h_n;     // [num_layers * D, B, H]: the state after each sequence's last valid step
  Tensor<T> c_n;     // [num_layers * D, B, H] for LSTM; undefined for RNN and GRU
};

// The common machinery of RNN, LSTM and GRU; `gates` is 1, 4 or 3.
template <class T>
class RecurrentBase : public Module<T> {
 public:
  const RnnOptions& options() const noexcept { return options_; }

 protected:
  enum class Cell { rnn, lstm, gru };
  RecurrentBase(const RnnOptions& options, Cell cell);
  // lengths: empty (every sequence spans T) or one length in [0, T] per batch entry.
  // h0 / c0: undefined (zeros) or [num_layers * D, B, H].
  RnnOutput<T> run(const Tensor<T>& x, const std::vector<std::size_t>& lengths, const Tensor<T>& h0,
                   const Tensor<T>& c0) const;

 private:
  RnnOptions options_;
  Cell cell_;
  // Per layer and direction, in the order of h_n: weight_ih, weight_hh, bias_ih, bias_hh.
  std::vector<std::array<Tensor<T>, 4>> weights_;
};

template <class T = float>
class RNN : public RecurrentBase<T> {
 public:
  explicit RNN(const RnnOptions& options);
  RnnOutput<T> forward(const Tensor<T>& x, const std::vector<std::size_t>& lengths = {}, const Tensor<T>& h0 = {}) const;
};

template <class T = float>
class LSTM : public RecurrentBase<T> {
 public:
  explicit LSTM(const RnnOptions& options);
  RnnOutput<T> forward(const Tensor<T>& x, const std::vector<std::size_t>& lengths = {}, const Tensor<T>& h0 = {},
                       const Tensor<T>& c0 = {}) const;
};

template <class T = float>
class GRU : public RecurrentBase<T> {
 public:
  explicit GRU(const RnnOptions& options);
  RnnOutput<T> forward(const Tensor<T>& x, const std::vector<std::size_t>& lengths = {}, const Tensor<T>& h0 = {}) const;
};

struct RnnCellOptions {
  std::size_t input_size = 0;
  std::size_t hidden_size = 0;
  bool bias = true;
  RnnNonlinearity nonlinearity = RnnNonlinearity::tanh;  // RNNCell only
};

// Single steps, for decoders that feed each output back. Parameters weight_ih, weight_hh,
// bias_ih, bias_hh; the gate update is one fused node.
template <class T = float>
class RNNCell : public Module<T> {
 public:
  explicit RNNCell(const RnnCellOptions& options);
  // x [B, input_size], h [B, H] (undefined: zeros) -> h' [B, H]
  Tensor<T> forward(const Tensor<T>& x, const Tensor<T>& h = {}) const;
  Tensor<T> weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  RnnCellOptions options_;
};

template <class T = float>
class LSTMCell : public Module<T> {
 public:
  explicit LSTMCell(const RnnCellOptions& options);
  // x [B, input_size], h and c [B, H] (undefined: zeros) -> (h', c')
  std::pair<Tensor<T>, Tensor<T>> forward(const Tensor<T>& x, const Tensor<T>& h = {}, const Tensor<T>& c = {}) const;
  Tensor<T> weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  RnnCellOptions options_;
};

template <class T = float>
class GRUCell : public Module<T> {
 public:
  explicit GRUCell(const RnnCellOptions& options);
  // x [B, input_size], h [B, H] (undefined: zeros) -> h' [B, H]
  Tensor<T> forward(const Tensor<T>& x, const Tensor<T>& h = {}) const;
  Tensor<T> weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  RnnCellOptions options_;
};

}  // namespace xgrad::nn
