#include "xgrad/framework/matmul.h"

#include <algorithm>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/blas.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/threading.h"

namespace xgrad {
namespace {

// The GEMMs one matmul runs: `batches` products of op(A) [m, k] and op(B) [k, n], stepping
// through a, b and c by the given element strides (0 for an operand shared by the batch).
struct MatmulPlan {
  std::size_t batches, m, n, k;
  std::size_t a_step, b_step, c_step;
  Shape result;
};

MatmulPlan plan_matmul(const Shape& a, const Shape& b, const MatmulOptions& options) {
  auto describe = [&] {
    return detail::message("matmul: a of shape ", a, (options.transpose_a ? " (transposed)" : ""), " and b of shape ",
                           b, (options.transpose_b ? " (transposed)" : ""));
  };
  const bool a_ok = a.size() == 2 || a.size() == 3;
  const bool b_ok = b.size() == 2 || b.size() == 3;
  if (!a_ok || !b_ok) throw shape_error(describe() + ": each must be a matrix [m, k] or a batch [B, m, k]");
  const std::size_t a_rows = a[a.size() - 2], a_cols = a.back();
  const std::size_t b_rows = b[b.size() - 2], b_cols = b.back();
  MatmulPlan plan{};
  plan.m = options.transpose_a ? a_cols : a_rows;
  plan.k = options.transpose_a ? a_rows : a_cols;
  plan.n = options.transpose_b ? b_rows : b_cols;
  const std::size_t b_inner = options.transpose_b ? b_cols : b_rows;
  if (plan.k != b_inner) {
    throw shape_error(describe() + detail::message(": op(a) has ", plan.k, " columns but op(b) has ", b_inner, " rows"));
  }
  const std::size_t a_batch = a.size() == 3 ? a[0] : 0;
  const std::size_t b_batch = b.size() == 3 ? b[0] : 0;
  if (a_batch != 0 && b_batch != 0 && a_batch != b_batch) {
    throw shape_error(describe() + detail::message(": batch sizes ", a_batch, " and ", b_batch, " differ"));
  }
  const std::size_t batch = std::max(a_batch, b_batch);
  plan.result = batch == 0 ? Shape{plan.m, plan.n} : Shape{batch, plan.m, plan.n};
  plan.batches = std::max<std::size_t>(batch, 1);
  plan.a_step = a_batch != 0 ? plan.m * plan.k : 0;
  plan.b_step = b_batch != 0 ? plan.k * plan.n : 0;
  plan.c_step = plan.m * plan.n;
  if (a_batch != 0 && b_batch == 0 && !options.transpose_a) {
    // A batch of row-major [m, k] matrices is one [B*m, k] matrix: a single, larger GEMM.
    plan.m *= plan.batches;
    plan.batches = 1;
    plan.a_step = plan.c_step = 0;
  }
  return plan;
}

// Runs product(i) for the `batches` products of a batched matmul, `multiply_adds` each. Below
// multiply_add_grain OpenBLAS runs a product on one thread, and its per-call overhead is a
// good part of the cost (attention's per-head [T, d] x [d, T]): such products are shared out
// over the threads by batch, one thread each. Larger ones go in turn, each on all threads.
// Products that write the same memory (the gradient of an operand the batch shares) go in turn.
template <class Product>
void for_each_product(std::size_t batches, std::size_t multiply_adds, bool write_disjoint, Product product) {
  if (write_disjoint && batches > 1 && multiply_adds < multiply_add_grain) {
    parallel_for(batches, rows_for_grain(multiply_adds, multiply_add_grain), [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) product(i);
    });
    return;
  }
  for (std::size_t i = 0; i < batches; ++i) product(i);
}

}  // namespace

// C = op(A) op(B); d op(A) += dC op(B)^T; d op(B) += op(A)^T dC
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b, const MatmulOptions& options) {
  const MatmulPlan plan = plan_matmul(a.shape(), b.shape(), options);
  const bool ta = options.transpose_a, tb = options.transpose_b;
  Array<T> c = Array<T>::from_shape(plan.result);
  const std::size_t multiply_adds = plan.m * plan.n * plan.k;
  const T* pa = a.data();
  const T* pb = b.data();
  T* pc = c.data();
  for_each_product(plan.batches, multiply_adds, true, [&](std::size_t i) {
    blas::gemm<T>(ta, tb, plan.m, plan.n, plan.k, T(1), pa + i * plan.a_step, pb + i * plan.b_step, T(0),
                  pc + i * plan.c_step);
  });
  return record<T>("matmul", std::move(c), {a, b}, [plan, ta, tb, multiply_adds](Node<T>& node) {
    const T* pa = node.input(0).data();
    const T* pb = node.input(1).data();
    const T* gc = node.output_grad().data();
    // Plain variables, not a structured binding: the products' lambdas capture them, and
    // clang before version 16 cannot capture a binding.
    const std::size_t batches = plan.batches, m = plan.m, n = plan.n, k = plan.k;
    const std::size_t a_step = plan.a_step, b_step = plan.b_step, c_step = plan.c_step;
    if (node.needs_grad(0)) {
      T* ga = node.input_grad(0).data();
      for_each_product(batches, multiply_adds, a_step != 0, [&](std::size_t i) {
        const T* dc = gc + i * c_step;
        const T* bi = pb + i * b_step;
        if (ta) {
          blas::gemm<T>(tb, true, k, m, n, T(1), bi, dc, T(1), ga + i * a_step);  // dA += op(B) dC^T
        } else {
          blas::gemm<T>(false, !tb, m, k, n, T(1), dc, bi, T(1), ga + i * a_step);  // dA += dC op(B)^T
        }
      });
    }
    if (node.needs_grad(1)) {
      T* gb = node.input_grad(1).data();
      for_each_product(batches, multiply_adds, b_step != 0, [&](std::size_t i) {
        const T* dc = gc + i * c_step;
        const T* ai = pa + i * a_step;
        if (tb) {
          blas::gemm<T>(true, ta, n, k, m, T(1), dc, ai, T(1), gb + i * b_step);  // dB += dC^T op(A)
        } else {
          blas::gemm<T>(!ta, false, k, n, m, T(1), ai, dc, T(1), gb + i * b_step);  // dB += op(A)^T dC
        }
      });
    }
  }, reads_only_inputs({0, 1}));
}

// y = x W^T + b; dx += dy W; dW += dy^T x; db += sum over rows of dy
template <class T>
Tensor<T> linear(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias) {
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  if (xs.empty() || ws.size() != 2 || xs.back() != ws[1] || (bias.defined() && bias.shape() != Shape{ws[0]})) {
    throw shape_error(detail::message("linear: x of shape ", xs, ", weight of shape ", ws, " and bias of shape ",
                                      bias.defined() ? to_string(bias.shape()) : std::string("(none)"),
                                      " do not fit (expected x [..., in], weight [out, in], bias [out])"));
  }
  const std::size_t in = ws[1], out = ws[0], rows = x.size() / std::max<std::size_t>(in, 1);
  Shape result_shape = xs;
  result_shape.back() = out;
  Array<T> y = Array<T>::from_shape(result_shape);
  T beta = T(0);
  if (bias.defined()) {  // start from the bias rows and let the GEMM add x W^T onto them
    parallel_for(rows, rows_for_grain(out, elementwise_grain), [&](std::size_t first_row, std::size_t end_row) {
      for (std::size_t r = first_row; r < end_row; ++r) std::copy_n(bias.data(), out, y.data() + r * out);
    });
    beta = T(1);
  }
  blas::gemm<T>(false, true, rows, out, in, T(1), x.data(), weight.data(), beta, y.data());
  std::vector<Tensor<T>> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return record<T>("linear", std::move(y), std::move(inputs), [rows, in, out](Node<T>& node) {
    const T* dy = node.output_grad().data();
    if (node.needs_grad(0)) {
      blas::gemm<T>(false, false, rows, in, out, T(1), dy, node.input(1).data(), T(1), node.input_grad(0).data());
    }
    if (node.needs_grad(1)) {
      blas::gemm<T>(true, false, out, in, rows, T(1), dy, node.input(0).data(), T(1), node.input_grad(1).data());
    }
    if (node.input_count() == 3 && node.needs_grad(2)) {
      blas::add_column_sums(rows, out, dy, node.input_grad(2).data());
    }
  }, reads_only_inputs({0, 1}));
}

template Tensor<float> linear(const Tensor<float>&, const Tensor<float>&, const Tensor<float>&);
template Tensor<double> linear(const Tensor<double>&, const Tensor<double>&, const Tensor<double>&);
template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&, const MatmulOptions&);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&, const MatmulOptions&);

}  // namespace xgrad
