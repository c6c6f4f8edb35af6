// blas::gemm in float on every path this CPU runs (oneDNN at the instruction set xgrad's cap
// fixed it to, OpenBLAS below that cap) and in double (OpenBLAS), against a double-precision
// reference: shapes up to K = 3000, every transpose, alpha and beta (beta = 0 over NaN, beta = 1
// accumulating), one and two threads. The same under FloatProducts::bf16, against the product of
// the operands rounded to bfloat16. And that XGRAD_MAX_ISA caps oneDNN's kernels too.
#define BOOST_TEST_MODULE blas
#include "xgrad_test.h"
#include "isa_paths.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.h>

#include <xgrad/framework/blas.h>
#include <xgrad/framework/safetensors.h>

using namespace xgrad;
using xgrad::testing::ScopedIsa;
using xgrad::testing::supported_isas;

namespace {

struct Product {
  std::size_t m, n, k;
};

// Row counts of one (the matrix-vector route), small and odd sizes that leave partial kernel
// tiles, and long sums (K = 3000) where rounding error grows.
constexpr std::array<Product, 7> products{
    {{1, 300, 257}, {1, 1, 6}, {5, 3, 1}, {37, 53, 3000}, {130, 96, 1024}, {64, 1536, 40}, {256, 256, 256}}};

// The elements of c, the result of alpha op(A) op(B) + beta c_before in T, that are further
// from the same computed in double than the rounding bound (the first three are reported).
// A float sum of K products, in any order or blocking and with or without fused multiply-adds,
// is within K u sum_k |a_ik b_kj| of the exact one (u = eps / 2, Higham's gamma_K); scaling by
// alpha, adding beta c and storing add at most 3 u of the magnitudes. So the bound is
// |c - reference| <= c0 K eps (|alpha| sum_k |a_ik b_kj| + |beta c_ij|) with c0 = 2, which covers
// (K + 3) u for every K >= 1; wrong operands, transposes or lower-precision arithmetic (bf16's
// 2^-8) exceed it by orders of magnitude.
template <class T>
std::size_t beyond_bound(bool transpose_a, bool transpose_b, Product p, double alpha, const T* a, const T* b,
                         double beta, const T* c_before, const T* c) {
  constexpr double c0 = 2;
  const auto [m, n, k] = p;
  std::size_t failures = 0;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double sum = 0, magnitude = 0;
      for (std::size_t l = 0; l < k; ++l) {
        const double term = double(transpose_a ? a[l * m + i] : a[i * k + l]) * double(transpose_b ? b[j * k + l] : b[l * n + j]);
        sum += term;
        magnitude += std::abs(term);
      }
      const double scaled_c = beta == 0.0 ? 0.0 : beta * double(c_before[i * n + j]);
      const double reference = alpha * sum + scaled_c;
      const double bound = c0 * double(k) * std::numeric_limits<T>::epsilon() * (std::abs(alpha) * magnitude + std::abs(scaled_c));
      const double error = std::abs(double(c[i * n + j]) - reference);
      if (error <= bound) continue;  // NaN is not
      if (++failures <= 3) {
        BOOST_ERROR("element (" << i << ", " << j << ") of " << m << " x " << n << " x " << k
                                << (transpose_a ? " A^T" : "") << (transpose_b ? " B^T" : "") << " alpha " << alpha
                                << " beta " << beta << ": " << c[i * n + j] << " against " << reference << ", bound " << bound);
      }
    }
  }
  return failures;
}

template <class T>
std::vector<T> uniform_values(std::size_t count, Generator& generator) {
  std::vector<T> values(count);
  for (T& x : values) x = static_cast<T>(generator.uniform(-1.0, 1.0));
  return values;
}

// The operands gemm multiplies under blas::float_products(): for bf16, each value rounded by
// the safetensors conversion (to nearest, ties to even; test_safetensors checks it against PyTorch's).
std::vector<float> as_multiplied(std::vector<float> values) {
  if (blas::float_products() == blas::FloatProducts::bf16) {
    for (float& x : values) x = safetensors::bf16_to_float(safetensors::float_to_bf16(x));
  }
  return values;
}
std::vector<double> as_multiplied(std::vector<double> values) { return values; }

// C = alpha op(A) op(B) + beta C through blas::gemm in T, against the same in double; with
// beta = 0, C starts as NaN, which the product must overwrite.
template <class T>
void check_product(bool transpose_a, bool transpose_b, Product p, double alpha, double beta, std::uint64_t seed) {
  Generator generator(seed);
  const auto [m, n, k] = p;
  const std::vector<T> a = uniform_values<T>(m * k, generator), b = uniform_values<T>(k * n, generator);
  const std::vector<T> c_before =
      beta == 0.0 ? std::vector<T>(m * n, std::numeric_limits<T>::quiet_NaN()) : uniform_values<T>(m * n, generator);
  std::vector<T> c = c_before;
  blas::gemm<T>(transpose_a, transpose_b, m, n, k, static_cast<T>(alpha), a.data(), b.data(), static_cast<T>(beta), c.data());
  const std::vector<T> multiplied_a = as_multiplied(a), multiplied_b = as_multiplied(b);
  const std::size_t failures = beyond_bound(transpose_a, transpose_b, p, alpha, multiplied_a.data(), multiplied_b.data(),
                                            beta, c_before.data(), c.data());
  BOOST_TEST(failures == 0U, failures << " of " << m * n << " elements beyond the bound");
}

template <class T>
void check_every_product() {
  std::uint64_t seed = 1;
  for (const Product& p : products) {
    for (bool transpose_a : {false, true}) {
      for (bool transpose_b : {false, true}) {
        for (auto [alpha, beta] : {std::array<double, 2>{1.0, 0.0}, {-0.75, 1.0}, {2.0, 0.5}}) {
          check_product<T>(transpose_a, transpose_b, p, alpha, beta, ++seed);
        }
      }
    }
  }
}

// Runs `check` with float products in `products`, back to float32 after it.
template <class Check>
void with_float_products(blas::FloatProducts products, Check check) {
  blas::set_float_products(products);
  check();
  blas::set_float_products(blas::FloatProducts::float32);
}

// Each thread count on each instruction set the process may use, widest first from the cap it
// started with (XGRAD_MAX_ISA): the first product fixes oneDNN's instruction set to it, the
// narrower caps after it run on OpenBLAS.
template <class Check>
void on_every_instruction_set_and_thread_count(Check check) {
  set_follow_busy_cores(false);
  const Isa start = active_isa();
  const std::vector<Isa> isas = supported_isas();
  for (auto isa = isas.rbegin(); isa != isas.rend(); ++isa) {
    if (*isa > start) continue;
    const ScopedIsa cap(*isa);
    for (int threads : {1, 2}) {
      BOOST_TEST_CONTEXT(isa_name(*isa) << ", " << threads << " threads") {
        set_num_threads(threads);
        check();
      }
    }
  }
  set_num_threads(1);
}

}  // namespace

BOOST_AUTO_TEST_CASE(float_products_match_double_on_every_instruction_set_and_thread_count) {
  on_every_instruction_set_and_thread_count([] { check_every_product<float>(); });
}

// bf16 runs on oneDNN's bf16 kernels where the CPU has AVX-512 BF16 and the cap is avx512, and as
// float products of rounded operands below: both must multiply exactly the rounded values.
BOOST_AUTO_TEST_CASE(bf16_products_multiply_the_rounded_operands_on_every_instruction_set) {
  with_float_products(blas::FloatProducts::bf16,
                      [] { on_every_instruction_set_and_thread_count([] { check_every_product<float>(); }); });
}

BOOST_AUTO_TEST_CASE(bf16_products_leave_double_products_alone) {
  with_float_products(blas::FloatProducts::bf16, [] { check_product<double>(false, true, {37, 53, 3000}, 1.0, 0.0, 5); });
}

BOOST_AUTO_TEST_CASE(double_products_match_the_reference) {
  set_follow_busy_cores(false);
  for (int threads : {1, 2}) {
    BOOST_TEST_CONTEXT(threads << " threads") {
      set_num_threads(threads);
      check_every_product<double>();
    }
  }
  set_num_threads(1);
}

namespace {
// A convolution runs one product per image inside parallel_for: concurrent calls, each on its
// calling thread, give each image its own correct product.
void check_products_inside_parallel_for() {
  set_num_threads(2);
  constexpr std::size_t images = 8;
  constexpr Product p{24, 40, 300};
  Generator generator(11);
  const std::vector<float> a = uniform_values<float>(images * p.m * p.k, generator);
  const std::vector<float> b = uniform_values<float>(p.k * p.n, generator);
  const std::vector<float> multiplied_a = as_multiplied(a), multiplied_b = as_multiplied(b);
  std::vector<float> c(images * p.m * p.n);
  parallel_for(images, 1, [&](std::size_t first, std::size_t end) {
    for (std::size_t image = first; image < end; ++image) {
      blas::gemm<float>(false, false, p.m, p.n, p.k, 1.0f, a.data() + image * p.m * p.k, b.data(), 0.0f,
                        c.data() + image * p.m * p.n);
    }
  });
  set_num_threads(1);
  for (std::size_t image = 0; image < images; ++image) {
    BOOST_TEST(beyond_bound<float>(false, false, p, 1.0, multiplied_a.data() + image * p.m * p.k, multiplied_b.data(), 0.0,
                                   nullptr, c.data() + image * p.m * p.n) == 0U,
               "image " << image);
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(products_inside_parallel_for_match_the_reference) {
  set_follow_busy_cores(false);
  check_products_inside_parallel_for();
  with_float_products(blas::FloatProducts::bf16, check_products_inside_parallel_for);
}

// oneDNN fixes its instruction set at its first product: to AVX2 under XGRAD_MAX_ISA=avx2 (the
// test blas_on_avx2 runs this suite so), to the widest it supports otherwise.
BOOST_AUTO_TEST_CASE(the_cap_keeps_onednn_to_its_instruction_set) {
  std::vector<float> a(64 * 64, 0.5f), c(64 * 64);
  blas::gemm<float>(false, false, 64, 64, 64, 1.0f, a.data(), a.data(), 0.0f, c.data());
  BOOST_TEST(c[0] == 16.0f);
  const char* cap = std::getenv("XGRAD_MAX_ISA");
  const auto effective = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  const bool onednn_avx512 = (effective & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
  if (cap != nullptr && std::string(cap) == "avx2") {
    BOOST_TEST(effective == static_cast<unsigned>(dnnl_cpu_isa_avx2), "oneDNN's instruction set " << std::hex << effective);
  } else if (supported_isa() == Isa::avx512) {
    BOOST_TEST(onednn_avx512, "oneDNN's instruction set " << std::hex << effective);
  }
}
