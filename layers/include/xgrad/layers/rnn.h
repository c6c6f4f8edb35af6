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
// Inputs are batch-first, x [B, T, F], and so are the outputs, unless RnnOptions::batch_first
// is false: then x is [T, B, F] and the output [T, B, D * H], as PyTorch's default (h0, c0,
// h_n and c_n are [num_layers * D, B, H] either way). Sequences may have their own lengths: steps at or
// beyond a sequence's length change neither its outputs (which are 0 there) nor its final
// state, so a padded batch gives exactly what each sequence gives alone (PyTorch's packed
// sequences). The input projection of all time steps is one GEMM per layer and direction;
// the recurrence is one fused node per layer and direction whose backward runs through time.
//
// Errors: std::invalid_argument from the constructors for a zero input_size, hidden_size or
// num_layers and a dropout outside [0, 1]; xgrad::shape_error from forward for x that is not
// [B, T, input_size] ([T, B, input_size] sequence-first), a lengths count other than B or a
// length above T, and h0 / c0 that are
// not [num_layers * D, B, H]. The cells check x [B, input_size] and h / c [B, H] likewise.
//
// Code that should work with any of the three (the models) holds a RecurrentLayer or a
// RecurrentCell made by make_recurrent_layer / make_recurrent_cell from a CellKind, and passes
// the state as one RecurrentState, so it never asks which cell it has.

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/layers/module.h"

namespace xgrad::nn {

// Which recurrence: the class (RNN, LSTM, GRU and their cells). The RNN's activation is not
// part of the kind but of its options (RnnNonlinearity), as in PyTorch, so that a kind and
// options can never disagree.
enum class CellKind { rnn, lstm, gru };

// Names, as saved model configurations spell them: "rnn", "lstm", "gru".
std::string to_string(CellKind kind);
CellKind cell_kind_from_string(const std::string& name);  // std::invalid_argument listing the choices

// Rows of W_ih and W_hh per hidden unit: 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n).
constexpr std::size_t gate_count(CellKind kind) noexcept {
  return kind == CellKind::lstm ? 4 : kind == CellKind::gru ? 3 : 1;
}

enum class RnnNonlinearity { tanh, relu };

// The state a recurrence carries: h, and c for the LSTM (undefined for RNN and GRU, which
// ignore a c they are given). Undefined members stand for zeros. For a cell both are [B, H];
// for a layer [num_layers * D, B, H], as h0 / c0 and h_n / c_n.
template <class T>
struct RecurrentState {
  Tensor<T> h = {};
  Tensor<T> c = {};
};

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
  // true: x [B, T, F] and output [B, T, D * H]; false: [T, B, F] and [T, B, D * H], as
  // PyTorch's default. xgrad's default is batch-first, unlike PyTorch's, because every other
  // xgrad layer is. Sequence-first costs a transposed copy of x and of the output.
  bool batch_first = true;
};

template <class T>
struct RnnOutput {
  // [B, T, D * H] ([T, B, D * H] sequence-first), D = 2 when bidirectional (forward then
  // backward halves)
  Tensor<T> output;
  Tensor<T> h_n;     // [num_layers * D, B, H]: the state after each sequence's last valid step
  Tensor<T> c_n;     // [num_layers * D, B, H] for LSTM; undefined for RNN and GRU

  // What a further run continuing these sequences starts from.
  RecurrentState<T> final_state() const { return {h_n, c_n}; }
};

// A recurrence over whole sequences, whichever the cell.
template <class T = float>
class RecurrentLayer : public Module<T> {
 public:
  // forward with the initial state as one argument: x [B, T, input_size] ([T, B, input_size]
  // sequence-first); lengths empty (every sequence spans T) or one length in [0, T] per batch entry.
  virtual RnnOutput<T> run(const Tensor<T>& x, const std::vector<std::size_t>& lengths = {},
                           const RecurrentState<T>& initial = {}) const = 0;
};

// One step of a recurrence, whichever the cell: x [B, input_size] -> the next state.
template <class T = float>
class RecurrentCell : public Module<T> {
 public:
  virtual RecurrentState<T> step(const Tensor<T>& x, const RecurrentState<T>& state) const = 0;

  // weight_ih and weight_hh as a step multiplies by them in another format than float32
  // (Module::set_weight_format); null for float32.
  struct RoundedWeights {
    std::shared_ptr<const QuantizedMatrix> input, hidden;
  };

 protected:
  const RoundedWeights& rounded_weights() const noexcept { return rounded_; }
  void use_weight_format(WeightFormat format) override;

 private:
  RoundedWeights rounded_;
};

// The common machinery of RNN, LSTM and GRU.
template <class T>
class RecurrentBase : public RecurrentLayer<T> {
 public:
  const RnnOptions& options() const noexcept { return options_; }
  RnnOutput<T> run(const Tensor<T>& x, const std::vector<std::size_t>& lengths = {},
                   const RecurrentState<T>& initial = {}) const final;

 protected:
  RecurrentBase(const RnnOptions& options, CellKind kind);

 private:
  RnnOptions options_;
  CellKind kind_;
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
class RNNCell : public RecurrentCell<T> {
 public:
  explicit RNNCell(const RnnCellOptions& options);
  // x [B, input_size], h [B, H] (undefined: zeros) -> h' [B, H]
  Tensor<T> forward(const Tensor<T>& x, const Tensor<T>& h = {}) const;
  RecurrentState<T> step(const Tensor<T>& x, const RecurrentState<T>& state) const override;
  Tensor<T> weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  RnnCellOptions options_;
};

template <class T = float>
class LSTMCell : public RecurrentCell<T> {
 public:
  explicit LSTMCell(const RnnCellOptions& options);
  // x [B, input_size], h and c [B, H] (undefined: zeros) -> (h', c')
  std::pair<Tensor<T>, Tensor<T>> forward(const Tensor<T>& x, const Tensor<T>& h = {}, const Tensor<T>& c = {}) const;
  RecurrentState<T> step(const Tensor<T>& x, const RecurrentState<T>& state) const override;
  Tensor<T> weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  RnnCellOptions options_;
};

template <class T = float>
class GRUCell : public RecurrentCell<T> {
 public:
  explicit GRUCell(const RnnCellOptions& options);
  // x [B, input_size], h [B, H] (undefined: zeros) -> h' [B, H]
  Tensor<T> forward(const Tensor<T>& x, const Tensor<T>& h = {}) const;
  RecurrentState<T> step(const Tensor<T>& x, const RecurrentState<T>& state) const override;
  Tensor<T> weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  RnnCellOptions options_;
};

// RNN, LSTM or GRU (RNNCell, LSTMCell or GRUCell) as `kind` says; RnnOptions::nonlinearity
// and RnnCellOptions::nonlinearity apply to the RNN only.
template <class T = float>
std::unique_ptr<RecurrentLayer<T>> make_recurrent_layer(CellKind kind, const RnnOptions& options);
template <class T = float>
std::unique_ptr<RecurrentCell<T>> make_recurrent_cell(CellKind kind, const RnnCellOptions& options);

}  // namespace xgrad::nn
