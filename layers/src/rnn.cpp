// RNN, LSTM and GRU over whole sequences, and their single-step cells. A layer in one
// direction is an input projection for all steps (linear: one GEMM) and one fused node for
// the recurrence, whose backward runs through time; a cell step is one fused node. The step
// arithmetic both share is in rnn_kernels.h.
#include "xgrad/layers/rnn.h"

#include <cmath>
#include <string>
#include <tuple>
#include <type_traits>

#include "rnn_kernels.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/blas.h"
#include "xgrad/framework/dropout.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/init.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/matmul.h"

namespace xgrad::nn {
namespace {

using recurrent::CellMath;

// In the order of CellKind's enumerators.
constexpr std::array<const char*, 3> kind_names{"rnn", "lstm", "gru"};
constexpr std::array<const char*, 3> layer_names{"RNN", "LSTM", "GRU"};

// "rnn, lstm, gru", for messages that list the choices.
std::string kind_choices() {
  std::string choices;
  for (const char* name : kind_names) choices += (choices.empty() ? "" : ", ") + std::string(name);
  return choices;
}

// Only a cast makes a CellKind outside the enumeration; it is refused rather than read past
// the name tables or left without a layer.
[[noreturn]] void refuse_kind(CellKind kind, const char* where) {
  throw std::invalid_argument(
      detail::message(where, ": cell kind ", static_cast<int>(kind), " is not one of ", kind_choices()));
}

std::size_t kind_index(CellKind kind, const char* where) {
  const auto index = static_cast<std::size_t>(kind);
  if (index >= kind_names.size()) refuse_kind(kind, where);
  return index;
}

const char* layer_name(CellKind kind) { return layer_names[kind_index(kind, "layer_name")]; }

void check_sizes(const char* layer, std::size_t input_size, std::size_t hidden_size) {
  if (input_size == 0 || hidden_size == 0) {
    throw std::invalid_argument(detail::message(layer, ": input_size (", input_size, ") and hidden_size (",
                                                hidden_size, ") must be positive"));
  }
}

// An initial state must be undefined (zeros) or exactly `expected`.
template <class T>
void check_state(const char* layer, const char* name, const Tensor<T>& state, const Shape& expected,
                 const char* layout) {
  if (state.defined() && state.shape() != expected) {
    throw shape_error(detail::message(layer, ": ", name, " has shape ", state.shape(), "; expected ", layout, " = ",
                                      expected));
  }
}

// weight_ih [G*H, input], weight_hh [G*H, H] and, with bias, bias_ih and bias_hh [G*H], named
// <name><suffix> and uniform in +-1/sqrt(H) as PyTorch initialises them. Biases stay
// undefined without bias.
template <class T, class Register>
std::array<Tensor<T>, 4> make_weights(Register&& register_parameter, const CellMath& cell, std::size_t input_size,
                                      bool bias, const std::string& suffix) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(cell.hidden));
  const auto make = [&](const std::string& name, const Shape& shape) {
    Tensor<T> parameter = register_parameter(name + suffix, Tensor<T>::zeros(shape));
    init::uniform(parameter, -bound, bound);
    return parameter;
  };
  const std::size_t width = cell.gate_width();
  std::array<Tensor<T>, 4> weights{make("weight_ih", {width, input_size}), make("weight_hh", {width, cell.hidden}),
                                   Tensor<T>(), Tensor<T>()};
  if (bias) {
    weights[2] = make("bias_ih", {width});
    weights[3] = make("bias_hh", {width});
  }
  return weights;
}

// Per-step buffers of `stride` values in `count` slots; step s uses slot s % count, so that
// a recorded sequence keeps every step for backward while inference cycles through two
// slots (one for buffers that only live within a step). No slots: at() is null.
template <class T>
class StepSlots {
 public:
  StepSlots() = default;
  StepSlots(std::size_t count, std::size_t stride)
      : data_(Array<T>::from_shape({count * stride})), count_(count), stride_(stride) {}
  T* at(std::size_t s) { return count_ == 0 ? nullptr : data_.data() + (s % count_) * stride_; }
  const T* at(std::size_t s) const { return count_ == 0 ? nullptr : data_.data() + (s % count_) * stride_; }

 private:
  Array<T> data_;
  std::size_t count_ = 0;
  std::size_t stride_ = 0;
};

// The states and saved gates of a recurrence, by processing step s: hidden.at(s) and
// cells.at(s) hold the state before step s, gates.at(s) and candidates.at(s) what the row
// kernels of step s saved for backward.
template <class T>
struct StepHistory {
  StepHistory(const CellMath& cell, std::size_t batch, std::size_t steps, bool for_backward) {
    const std::size_t states = for_backward ? steps + 1 : 2;
    const std::size_t saved = for_backward ? steps : 1;
    const std::size_t rows = batch * cell.hidden;
    hidden = StepSlots<T>(states, rows);
    if (cell.has_cell_state()) cells = StepSlots<T>(states, rows);
    // The RNN's backward reads h' only, so its gates live within one step.
    const bool gates_saved = cell.kind != CellKind::rnn;
    gates = StepSlots<T>(gates_saved ? saved : 1, batch * cell.gate_width());
    if (cell.kind == CellKind::gru) candidates = StepSlots<T>(saved, rows);
  }

  recurrent::ForwardStep<T> forward(std::size_t s) {
    return {.gates = gates.at(s), .candidates = candidates.at(s), .h_prev = hidden.at(s), .h = hidden.at(s + 1),
            .c_prev = cells.at(s), .c = cells.at(s + 1)};
  }
  recurrent::SavedStep<T> saved(std::size_t s) const {
    return {.gates = gates.at(s), .candidates = candidates.at(s), .h_prev = hidden.at(s), .h = hidden.at(s + 1),
            .c_prev = cells.at(s), .c = cells.at(s + 1)};
  }

  StepSlots<T> hidden, cells, gates, candidates;
};

template <class T>
Array<T> copy_rows(const T* source, std::size_t rows, std::size_t width) {
  Array<T> result = Array<T>::from_shape({rows, width});
  std::copy_n(source, rows * width, result.data());
  return result;
}

// The gradient reaching output k of a multi-output node, or zeros when none did.
template <class T>
Array<T> output_grad_or_zeros(const Node<T>& node, std::size_t k, const Shape& shape) {
  return node.has_output_grad(k) ? node.output_grad(k) : Array<T>(xt::zeros<T>(shape));
}

template <class T>
void add_to(Array<T>& target, const T* values) {
  T* out = target.data();
  for (std::size_t i = 0; i < target.size(); ++i) out[i] += values[i];
}

template <class T>
struct SequenceResult {
  Tensor<T> output;  // [B, T, H]
  Tensor<T> h_n;     // [B, H]
  Tensor<T> c_n;     // [B, H], LSTM only
};

// The recurrence of one layer in one direction as one node, over the input projection
// xw = x W_ih^T + b_ih [B, T, G*H] (reverse: t = T-1 .. 0). Rows at t >= lengths[b] keep
// their state and output 0. Backward through time, per step (rnn_kernels.h):
//   dxw[:, t] += d(gates_t);  dh_{t-1} = direct + d(gates_t) W_hh
// and once for all steps: dW_hh += sum_t d(gates_t)^T h_{t-1}; db_hh += sum d(gates); dh0, dc0.
template <class T>
SequenceResult<T> recurrence(const CellMath& cell, const Tensor<T>& xw, const Tensor<T>& w_hh, const Tensor<T>& b_hh,
                             const Tensor<T>& h0, const Tensor<T>& c0, const std::vector<std::size_t>& lengths,
                             bool reverse) {
  const std::size_t batch = xw.shape()[0], steps = xw.shape()[1], H = cell.hidden, width = cell.gate_width();
  const bool lstm = cell.has_cell_state();
  std::vector<Tensor<T>> inputs{xw, w_hh, h0};  // then c0 (LSTM), then b_hh (with bias)
  if (lstm) inputs.push_back(c0);
  const std::size_t bias_index = inputs.size();
  if (b_hh.defined()) inputs.push_back(b_hh);

  StepHistory<T> history(cell, batch, steps, detail::should_record(inputs));
  std::copy_n(h0.data(), batch * H, history.hidden.at(0));
  if (lstm) std::copy_n(c0.data(), batch * H, history.cells.at(0));
  Array<T> output = xt::zeros<T>({batch, steps, H});
  const blas::PackedMatrix<T> w_hh_packed(w_hh.data(), true, H, width);  // as the H x G*H factor of h W_hh^T
  const auto time_of = [steps, reverse](std::size_t s) { return reverse ? steps - 1 - s : s; };
  for (std::size_t s = 0; s < steps; ++s) {
    const std::size_t t = time_of(s);
    const auto active = [&lengths, t](std::size_t b) { return t < lengths[b]; };
    const recurrent::ForwardStep<T> step = history.forward(s);
    recurrent::forward_step(cell, batch, xw.data() + t * width, steps * width, {.packed = &w_hh_packed},
                            b_hh.defined() ? b_hh.data() : nullptr, step, active);
    for (std::size_t b = 0; b < batch; ++b) {
      if (active(b)) std::copy_n(step.h + b * H, H, output.data() + (b * steps + t) * H);
    }
  }
  Array<T> h_n = copy_rows(history.hidden.at(steps), batch, H);
  Array<T> c_n = lstm ? copy_rows(history.cells.at(steps), batch, H) : Array<T>();

  auto backward = [cell, batch, steps, lengths, time_of, bias_index, history = std::move(history)](Node<T>& node) {
    const std::size_t H = cell.hidden, width = cell.gate_width();
    const bool lstm = cell.has_cell_state();
    Array<T> dh = output_grad_or_zeros(node, 1, {batch, H});
    Array<T> dc = lstm ? output_grad_or_zeros(node, 2, {batch, H}) : Array<T>();
    Array<T> dh_other = Array<T>::from_shape({batch, H});
    Array<T> dc_other = lstm ? Array<T>::from_shape({batch, H}) : Array<T>();
    T* dh_now = dh.data();
    T* dh_prev = dh_other.data();
    T* dc_now = lstm ? dc.data() : nullptr;
    T* dc_prev = lstm ? dc_other.data() : nullptr;
    Array<T> dgates = Array<T>::from_shape({steps, batch, width});  // every row is written
    const T* doutput = node.has_output_grad(0) ? node.output_grad(0).data() : nullptr;
    T* dxw = node.needs_grad(0) ? node.input_grad(0).data() : nullptr;
    const blas::PackedMatrix<T> w_hh_packed(node.input(1).data(), false, width, H);  // the factor of dgates W_hh
    for (std::size_t s = steps; s-- > 0;) {
      const std::size_t t = time_of(s);
      const auto active = [&lengths, t](std::size_t b) { return t < lengths[b]; };
      for (std::size_t b = 0; b < batch && doutput != nullptr; ++b) {
        if (!active(b)) continue;
        const T* from = doutput + (b * steps + t) * H;
        for (std::size_t j = 0; j < H; ++j) dh_now[b * H + j] += from[j];
      }
      recurrent::backward_step(cell, batch, history.saved(s), {.packed = &w_hh_packed}, dh_now, dc_now,
                               dgates.data() + s * batch * width, dh_prev, dc_prev,
                               dxw == nullptr ? nullptr : dxw + t * width, steps * width, active);
      std::swap(dh_now, dh_prev);
      std::swap(dc_now, dc_prev);
    }
    if (node.needs_grad(2)) add_to(node.input_grad(2), dh_now);
    if (lstm && node.needs_grad(3)) add_to(node.input_grad(3), dc_now);
    // hidden.at(0 .. steps-1) are adjacent: the states h_{t-1} as [steps * batch, H] rows.
    if (node.needs_grad(1)) {
      blas::gemm<T>(true, false, width, H, steps * batch, T(1), dgates.data(), history.hidden.at(0), T(1),
                    node.input_grad(1).data());
    }
    if (node.input_count() > bias_index && node.needs_grad(bias_index)) {
      blas::add_column_sums(steps * batch, width, dgates.data(), node.input_grad(bias_index).data());
    }
  };

  // Backward reads W_hh; the states and gates it needs are in `history`.
  const ValuesRead reads = reads_only_inputs({1});
  if (lstm) {
    auto [out, h, c] = record<T, 3>("lstm_sequence", {std::move(output), std::move(h_n), std::move(c_n)},
                                    std::move(inputs), std::move(backward), reads);
    return {out, h, c};
  }
  const char* op = cell.kind == CellKind::gru ? "gru_sequence" : "rnn_sequence";
  auto [out, h] =
      record<T, 2>(op, {std::move(output), std::move(h_n)}, std::move(inputs), std::move(backward), reads);
  return {out, h, Tensor<T>()};
}

// One cell step as one node: the input projection, the recurrent GEMM and the row kernels.
// h and c are defined [B, H]; c is used by the LSTM only. Returns h' and (LSTM) c'.
//   dx += dP W_ih; dW_ih += dP^T x; db_ih += sum dP  (P = x W_ih^T + b_ih)
//   dh += direct + d(gates) W_hh; dW_hh += d(gates)^T h; db_hh += sum d(gates); dc += dc_prev
template <class T>
std::array<Tensor<T>, 2> cell_step(const CellMath& cell, const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& c,
                                   const Tensor<T>& w_ih, const Tensor<T>& w_hh, const Tensor<T>& b_ih,
                                   const Tensor<T>& b_hh, const typename RecurrentCell<T>::RoundedWeights& rounded) {
  const std::size_t batch = x.shape()[0], features = x.shape()[1], H = cell.hidden, width = cell.gate_width();
  const bool lstm = cell.has_cell_state();
  std::vector<Tensor<T>> inputs{x, w_ih, w_hh, h};  // then c (LSTM), then b_ih and b_hh (with bias)
  if (lstm) inputs.push_back(c);
  const std::size_t bias_index = inputs.size();
  if (b_ih.defined()) {
    inputs.push_back(b_ih);
    inputs.push_back(b_hh);
  }

  Array<T> projection = xt::zeros<T>({batch, width});
  if (b_ih.defined()) {
    for (std::size_t b = 0; b < batch; ++b) std::copy_n(b_ih.data(), width, projection.data() + b * width);
  }
  if constexpr (std::is_same_v<T, float>) {
    if (rounded.input) {
      require_inference("a recurrent cell step", rounded.input->format(), inputs);
      rounded.input->multiply_add(batch, x.data(), projection.data());
    }
  }
  if (!rounded.input) blas::gemm<T>(false, true, batch, width, features, T(1), x.data(), w_ih.data(), T(1), projection.data());
  StepHistory<T> history(cell, batch, 1, true);
  std::copy_n(h.data(), batch * H, history.hidden.at(0));
  if (lstm) std::copy_n(c.data(), batch * H, history.cells.at(0));
  const auto every_row = [](std::size_t) { return true; };
  recurrent::forward_step(cell, batch, projection.data(), width, {.stored = w_hh.data(), .rounded = rounded.hidden.get()},
                          b_hh.defined() ? b_hh.data() : nullptr, history.forward(0), every_row);
  Array<T> h_next = copy_rows(history.hidden.at(1), batch, H);
  Array<T> c_next = lstm ? copy_rows(history.cells.at(1), batch, H) : Array<T>();

  auto backward = [cell, batch, features, bias_index, every_row, history = std::move(history)](Node<T>& node) {
    const std::size_t H = cell.hidden, width = cell.gate_width();
    const bool lstm = cell.has_cell_state();
    const Array<T> dh = output_grad_or_zeros(node, 0, {batch, H});
    const Array<T> dc = lstm ? output_grad_or_zeros(node, 1, {batch, H}) : Array<T>();
    Array<T> dgates = Array<T>::from_shape({batch, width});
    Array<T> dprojection = xt::zeros<T>({batch, width});
    Array<T> dh_prev = Array<T>::from_shape({batch, H});
    Array<T> dc_prev = lstm ? Array<T>::from_shape({batch, H}) : Array<T>();
    recurrent::backward_step(cell, batch, history.saved(0), {.stored = node.input(2).data()}, dh.data(),
                             lstm ? dc.data() : nullptr, dgates.data(), dh_prev.data(),
                             lstm ? dc_prev.data() : nullptr, dprojection.data(), width, every_row);
    if (node.needs_grad(0)) {
      blas::gemm<T>(false, false, batch, features, width, T(1), dprojection.data(), node.input(1).data(), T(1),
                    node.input_grad(0).data());
    }
    if (node.needs_grad(1)) {
      blas::gemm<T>(true, false, width, features, batch, T(1), dprojection.data(), node.input(0).data(), T(1),
                    node.input_grad(1).data());
    }
    if (node.needs_grad(2)) {
      blas::gemm<T>(true, false, width, H, batch, T(1), dgates.data(), history.hidden.at(0), T(1),
                    node.input_grad(2).data());
    }
    if (node.needs_grad(3)) add_to(node.input_grad(3), dh_prev.data());
    if (lstm && node.needs_grad(4)) add_to(node.input_grad(4), dc_prev.data());
    if (node.input_count() > bias_index) {
      if (node.needs_grad(bias_index)) {
        blas::add_column_sums(batch, width, dprojection.data(), node.input_grad(bias_index).data());
      }
      if (node.needs_grad(bias_index + 1)) {
        blas::add_column_sums(batch, width, dgates.data(), node.input_grad(bias_index + 1).data());
      }
    }
  };

  // Backward reads x and the weights; the states and gates it needs are in `history`.
  const ValuesRead reads = reads_only_inputs({0, 1, 2});
  if (lstm) {
    auto [h_out, c_out] = record<T, 2>("lstm_cell", {std::move(h_next), std::move(c_next)}, std::move(inputs),
                                       std::move(backward), reads);
    return {h_out, c_out};
  }
  const char* op = cell.kind == CellKind::gru ? "gru_cell" : "rnn_cell";
  return {record<T>(op, std::move(h_next), std::move(inputs), std::move(backward), reads), Tensor<T>()};
}

// A cell's parameters: those of one layer, without the _l0 suffix.
// Returned as a tuple, for std::tie into the cell's members.
template <class T, class Register>
auto cell_weights(const char* layer, CellKind kind, const RnnCellOptions& options, Register&& register_parameter) {
  check_sizes(layer, options.input_size, options.hidden_size);
  return std::tuple_cat(make_weights<T>(register_parameter, CellMath{kind, options.nonlinearity, options.hidden_size},
                                        options.input_size, options.bias, ""));
}

// Checks a cell's inputs (x [B, input_size], h and c undefined or [B, H]) and runs the step
// from zero states where none are given.
template <class T>
std::array<Tensor<T>, 2> run_cell(const char* layer, const CellMath& cell, const RnnCellOptions& options,
                                  const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& c,
                                  const std::array<Tensor<T>, 4>& weights,
                                  const typename RecurrentCell<T>::RoundedWeights& rounded) {
  if (x.dim() != 2 || x.shape()[1] != options.input_size) {
    throw shape_error(detail::message(layer, ": x has shape ", x.shape(), "; expected [batch, input_size = ",
                                      options.input_size, "]"));
  }
  const Shape state_shape{x.shape()[0], options.hidden_size};
  check_state(layer, "h", h, state_shape, "[batch, hidden_size]");
  check_state(layer, "c", c, state_shape, "[batch, hidden_size]");
  const auto or_zeros = [&](const Tensor<T>& state) { return state.defined() ? state : Tensor<T>::zeros(state_shape); };
  return cell_step(cell, x, or_zeros(h), cell.has_cell_state() ? or_zeros(c) : Tensor<T>(), weights[0], weights[1],
                   weights[2], weights[3], rounded);
}

}  // namespace

std::string to_string(CellKind kind) { return kind_names[kind_index(kind, "to_string")]; }

CellKind cell_kind_from_string(const std::string& name) {
  for (std::size_t index = 0; index < kind_names.size(); ++index) {
    if (name == kind_names[index]) return static_cast<CellKind>(index);
  }
  throw std::invalid_argument(detail::message("cell '", name, "' is not one of: ", kind_choices()));
}

template <class T>
RecurrentBase<T>::RecurrentBase(const RnnOptions& options, CellKind kind) : options_(options), kind_(kind) {
  const CellMath math{kind, options.nonlinearity, options.hidden_size};
  const char* layer = layer_name(kind);
  check_sizes(layer, options.input_size, options.hidden_size);
  if (options.num_layers == 0) {
    throw std::invalid_argument(detail::message(layer, ": num_layers (0) must be positive"));
  }
  if (!(options.dropout >= 0.0 && options.dropout <= 1.0)) {
    throw std::invalid_argument(detail::message(layer, ": dropout = ", options.dropout, " must lie in [0, 1]"));
  }
  const std::size_t directions = options.bidirectional ? 2 : 1;
  const auto register_parameter = [this](const std::string& name, Tensor<T> tensor) {
    return this->register_parameter(name, tensor);
  };
  for (std::size_t layer_index = 0; layer_index < options.num_layers; ++layer_index) {
    const std::size_t input_size = layer_index == 0 ? options.input_size : directions * options.hidden_size;
    for (std::size_t direction = 0; direction < directions; ++direction) {
      const std::string suffix = "_l" + std::to_string(layer_index) + (direction == 1 ? "_reverse" : "");
      weights_.push_back(make_weights<T>(register_parameter, math, input_size, options.bias, suffix));
    }
  }
}

template <class T>
RnnOutput<T> RecurrentBase<T>::run(const Tensor<T>& x, const std::vector<std::size_t>& lengths,
                                   const RecurrentState<T>& initial) const {
  const CellMath cell{kind_, options_.nonlinearity, options_.hidden_size};
  const char* layer = layer_name(kind_);
  const Tensor<T>& h0 = initial.h;
  const Tensor<T>& c0 = initial.c;
  const bool batch_first = options_.batch_first;
  if (x.dim() != 3 || x.shape()[2] != options_.input_size) {
    throw shape_error(detail::message(layer, ": x has shape ", x.shape(), "; expected ",
                                      batch_first ? "[batch, time" : "[time, batch",
                                      ", input_size = ", options_.input_size, "]"));
  }
  const std::size_t batch = x.shape()[batch_first ? 0 : 1], steps = x.shape()[batch_first ? 1 : 0];
  if (!lengths.empty() && lengths.size() != batch) {
    throw shape_error(detail::message(layer, ": ", lengths.size(), " lengths for x of shape ", x.shape(), " (batch ",
                                      batch, ")"));
  }
  for (std::size_t b = 0; b < lengths.size(); ++b) {
    if (lengths[b] > steps) {
      throw shape_error(detail::message(layer, ": length ", lengths[b], " of sequence ", b, " exceeds the ", steps,
                                        " steps of x of shape ", x.shape()));
    }
  }
  const std::size_t directions = options_.bidirectional ? 2 : 1;
  const Shape state_shape{options_.num_layers * directions, batch, options_.hidden_size};
  check_state(layer, "h0", h0, state_shape, "[num_layers * directions, batch, hidden_size]");
  if (cell.has_cell_state()) check_state(layer, "c0", c0, state_shape, "[num_layers * directions, batch, hidden_size]");

  const std::vector<std::size_t> valid_steps = lengths.empty() ? std::vector<std::size_t>(batch, steps) : lengths;
  const Tensor<T> zero_state = Tensor<T>::zeros({batch, options_.hidden_size});
  // The recurrence runs batch-first; a sequence-first x and output are transposed here only.
  Tensor<T> layer_input = batch_first ? x : transpose(x, 0, 1);
  std::vector<Tensor<T>> h_n, c_n;
  for (std::size_t layer_index = 0; layer_index < options_.num_layers; ++layer_index) {
    std::vector<Tensor<T>> outputs;
    for (std::size_t direction = 0; direction < directions; ++direction) {
      const std::size_t k = layer_index * directions + direction;  // PyTorch's order of h_n
      const auto& [w_ih, w_hh, b_ih, b_hh] = weights_[k];
      const auto initial = [k, &zero_state](const Tensor<T>& state) {
        return state.defined() ? select(state, 0, static_cast<std::int64_t>(k)) : zero_state;
      };
      SequenceResult<T> result =
          recurrence(cell, linear(layer_input, w_ih, b_ih), w_hh, b_hh, initial(h0),
                     cell.has_cell_state() ? initial(c0) : Tensor<T>(), valid_steps, direction == 1);
      outputs.push_back(result.output);
      h_n.push_back(result.h_n);
      if (cell.has_cell_state()) c_n.push_back(result.c_n);
    }
    Tensor<T> layer_output = directions == 1 ? outputs[0] : concat(outputs, 2);
    const bool last = layer_index + 1 == options_.num_layers;
    layer_input = last ? layer_output : dropout(layer_output, options_.dropout, this->is_training());
  }
  return {batch_first ? layer_input : transpose(layer_input, 0, 1), stack(h_n, 0),
          cell.has_cell_state() ? stack(c_n, 0) : Tensor<T>()};
}

template <class T>
RNN<T>::RNN(const RnnOptions& options) : RecurrentBase<T>(options, CellKind::rnn) {}

template <class T>
RnnOutput<T> RNN<T>::forward(const Tensor<T>& x, const std::vector<std::size_t>& lengths, const Tensor<T>& h0) const {
  return this->run(x, lengths, {.h = h0});
}

template <class T>
LSTM<T>::LSTM(const RnnOptions& options) : RecurrentBase<T>(options, CellKind::lstm) {}

template <class T>
RnnOutput<T> LSTM<T>::forward(const Tensor<T>& x, const std::vector<std::size_t>& lengths, const Tensor<T>& h0,
                              const Tensor<T>& c0) const {
  return this->run(x, lengths, {.h = h0, .c = c0});
}

template <class T>
GRU<T>::GRU(const RnnOptions& options) : RecurrentBase<T>(options, CellKind::gru) {}

template <class T>
RnnOutput<T> GRU<T>::forward(const Tensor<T>& x, const std::vector<std::size_t>& lengths, const Tensor<T>& h0) const {
  return this->run(x, lengths, {.h = h0});
}

template <class T>
void RecurrentCell<T>::use_weight_format(WeightFormat format) {
  rounded_ = {};
  if constexpr (std::is_same_v<T, float>) {
    if (format == WeightFormat::float32) return;
    for (const auto& [name, parameter] : this->named_parameters()) {
      if (name == "weight_ih") rounded_.input = std::make_shared<const QuantizedMatrix>(parameter.value(), format);
      if (name == "weight_hh") rounded_.hidden = std::make_shared<const QuantizedMatrix>(parameter.value(), format);
    }
  }
}

template <class T>
RNNCell<T>::RNNCell(const RnnCellOptions& options) : options_(options) {
  const auto add = [this](const std::string& name, Tensor<T> tensor) { return this->register_parameter(name, tensor); };
  std::tie(weight_ih, weight_hh, bias_ih, bias_hh) = cell_weights<T>("RNNCell", CellKind::rnn, options, add);
}

template <class T>
LSTMCell<T>::LSTMCell(const RnnCellOptions& options) : options_(options) {
  const auto add = [this](const std::string& name, Tensor<T> tensor) { return this->register_parameter(name, tensor); };
  std::tie(weight_ih, weight_hh, bias_ih, bias_hh) = cell_weights<T>("LSTMCell", CellKind::lstm, options, add);
}

template <class T>
GRUCell<T>::GRUCell(const RnnCellOptions& options) : options_(options) {
  const auto add = [this](const std::string& name, Tensor<T> tensor) { return this->register_parameter(name, tensor); };
  std::tie(weight_ih, weight_hh, bias_ih, bias_hh) = cell_weights<T>("GRUCell", CellKind::gru, options, add);
}

template <class T>
Tensor<T> RNNCell<T>::forward(const Tensor<T>& x, const Tensor<T>& h) const {
  const CellMath cell{CellKind::rnn, options_.nonlinearity, options_.hidden_size};
  return run_cell("RNNCell", cell, options_, x, h, {}, {weight_ih, weight_hh, bias_ih, bias_hh}, this->rounded_weights())[0];
}

template <class T>
RecurrentState<T> RNNCell<T>::step(const Tensor<T>& x, const RecurrentState<T>& state) const {
  return {.h = forward(x, state.h)};
}

template <class T>
std::pair<Tensor<T>, Tensor<T>> LSTMCell<T>::forward(const Tensor<T>& x, const Tensor<T>& h, const Tensor<T>& c) const {
  const auto [h_next, c_next] = run_cell("LSTMCell", CellMath{.kind = CellKind::lstm, .hidden = options_.hidden_size},
                                         options_, x, h, c, {weight_ih, weight_hh, bias_ih, bias_hh}, this->rounded_weights());
  return {h_next, c_next};
}

template <class T>
RecurrentState<T> LSTMCell<T>::step(const Tensor<T>& x, const RecurrentState<T>& state) const {
  auto [h_next, c_next] = forward(x, state.h, state.c);
  return {.h = std::move(h_next), .c = std::move(c_next)};
}

template <class T>
Tensor<T> GRUCell<T>::forward(const Tensor<T>& x, const Tensor<T>& h) const {
  return run_cell("GRUCell", CellMath{.kind = CellKind::gru, .hidden = options_.hidden_size}, options_, x, h, {},
                  {weight_ih, weight_hh, bias_ih, bias_hh}, this->rounded_weights())[0];
}

template <class T>
RecurrentState<T> GRUCell<T>::step(const Tensor<T>& x, const RecurrentState<T>& state) const {
  return {.h = forward(x, state.h)};
}

namespace {

// The one place that maps a kind to its class, for layers and cells alike.
template <class Interface, class Rnn, class Lstm, class Gru, class Options>
std::unique_ptr<Interface> make_of_kind(CellKind kind, const Options& options, const char* where) {
  switch (kind) {
    case CellKind::rnn: return std::make_unique<Rnn>(options);
    case CellKind::lstm: return std::make_unique<Lstm>(options);
    case CellKind::gru: return std::make_unique<Gru>(options);
  }
  refuse_kind(kind, where);
}

}  // namespace

template <class T>
std::unique_ptr<RecurrentLayer<T>> make_recurrent_layer(CellKind kind, const RnnOptions& options) {
  return make_of_kind<RecurrentLayer<T>, RNN<T>, LSTM<T>, GRU<T>>(kind, options, "make_recurrent_layer");
}

template <class T>
std::unique_ptr<RecurrentCell<T>> make_recurrent_cell(CellKind kind, const RnnCellOptions& options) {
  return make_of_kind<RecurrentCell<T>, RNNCell<T>, LSTMCell<T>, GRUCell<T>>(kind, options, "make_recurrent_cell");
}

template std::unique_ptr<RecurrentLayer<float>> make_recurrent_layer(CellKind, const RnnOptions&);
template std::unique_ptr<RecurrentLayer<double>> make_recurrent_layer(CellKind, const RnnOptions&);
template std::unique_ptr<RecurrentCell<float>> make_recurrent_cell(CellKind, const RnnCellOptions&);
template std::unique_ptr<RecurrentCell<double>> make_recurrent_cell(CellKind, const RnnCellOptions&);
template class RecurrentCell<float>;
template class RecurrentCell<double>;
template class RecurrentBase<float>;
template class RecurrentBase<double>;
template class RNN<float>;
template class RNN<double>;
template class LSTM<float>;
template class LSTM<double>;
template class GRU<float>;
template class GRU<double>;
template class RNNCell<float>;
template class RNNCell<double>;
template class LSTMCell<float>;
template class LSTMCell<double>;
template class GRUCell<float>;
template class GRUCell<double>;

}  // namespace xgrad::nn
