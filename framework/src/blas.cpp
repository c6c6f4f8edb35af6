#include "xgrad/framework/blas.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <limits>
#include <new>
#include <stdexcept>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif
#include <oneapi/dnnl/dnnl.h>
#include <xtensor-blas/xblas.hpp>
#include <xtensor/xadapt.hpp>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/threading.h"

#include "openmp_pool.h"

namespace xgrad::blas {
namespace {
std::atomic<std::uint64_t> flops{0};

// Single-precision products run on oneDNN's sgemm, which chooses its kernels from what the CPU
// reports: on an AVX-512 core it runs 1.7 to 2.5 times as fast as OpenBLAS as Debian runs it
// (OPENBLAS_CORETYPE=Haswell, read once when OpenBLAS loads, so that no library can change it
// for itself), and as fast as or faster than OpenBLAS's own AVX-512 kernels; on AVX2 it is
// about as fast as OpenBLAS (bench/README.md, "Matrix products: the measurements that
// decided"). Double precision stays on OpenBLAS (oneDNN has no dgemm), and so do batch-1
// rows, on gemv (below).
//
// oneDNN's instruction-set cap is fixed for the process when it first runs: here, at the first
// product while xgrad's own cap (active_isa) allows AVX2 or wider, so that XGRAD_MAX_ISA=avx2
// keeps oneDNN to AVX2 too. The instruction set its kernels were fixed to:
Isa onednn_isa() {
  static const Isa isa = [] {
    // Fails if the process ran oneDNN before, leaving the cap it had; the effective one decides.
    dnnl_set_max_cpu_isa(active_isa() == Isa::avx512 ? dnnl_cpu_isa_all : dnnl_cpu_isa_avx2);
    const auto effective = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
    return (effective & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core ? Isa::avx512 : Isa::avx2;
  }();
  return isa;
}

// Whether this product runs on oneDNN: when its threads are the pool's (OpenMP's, shared with
// OpenBLAS and parallel_for; never a second pool), and xgrad's cap allows the instruction set
// oneDNN's kernels were fixed to. The baseline cap, or a cap lowered after oneDNN was fixed
// (set_max_isa in tests), runs the product on OpenBLAS as it was loaded.
bool onednn_within_cap() {
  const Isa cap = active_isa();
  return cap != Isa::baseline && detail::shares_openmp_pool() && onednn_isa() <= cap;
}

// oneDNN runs on omp_get_max_threads(), an OpenMP setting of the calling thread: the pool's
// count (set_num_threads, less busy cores), from whichever thread calls. Inside parallel_for
// (a convolution's images) it runs on the calling thread alone, as OpenBLAS does.
void use_pool_threads_in_onednn() {
#ifdef _OPENMP
  if (omp_in_parallel() == 0) omp_set_num_threads(num_threads());
#endif
}

void check_onednn(dnnl_status_t status, const char* what, std::size_t m, std::size_t n, std::size_t k) {
  if (status == dnnl_out_of_memory) throw std::bad_alloc();
  if (status != dnnl_success) {
    throw std::runtime_error(detail::message("gemm: oneDNN's ", what, " failed with status ", static_cast<int>(status),
                                             " on ", m, " x ", k, " x ", n));
  }
}

void onednn_gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
                 const float* a, const float* b, float beta, float* c) {
  use_pool_threads_in_onednn();
  const auto rows = static_cast<dnnl_dim_t>(m), columns = static_cast<dnnl_dim_t>(n), depth = static_cast<dnnl_dim_t>(k);
  const dnnl_status_t status = dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', rows, columns, depth, alpha, a,
                                          transpose_a ? rows : depth, b, transpose_b ? depth : columns, beta, c, columns);
  check_onednn(status, "sgemm", m, n, k);
}
}  // namespace

bool exact_int8_gemm(std::size_t m, std::size_t n, std::size_t k, const std::uint8_t* a, const std::int8_t* b,
                     std::int32_t* c) {
  // Below VNNI oneDNN multiplies bytes with vpmaddubsw, whose 16-bit pair sums saturate.
  if (!has_extension(Avx512Extension::vnni) || !onednn_within_cap() || onednn_isa() != Isa::avx512) return false;
  if (m == 0 || n == 0) return true;
  count_flops(2 * static_cast<std::uint64_t>(m) * n * k);
  detail::follow_busy_cores();
  use_pool_threads_in_onednn();
  const std::int32_t no_offset = 0;
  const auto rows = static_cast<dnnl_dim_t>(m), columns = static_cast<dnnl_dim_t>(n), depth = static_cast<dnnl_dim_t>(k);
  check_onednn(dnnl_gemm_u8s8s32('N', 'T', 'F', rows, columns, depth, 1.0F, a, depth, 128, b, depth, 0, 0.0F, c, columns,
                                 &no_offset),
               "u8s8s32 gemm", m, n, k);
  return true;
}

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
  // One row times a large matrix (batch-1 decoding) is a matrix-vector product: OpenBLAS's sgemm
  // would pack the whole matrix into its panel format on every call (70% of the decoding time),
  // gemv streams it once, and beats oneDNN's sgemm too on the memory-bound matrices of decoding
  // (by 17-20% on a 9,000 x 512 output layer; bench/README.md). It runs OpenBLAS's kernels as
  // loaded, whatever XGRAD_MAX_ISA says. Small matrices stay with sgemm.
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
  if constexpr (std::is_same_v<T, float>) {
    if (onednn_within_cap()) {
      onednn_gemm(transpose_a, transpose_b, m, n, k, alpha, a, b, beta, c);
      return;
    }
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
