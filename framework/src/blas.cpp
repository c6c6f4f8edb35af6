#include "xgrad/framework/blas.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#include <oneapi/dnnl/dnnl.hpp>
#include <xtensor-blas/xblas.hpp>
#include <xtensor/xadapt.hpp>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/safetensors.h"
#include "xgrad/framework/threading.h"

#include "openmp_pool.h"

namespace xgrad::blas {
namespace {
std::atomic<std::uint64_t> flops{0};
std::atomic<FloatProducts> float_product_format{FloatProducts::float32};

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

// Rounds values[begin, end) to bfloat16 (safetensors::float_to_bf16): bit patterns into a
// uint16_t buffer, for oneDNN, or the rounded values themselves into a float buffer.
template <Isa isa>
struct RoundToBf16 {
  template <class Out>
  XGRAD_KERNEL static void run(const float* values, std::size_t begin, std::size_t end, Out* rounded) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) {
      const std::uint16_t kept = safetensors::float_to_bf16(values[i]);
      if constexpr (std::is_same_v<Out, float>) {
        rounded[i] = safetensors::bf16_to_float(kept);
      } else {
        rounded[i] = kept;
      }
    }
  }
};

// `count` values rounded into `buffer`, which grows to the largest operand its thread has
// rounded and stays: products run again and again at the same few sizes.
template <class Out>
const Out* rounded_to_bf16(const float* values, std::size_t count, std::vector<Out>& buffer) {
  if (buffer.size() < count) {
    buffer.clear();
    buffer.resize(count);
  }
  Out* rounded = buffer.data();
  parallel_for(count, elementwise_grain,
               [=](std::size_t begin, std::size_t end) { dispatch<RoundToBf16>(values, begin, end, rounded); });
  return rounded;
}

// oneDNN's matmul with bf16 operands and a float32 result, one primitive for every size
// (runtime dimensions, which oneDNN 2.6 runs on its bf16 GEMM; with runtime strides it falls
// back to a reference loop, so a transposed operand is a fixed "ba" layout instead). Kept per
// layout, alpha and beta; the scratchpad is the caller's, so that several threads may run one
// primitive at once (parallel_for's bodies do).
class Bf16Matmuls {
 public:
  void run(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
           const std::uint16_t* a, const std::uint16_t* b, float beta, float* c) {
    using dnnl::memory;
    const auto rows = static_cast<memory::dim>(m), columns = static_cast<memory::dim>(n), depth = static_cast<memory::dim>(k);
    const Kept& matmul = kept(transpose_a, transpose_b, alpha, beta);
    thread_local dnnl::stream stream(engine_);
    thread_local std::vector<std::uint8_t> scratchpad;
    const memory::desc scratchpad_layout = matmul.layouts.scratchpad_desc();
    if (scratchpad.size() < scratchpad_layout.get_size()) scratchpad.resize(scratchpad_layout.get_size());
    memory a_memory({{rows, depth}, memory::data_type::bf16, transpose_a ? memory::format_tag::ba : memory::format_tag::ab},
                    engine_, const_cast<std::uint16_t*>(a));
    memory b_memory({{depth, columns}, memory::data_type::bf16, transpose_b ? memory::format_tag::ba : memory::format_tag::ab},
                    engine_, const_cast<std::uint16_t*>(b));
    memory c_memory({{rows, columns}, memory::data_type::f32, memory::format_tag::ab}, engine_, c);
    memory scratchpad_memory(scratchpad_layout, engine_, scratchpad.data());
    matmul.primitive.execute(stream, {{DNNL_ARG_SRC, a_memory},
                                      {DNNL_ARG_WEIGHTS, b_memory},
                                      {DNNL_ARG_DST, c_memory},
                                      {DNNL_ARG_SCRATCHPAD, scratchpad_memory}});
    stream.wait();
  }

 private:
  struct Kept {
    bool transpose_a, transpose_b;
    float alpha, beta;
    dnnl::matmul::primitive_desc layouts;
    dnnl::matmul primitive;
  };

  const Kept& kept(bool transpose_a, bool transpose_b, float alpha, float beta) {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const Kept& kept : kept_) {
      if (kept.transpose_a == transpose_a && kept.transpose_b == transpose_b && kept.alpha == alpha && kept.beta == beta) {
        return kept;
      }
    }
    using dnnl::memory;
    const memory::dims any_size{DNNL_RUNTIME_DIM_VAL, DNNL_RUNTIME_DIM_VAL};
    const memory::desc a_layout(any_size, memory::data_type::bf16, transpose_a ? memory::format_tag::ba : memory::format_tag::ab);
    const memory::desc b_layout(any_size, memory::data_type::bf16, transpose_b ? memory::format_tag::ba : memory::format_tag::ab);
    const memory::desc c_layout(any_size, memory::data_type::f32, memory::format_tag::ab);
    dnnl::primitive_attr attributes;
    attributes.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (alpha != 1.0F) attributes.set_output_scales(0, {alpha});
    if (beta != 0.0F) {
      dnnl::post_ops accumulate;
      accumulate.append_sum(beta);
      attributes.set_post_ops(accumulate);
    }
    dnnl::matmul::primitive_desc layouts(dnnl::matmul::desc(a_layout, b_layout, c_layout), attributes, engine_);
    dnnl::matmul primitive(layouts);
    return kept_.emplace_back(Kept{transpose_a, transpose_b, alpha, beta, std::move(layouts), std::move(primitive)});
  }

  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  std::mutex mutex_;
  std::deque<Kept> kept_;  // a deque: references to kept primitives stay valid as it grows
};
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

namespace {
// gemm once its sizes are checked, on the operands as stored.
template <class T>
void checked_gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a,
                  const T* b, T beta, T* c) {
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

// gemm<float> under FloatProducts::bf16. oneDNN's bf16 matmul costs about 2 us a call more than
// its sgemm, which its kernel wins back from 2^18 multiply-adds on (64 x 64 x 64 on a Zen 5 core;
// bench/README.md, "bf16 training, the int8 panel kernel ..."); smaller products, as a Transformer's
// attention has by the thousand, multiply the rounded values in float32, the same terms.
void bf16_gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
               const float* a, const float* b, float beta, float* c) {
  constexpr std::size_t bf16_kernel_multiply_adds = std::size_t(1) << 18;
  if (m * n * k >= bf16_kernel_multiply_adds && has_extension(Avx512Extension::bf16) && onednn_within_cap() &&
      onednn_isa() == Isa::avx512) {
    thread_local std::vector<std::uint16_t> a_buffer, b_buffer;
    const std::uint16_t* rounded_a = rounded_to_bf16(a, m * k, a_buffer);
    const std::uint16_t* rounded_b = rounded_to_bf16(b, k * n, b_buffer);
    use_pool_threads_in_onednn();
    static Bf16Matmuls matmuls;
    try {
      matmuls.run(transpose_a, transpose_b, m, n, k, alpha, rounded_a, rounded_b, beta, c);
    } catch (const dnnl::error& error) {
      check_onednn(error.status, "bf16 matmul", m, n, k);
    }
    return;
  }
  thread_local std::vector<float> a_buffer, b_buffer;
  const float* rounded_a = rounded_to_bf16(a, m * k, a_buffer);
  const float* rounded_b = rounded_to_bf16(b, k * n, b_buffer);
  checked_gemm(transpose_a, transpose_b, m, n, k, alpha, rounded_a, rounded_b, beta, c);
}
}  // namespace

void set_float_products(FloatProducts products) noexcept { float_product_format.store(products); }

FloatProducts float_products() noexcept { return float_product_format.load(std::memory_order_relaxed); }

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
  if constexpr (std::is_same_v<T, float>) {
    if (float_products() == FloatProducts::bf16) {
      bf16_gemm(transpose_a, transpose_b, m, n, k, alpha, a, b, beta, c);
      return;
    }
  }
  checked_gemm(transpose_a, transpose_b, m, n, k, alpha, a, b, beta, c);
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
