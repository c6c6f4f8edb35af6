#pragma once
// Matrix products on contiguous row-major buffers, and the column sums that go with them (bias
// gradients). Single precision runs on oneDNN's sgemm at the widest instruction set the CPU
// and xgrad's cap (isa.h, XGRAD_MAX_ISA) allow, double precision on OpenBLAS (blas.cpp says
// when and why).
// Custom kernels (fused recurrent cells, attention) use this instead of including cblas.h,
// whose declarations clash with the ones xtensor-blas bundles.

#include <cstddef>
#include <cstdint>

namespace xgrad::blas {

// C = alpha * op(A) * op(B) + beta * C, where op(A) is m x k and op(B) is k x n.
// A is stored m x k, or k x m when transpose_a; B is stored k x n, or n x k when
// transpose_b; C is stored m x n. With beta = 1 the product accumulates into C, which is how
// backward adds matrix gradients without temporaries.
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
          const T* a, const T* b, T beta, T* c);

// How gemm<float> multiplies, for the whole process (as the thread count is).
//   float32: the operands as they are.
//   bf16:    each operand rounded to bfloat16 (to nearest, ties to even), the products summed in
//            float32: PyTorch's set_float32_matmul_precision("medium"), for mixed-precision
//            training. Weights, gradients, activations and the optimizer stay float32, and
//            bfloat16 keeps float32's exponent range, so no loss scaling is needed; only the
//            products' inputs keep 8 significant bits instead of 24. On a CPU with AVX-512 BF16
//            it runs on oneDNN's bf16 kernels (vdpbf16ps, twice the float32 FMA rate); elsewhere
//            as float products of the rounded values, which sum the same terms.
// Double products, the recurrent PackedMatrix products and QuantizedMatrix do not change.
enum class FloatProducts { float32, bf16 };
void set_float_products(FloatProducts products) noexcept;
FloatProducts float_products() noexcept;

// C = (A - 128) B^T in exact 32-bit integers, for A [m, k] of unsigned bytes (signed values
// stored + 128) and B [n, k] of signed bytes: oneDNN's u8s8s32 GEMM, where it sums without
// saturating, which is on AVX-512 VNNI (vpdpbusd). Returns false, computing nothing, where that
// is not the instruction set oneDNN runs at (xgrad's cap, or a CPU without VNNI): the caller
// then computes the sums itself.
bool exact_int8_gemm(std::size_t m, std::size_t n, std::size_t k, const std::uint8_t* a, const std::int8_t* b,
                     std::int32_t* c);

// sums[j] += sum over i < count of rows[i * width + j]: the bias gradient of a product's
// output rows. Split over columns, so each sum is taken in row order with any number of threads.
template <class T>
void add_column_sums(std::size_t count, std::size_t width, const T* rows, T* sums);

// Floating-point operations (2 m n k per product) that gemm and PackedMatrix products have
// performed in this process, on any thread: benchmarks divide a workload's count by its time
// and by the machine's measured peak.
std::uint64_t flop_count() noexcept;

// Adds a product's operations to flop_count(): for matrix kernels outside gemm.
void count_flops(std::uint64_t count) noexcept;

}  // namespace xgrad::blas
