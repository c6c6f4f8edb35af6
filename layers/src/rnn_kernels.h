#pragma once
// One recurrent step, forward and backward, shared by the fused sequence kernels and the
// single-step cells (rnn.cpp). A step is one product with W_hh for the whole batch (in a
// sequence W_hh packed once for all steps: packed_matrix.h), then per batch row one pass
// over contiguous vectors of hidden units with the gate nonlinearities and the state update
// (the row kernels, compiled for each instruction set: isa.h), or their derivatives. A row kernel handles `units` hidden units whose
// gates lie `stride` values apart (H, or fewer units when the forward step splits the hidden
// units over threads). The row kernels' loops carry no dependence from one j to the next;
// `omp simd` says so, since the compiler cannot prove that their many row pointers do not
// overlap and otherwise leaves them scalar.
//
// Gate layouts follow PyTorch: LSTM i, f, g, o; GRU r, z, n. `gates` enters the forward
// functions holding the pre-activations (for the GRU: r and z pre-activations, then
// hn = W_hn h + b_hn, which r multiplies) and leaves holding what backward reads: the
// activated gates (the GRU keeps hn as it is).

#include <algorithm>
#include <type_traits>
#include <cmath>
#include <cstddef>

#include "xgrad/framework/blas.h"
#include "xgrad/framework/fast_math.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/packed_matrix.h"
#include "xgrad/framework/quantized.h"
#include "xgrad/framework/threading.h"
#include "xgrad/layers/rnn.h"

namespace xgrad::nn::recurrent {

struct CellMath {
  CellKind kind = CellKind::lstm;
  RnnNonlinearity nonlinearity = RnnNonlinearity::tanh;  // RNN only
  std::size_t hidden = 0;

  std::size_t gates() const noexcept { return gate_count(kind); }
  std::size_t gate_width() const noexcept { return gates() * hidden; }
  bool has_cell_state() const noexcept { return kind == CellKind::lstm; }
};

// The buffers of one batch row in the forward pass (null where the cell has no such state).
template <class T>
struct ForwardRow {
  T* gates = nullptr;            // [G*H] pre-activations in, saved gates out
  const T* input_n = nullptr;    // GRU: W_in x + b_in [H]
  T* candidate = nullptr;        // GRU: n [H], out
  const T* h_prev = nullptr;     // [H]
  T* h = nullptr;                // [H], out
  const T* c_prev = nullptr;     // LSTM [H]
  T* c = nullptr;                // LSTM [H], out
};

// What the forward pass left for one batch row, read by the backward pass.
template <class T>
struct SavedRow {
  const T* gates = nullptr;
  const T* candidate = nullptr;  // GRU
  const T* h_prev = nullptr;
  const T* h = nullptr;
  const T* c_prev = nullptr;     // LSTM
  const T* c = nullptr;          // LSTM
};

// Gradients of one batch row. The outputs are assigned, except dinput_n, which is added to
// the input projection's gradient (when that is wanted: dinput_n is null otherwise).
template <class T>
struct BackwardRow {
  const T* dh = nullptr;         // d objective / d h', all paths summed
  const T* dc = nullptr;         // LSTM: d objective / d c' arriving from later steps
  T* dgates = nullptr;           // out [G*H]: d of the hidden-side pre-activations (GRU: r, z, hn)
  T* dinput_n = nullptr;         // GRU [H]: += d(W_in x + b_in)
  T* dh_prev = nullptr;          // out [H]: the part of dh_prev that does not pass through W_hh
  T* dc_prev = nullptr;          // out, LSTM [H]
};

// h' = act(pre)
template <Isa isa>
struct RnnForward {
  template <class T>
  XGRAD_KERNEL static void run(RnnNonlinearity nonlinearity, std::size_t units, const ForwardRow<T>& row) {
#pragma omp simd
    for (std::size_t j = 0; j < units; ++j) {
      const T pre = row.gates[j];
      row.h[j] = nonlinearity == RnnNonlinearity::relu ? (pre > T(0) ? pre : T(0)) : math::tanh(pre);
    }
  }
};

// dpre = dh' * act'(pre), from h': tanh' = 1 - h'^2, relu' = [h' > 0]
template <Isa isa>
struct RnnBackward {
  template <class T>
  XGRAD_KERNEL static void run(RnnNonlinearity nonlinearity, std::size_t units, const SavedRow<T>& saved,
                               const BackwardRow<T>& grad) {
#pragma omp simd
    for (std::size_t j = 0; j < units; ++j) {
      const T h = saved.h[j];
      const T slope = nonlinearity == RnnNonlinearity::relu ? (h > T(0) ? T(1) : T(0)) : T(1) - h * h;
      grad.dgates[j] = grad.dh[j] * slope;
      grad.dh_prev[j] = T(0);
    }
  }
};

// i, f, o = sigmoid; g = tanh; c' = f * c + i * g; h' = o * tanh(c')
template <Isa isa>
struct LstmForward {
  template <class T>
  XGRAD_KERNEL static void run(std::size_t units, std::size_t stride, const ForwardRow<T>& row) {
    T* i = row.gates;
    T* f = i + stride;
    T* g = f + stride;
    T* o = g + stride;
#pragma omp simd
    for (std::size_t j = 0; j < units; ++j) {
      i[j] = math::sigmoid(i[j]);
      f[j] = math::sigmoid(f[j]);
      g[j] = math::tanh(g[j]);
      o[j] = math::sigmoid(o[j]);
      const T c = f[j] * row.c_prev[j] + i[j] * g[j];
      row.c[j] = c;
      row.h[j] = o[j] * math::tanh(c);
    }
  }
};

// dc_all = dc' + dh' o (1 - tanh(c')^2); dc_prev = dc_all f;
// d(i, f, g) pre-activations = dc_all (g i (1 - i), c_prev f (1 - f), i (1 - g^2));
// d(o) pre-activation = dh' tanh(c') o (1 - o)
template <Isa isa>
struct LstmBackward {
  template <class T>
  XGRAD_KERNEL static void run(std::size_t units, std::size_t stride, const SavedRow<T>& saved, const BackwardRow<T>& grad) {
    const T* i = saved.gates;
    const T* f = i + stride;
    const T* g = f + stride;
    const T* o = g + stride;
    T* di = grad.dgates;
    T* df = di + stride;
    T* dg = df + stride;
    T* d_o = dg + stride;
#pragma omp simd
    for (std::size_t j = 0; j < units; ++j) {
      const T tanh_c = math::tanh(saved.c[j]);
      const T dc_all = grad.dc[j] + grad.dh[j] * o[j] * (T(1) - tanh_c * tanh_c);
      di[j] = dc_all * g[j] * i[j] * (T(1) - i[j]);
      df[j] = dc_all * saved.c_prev[j] * f[j] * (T(1) - f[j]);
      dg[j] = dc_all * i[j] * (T(1) - g[j] * g[j]);
      d_o[j] = grad.dh[j] * tanh_c * o[j] * (T(1) - o[j]);
      grad.dc_prev[j] = dc_all * f[j];
      grad.dh_prev[j] = T(0);
    }
  }
};

// r, z = sigmoid; n = tanh(xn + r * hn); h' = (1 - z) * n + z * h
template <Isa isa>
struct GruForward {
  template <class T>
  XGRAD_KERNEL static void run(std::size_t units, std::size_t stride, const ForwardRow<T>& row) {
    T* r = row.gates;
    T* z = r + stride;
    const T* hn = z + stride;
#pragma omp simd
    for (std::size_t j = 0; j < units; ++j) {
      r[j] = math::sigmoid(r[j]);
      z[j] = math::sigmoid(z[j]);
      const T n = math::tanh(row.input_n[j] + r[j] * hn[j]);
      row.candidate[j] = n;
      row.h[j] = (T(1) - z[j]) * n + z[j] * row.h_prev[j];
    }
  }
};

// dn_pre = dh' (1 - z) (1 - n^2); dxn += dn_pre; dhn = dn_pre * r;
// dr_pre = dn_pre hn r (1 - r); dz_pre = dh' (h - n) z (1 - z); dh (direct) = dh' z
template <Isa isa>
struct GruBackward {
  template <class T>
  XGRAD_KERNEL static void run(std::size_t units, std::size_t stride, const SavedRow<T>& saved, const BackwardRow<T>& grad) {
    const T* r = saved.gates;
    const T* z = r + stride;
    const T* hn = z + stride;
    T* dr = grad.dgates;
    T* dz = dr + stride;
    T* dhn = dz + stride;
#pragma omp simd
    for (std::size_t j = 0; j < units; ++j) {
      const T n = saved.candidate[j];
      const T dh = grad.dh[j];
      const T dn_pre = dh * (T(1) - z[j]) * (T(1) - n * n);
      if (grad.dinput_n != nullptr) grad.dinput_n[j] += dn_pre;
      dhn[j] = dn_pre * r[j];
      dr[j] = dn_pre * hn[j] * r[j] * (T(1) - r[j]);
      dz[j] = dh * (saved.h_prev[j] - n) * z[j] * (T(1) - z[j]);
      grad.dh_prev[j] = dh * z[j];
    }
  }
};

// The buffers of one step for the whole batch, rows of H (gates: G*H) values; null where
// the cell has no such state. ForwardStep is written by forward_step; SavedStep is what
// backward_step reads back.
template <class T>
struct ForwardStep {
  T* gates = nullptr;
  T* candidates = nullptr;  // GRU
  const T* h_prev = nullptr;
  T* h = nullptr;
  const T* c_prev = nullptr;  // LSTM
  T* c = nullptr;             // LSTM
};

template <class T>
struct SavedStep {
  const T* gates = nullptr;
  const T* candidates = nullptr;
  const T* h_prev = nullptr;
  const T* h = nullptr;
  const T* c_prev = nullptr;
  const T* c = nullptr;
};

// Row `row` of a buffer of rows of `width` values, from column `column` on, or null for a
// buffer the cell lacks.
template <class P>
P row_of(P rows, std::size_t row, std::size_t width, std::size_t column = 0) {
  return rows == nullptr ? nullptr : rows + row * width + column;
}

// How many leading columns of the gates take the input projection: the GRU's n gate takes
// W_in x + b_in apart from the hidden side, because r multiplies only W_hn h + b_hn.
inline std::size_t input_columns(const CellMath& cell) {
  return cell.kind == CellKind::gru ? 2 * cell.hidden : cell.gate_width();
}

// Blocks of hidden units that make up at least `grain` multiply-adds of the recurrent
// product, given the multiply-adds per block: the forward step hands out whole blocks.
inline std::size_t blocks_for_grain(std::size_t multiply_adds_per_block) {
  return rows_for_grain(multiply_adds_per_block, multiply_add_grain);
}

// W_hh as a step multiplies by it: packed once for all the steps of a sequence, or as
// stored [G*H, H] for a single cell step, where packing would cost as much as the product
// and a batch of one is a matrix-vector product that streams W_hh once (blas::gemm).
template <class T>
struct RecurrentWeights {
  const blas::PackedMatrix<T>* packed = nullptr;  // forward: H x G*H (h W_hh^T); backward: G*H x H
  const T* stored = nullptr;                      // when not packed
  const QuantizedMatrix* rounded = nullptr;       // forward of a float cell step: W_hh in its weight format
};

// One step for the whole batch: gates = x-projection + b_hh + h_prev W_hh^T, then the row
// kernels. The hidden units are split into blocks of the packing's panel width; with packed
// weights each thread computes all gates of its units for every row and runs the row kernels
// on them, so that a step is one fork and join and a unit's gates never leave the thread that
// computed them. input_rows: row b of the input projection W_ih x + b_ih starts at
// input_rows + b * input_stride. Rows with active(b) false keep their state (h = h_prev,
// c = c_prev): padded steps of shorter sequences.
template <class T, class Active>
void forward_step(const CellMath& cell, std::size_t batch, const T* input_rows, std::size_t input_stride,
                  const RecurrentWeights<T>& w_hh, const T* b_hh, const ForwardStep<T>& step, Active active) {
  const std::size_t H = cell.hidden;
  const std::size_t width = cell.gate_width();
  const std::size_t from_input = input_columns(cell);
  // gates[b][g*H + j] = input projection (0 for the GRU's hidden-side n) + b_hh, first <= j < end
  const auto start_gates = [&](std::size_t first, std::size_t end) {
    for (std::size_t b = 0; b < batch; ++b) {
      for (std::size_t g = 0; g < cell.gates(); ++g) {
        const std::size_t column = g * H + first;
        T* gates = step.gates + b * width + column;
        if (column < from_input) {
          std::copy_n(input_rows + b * input_stride + column, end - first, gates);
        } else {
          std::fill_n(gates, end - first, T(0));
        }
        if (b_hh != nullptr) {
          for (std::size_t j = 0; j < end - first; ++j) gates[j] += b_hh[column + j];
        }
      }
    }
  };
  if (w_hh.packed == nullptr) {
    start_gates(0, H);
    if constexpr (std::is_same_v<T, float>) {
      if (w_hh.rounded != nullptr) w_hh.rounded->multiply_add(batch, step.h_prev, step.gates);
    }
    if (w_hh.rounded == nullptr) blas::gemm<T>(false, true, batch, width, H, T(1), step.h_prev, w_hh.stored, T(1), step.gates);
  }
  const std::size_t block = blas::PackedMatrix<T>::panel_width();
  const std::size_t blocks = (H + block - 1) / block;
  const std::size_t grain = w_hh.packed != nullptr ? blocks_for_grain(batch * cell.gates() * block * H)
                                                   : rows_for_grain(batch * cell.gates() * block, transcendental_grain);
  parallel_for(blocks, grain, [&](std::size_t first_block, std::size_t end_block) {
    const std::size_t first = first_block * block, end = std::min(end_block * block, H), units = end - first;
    if (w_hh.packed != nullptr) {
      start_gates(first, end);
      for (std::size_t g = 0; g < cell.gates(); ++g) {
        w_hh.packed->multiply_add(batch, step.h_prev, H, g * H + first, g * H + end, step.gates, width);
      }
    }
    for (std::size_t b = 0; b < batch; ++b) {
      if (!active(b)) {
        std::copy_n(step.h_prev + b * H + first, units, step.h + b * H + first);
        if (step.c != nullptr) std::copy_n(step.c_prev + b * H + first, units, step.c + b * H + first);
        continue;
      }
      const T* input = input_rows + b * input_stride;
      const ForwardRow<T> row{.gates = step.gates + b * width + first,
                              .input_n = cell.kind == CellKind::gru ? input + from_input + first : nullptr,
                              .candidate = row_of(step.candidates, b, H, first),
                              .h_prev = step.h_prev + b * H + first,
                              .h = step.h + b * H + first,
                              .c_prev = row_of(step.c_prev, b, H, first),
                              .c = row_of(step.c, b, H, first)};
      switch (cell.kind) {
        case CellKind::lstm: dispatch<LstmForward>(units, H, row); break;
        case CellKind::gru: dispatch<GruForward>(units, H, row); break;
        case CellKind::rnn: dispatch<RnnForward>(cell.nonlinearity, units, row); break;
      }
    }
  });
}

// Backward through one step for the whole batch, given dh (dc) reaching h (c) of this step:
//   dgates   [B, G*H]  d of the hidden-side pre-activations (0 on inactive rows)
//   dh_prev  [B, H]    = direct part + dgates W_hh; inactive rows pass dh on
//   dc_prev  [B, H]    LSTM; inactive rows pass dc on
//   dinput_rows        += d of the input projection, row b at dinput_rows + b * dinput_stride
//                      (skipped when null)
// The product needs every gate of a row, so with packed weights it is a second split, over
// blocks of dh_prev's columns.
template <class T, class Active>
void backward_step(const CellMath& cell, std::size_t batch, const SavedStep<T>& saved,
                   const RecurrentWeights<T>& w_hh, const T* dh, const T* dc, T* dgates, T* dh_prev, T* dc_prev,
                   T* dinput_rows, std::size_t dinput_stride, Active active) {
  const std::size_t H = cell.hidden;
  const std::size_t width = cell.gate_width();
  const std::size_t from_input = input_columns(cell);
  parallel_for(batch, rows_for_grain(width, transcendental_grain), [&](std::size_t first_row, std::size_t end_row) {
    for (std::size_t b = first_row; b < end_row; ++b) {
      T* dgates_row = dgates + b * width;
      if (!active(b)) {
        std::fill_n(dgates_row, width, T(0));
        std::copy_n(dh + b * H, H, dh_prev + b * H);
        if (dc_prev != nullptr) std::copy_n(dc + b * H, H, dc_prev + b * H);
        continue;
      }
      T* dinput = row_of(dinput_rows, b, dinput_stride);
      const SavedRow<T> row{.gates = saved.gates + b * width,
                            .candidate = row_of(saved.candidates, b, H),
                            .h_prev = saved.h_prev + b * H,
                            .h = saved.h + b * H,
                            .c_prev = row_of(saved.c_prev, b, H),
                            .c = row_of(saved.c, b, H)};
      const BackwardRow<T> grad{.dh = dh + b * H,
                                .dc = row_of(dc, b, H),
                                .dgates = dgates_row,
                                .dinput_n = dinput == nullptr ? nullptr : dinput + from_input,
                                .dh_prev = dh_prev + b * H,
                                .dc_prev = row_of(dc_prev, b, H)};
      switch (cell.kind) {
        case CellKind::lstm: dispatch<LstmBackward>(H, H, row, grad); break;
        case CellKind::gru: dispatch<GruBackward>(H, H, row, grad); break;
        case CellKind::rnn: dispatch<RnnBackward>(cell.nonlinearity, H, row, grad); break;
      }
      if (dinput != nullptr) {
        for (std::size_t k = 0; k < from_input; ++k) dinput[k] += dgates_row[k];
      }
    }
  });
  if (w_hh.packed == nullptr) {
    blas::gemm<T>(false, false, batch, H, width, T(1), dgates, w_hh.stored, T(1), dh_prev);
    return;
  }
  const std::size_t block = blas::PackedMatrix<T>::panel_width();
  const std::size_t blocks = (H + block - 1) / block;
  parallel_for(blocks, blocks_for_grain(batch * width * block), [&](std::size_t first_block, std::size_t end_block) {
    w_hh.packed->multiply_add(batch, dgates, width, first_block * block, std::min(end_block * block, H), dh_prev, H);
  });
}

}  // namespace xgrad::nn::recurrent
