#include "xgrad/framework/blas.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>

#include <xtensor-blas/xblas.hpp>
#include <xtensor/xadapt.hpp>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/threading.h"

namespace xgrad::blas {
namespace {
std::atomic<std::uint64_t> flops{0};
}  // namespace

std::uint64_t flop_count() noexcept { return flops.load(std::memory_order_relaxed); }

void count_flops(std::uint64_t count) noexcept { flops.fetch_add(count, std::memory_order_relaxed); }

template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  count_flops(2 * static_cast<std::uint64_t>(m) * n * k);
  if (k == 0) {  // an empty sum: only the beta term remains
    for (std::size_t i = 0; i < m * n; ++i) c[i] = beta == T(0) ? T(0) : beta * c[i];
    return;
  }
  detail::follow_busy_cores();
  constexpr auto blas_limit = static_cast<std::size_t>(std::numeric_limits<xt::blas_index_t>::max());
  if (m > blas_limit || n > blas_limit || k > blas_limit) {
    throw shape_error(detail::message("gemm: dimensions ", m, " x ", k, " x ", n,
                                      " exceed the BLAS index range"));
  }
  using Extents = std::array<std::size_t, 2>;
  // One row times a large matrix (batch-1 decoding) is a matrix-vector product: sgemm would
  // pack the whole matrix into its panel format on every call (70% of the decoding time),
  // gemv streams it once. Small matrices stay with sgemm, whose small-size kernels win there.
  constexpr std::size_t matrix_vector_threshold = std::size_t(1) << 16;  // elements of B
  if (m == 1 && k * n >= matrix_vector_threshold) {
    const auto stored_b = xt::adapt(b, k * n, xt::no_ownership(), transpose_b ? Extents{n, k} : Extents{k, n});
    const auto row = xt::adapt(a, k, xt::no_ownership(), std::array<std::size_t, 1>{k});  // contiguous either way
    auto result = xt::adapt(c, n, xt::no_ownership(), std::array<std::size_t, 1>{n});
    // Newer OpenBLAS versions let beta = 0 keep a NaN already in c; a product must not.
    if (beta == T(0)) std::fill(c, c + n, T(0));
    xt::blas::gemv(stored_b, row, result, !transpose_b, alpha, beta);  // c = op(B)^T a
    return;
  }
  // Non-owning views of the caller's buffers: xt::blas::gemm reads them in place.
  const auto stored_a = xt::adapt(a, m * k, xt::no_ownership(), transpose_a ? Extents{k, m} : Extents{m, k});
  const auto stored_b = xt::adapt(b, k * n, xt::no_ownership(), transpose_b ? Extents{n, k} : Extents{k, n});
  auto result = xt::adapt(c, m * n, xt::no_ownership(), Extents{m, n});
  xt::blas::gemm(stored_a, stored_b, result, transpose_a, transpose_b, alpha, beta);
}

template <class T>
void add_column_sums(std::size_t count, std::size_t width, const T* rows, T* sums) {
  parallel_for(width, rows_for_grain(count, elementwise_grain), [=](std::size_t first_column, std::size_t end_column) {
    for (std::size_t i = 0; i < count; ++i) {
      const T* row = rows + i * width;
      for (std::size_t j = first_column; j < end_column; ++j) sums[j] += row[j];
    }
  });
}

template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*,
                          const float*, float, float*);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double,
                           const double*, const double*, double, double*);

template void add_column_sums<float>(std::size_t, std::size_t, const float*, float*);
template void add_column_sums<double>(std::size_t, std::size_t, const double*, double*);

}  // namespace xgrad::blas
