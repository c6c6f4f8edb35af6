#pragma once
// Matrix products on BLAS. Transposes are GEMM flags, never copies, and backward
// accumulates both gradients with GEMM at beta = 1 straight into the gradient buffers.

#include "xgrad/framework/tensor.h"

namespace xgrad {

struct MatmulOptions {
  bool transpose_a = false;  // use the transpose of each matrix of a
  bool transpose_b = false;  // use the transpose of each matrix of b (Linear: x W^T)
};

// op(a) @ op(b) for
//   [m, k] x [k, n]       -> [m, n]
//   [B, m, k] x [B, k, n] -> [B, m, n]   (one product per batch entry)
//   [B, m, k] x [k, n]    -> [B, m, n]   (b shared by the batch: one GEMM over B*m rows)
//   [m, k] x [B, k, n]    -> [B, m, n]   (a shared by the batch)
// with the shapes read after applying the transpose options.
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, const MatmulOptions& options = {});

// y = x W^T + b over any leading dimensions: x [..., in], weight [out, in] (PyTorch's
// layout), bias [out] or undefined -> [..., out]. One GEMM forward and one per gradient,
// with no reshaping copies.
template <class T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias = {});

}  // namespace xgrad
