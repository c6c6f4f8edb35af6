#include "xgrad/framework/quantized.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/blas.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/threading.h"

namespace xgrad {
namespace {

constexpr float int8_limit = 127.0F;  // symmetric: -128 is never used, so negation is exact

// The row dot products of one product for the rows j of a range, with x already rounded to
// the weight's format: bf16 sums are added to y (out = y); int8 sums are stored (out = a buffer)
// and scaled outside the kernels, so that every instruction set scales them in the same
// arithmetic (no fused multiply-add in one and not in another).
template <class Value, class Sum>
struct DotTask {
  std::size_t m, n, k;
  const Value* x;        // m x k
  const Value* weights;  // n x k
  Sum* out;              // m x n

  XGRAD_KERNEL void add(std::size_t i, std::size_t j, Sum sum) const {
    if constexpr (std::is_integral_v<Sum>) {
      out[i * n + j] = sum;
    } else {
      out[i * n + j] += sum;
    }
  }
};
using Int8Task = DotTask<std::int8_t, std::int32_t>;
using Bf16Task = DotTask<std::uint16_t, float>;

// Exact integer dot products, vectorised by the compiler for each instruction set (integer
// sums do not depend on their order, so every path gives the same sums).
template <Isa isa>
struct Int8Dots {
  XGRAD_KERNEL static void run(const Int8Task& task, std::size_t first, std::size_t end) {
    for (std::size_t j = first; j < end; ++j) {
      const std::int8_t* w = task.weights + j * task.k;
      for (std::size_t i = 0; i < task.m; ++i) {
        const std::int8_t* x = task.x + i * task.k;
        std::int32_t sum = 0;
        for (std::size_t l = 0; l < task.k; ++l) sum += std::int16_t(x[l]) * std::int16_t(w[l]);
        task.add(i, j, sum);
      }
    }
  }
};

// Float dot products of bfloat16 pairs in vectors of the instruction set's width: each
// product is exact in float, and the sums keep one vector of partial sums.
template <Isa isa>
struct Bf16Dots {
  static constexpr std::size_t vector_bytes = isa == Isa::avx512 ? 64 : (isa == Isa::avx2 ? 32 : 16);
  static constexpr std::size_t lanes = vector_bytes / sizeof(float);
  // A typedef's vector_size only takes a dependent size inside a member template.
  template <class Value, std::size_t bytes>
  struct VectorOf {
    typedef Value Type __attribute__((vector_size(bytes)));
  };
  using Floats = typename VectorOf<float, vector_bytes>::Type;
  using Words = typename VectorOf<std::uint32_t, vector_bytes>::Type;
  using Halves = typename VectorOf<std::uint16_t, vector_bytes / 2>::Type;

  XGRAD_KERNEL static void widen(Floats& out, const std::uint16_t* values) {
    Halves halves;
    std::memcpy(&halves, values, sizeof halves);
    const Words words = __builtin_convertvector(halves, Words) << 16;
    std::memcpy(&out, &words, sizeof out);
  }

  XGRAD_KERNEL static void run(const Bf16Task& task, std::size_t first, std::size_t end) {
    const std::size_t full = task.k / lanes * lanes;
    for (std::size_t j = first; j < end; ++j) {
      const std::uint16_t* w = task.weights + j * task.k;
      for (std::size_t i = 0; i < task.m; ++i) {
        const std::uint16_t* x = task.x + i * task.k;
        Floats partial{}, a, b;
        for (std::size_t l = 0; l < full; l += lanes) {
          widen(a, x + l);
          widen(b, w + l);
          partial += a * b;
        }
        float sum = 0.0F;
        for (std::size_t lane = 0; lane < lanes; ++lane) sum += partial[lane];
        for (std::size_t l = full; l < task.k; ++l) sum += safetensors::bf16_to_float(x[l]) * safetensors::bf16_to_float(w[l]);
        task.add(i, j, sum);
      }
    }
  }
};

#if defined(__x86_64__)
// The sum of a vector's lanes (GCC 12's _mm512_reduce_add_* warn of the undefined vectors they
// start from).
template <class Lane, class Vector>
Lane lane_sum(const Vector& vector) {
  Lane lanes[sizeof(Vector) / sizeof(Lane)];
  std::memcpy(lanes, &vector, sizeof vector);
  Lane sum = 0;
  for (const Lane lane : lanes) sum += lane;
  return sum;
}

// AVX-512 VNNI: vpdpbusd multiplies unsigned by signed bytes and adds each four products into
// a 32-bit lane, without saturation. x is passed as x + 128 (unsigned), so each sum gains
// 128 sum_l W[j][l], which the weight's row sums take off again: the sums are exact, as the
// portable kernel's. W is read from its panels (prepare_vnni_kernel): four bytes of x broadcast
// to every lane meet four columns of 16 rows in one instruction, so W streams once in order
// and the 16 sums need no adding across lanes; a tile is two panels by `x_rows` rows of x,
// each pair with two sums (even and odd column groups), which keeps four or eight chains of
// vpdpbusd in flight. The row count is a template parameter so that the sums stay in registers.
constexpr std::size_t panel_rows = 16;  // int32 lanes of a 512-bit vector

std::size_t column_groups(std::size_t k) { return (k + 3) / 4; }

// Bytes of one panel: 16 rows by the columns rounded up to groups of four.
std::size_t panel_bytes(std::size_t k) { return panel_rows * 4 * column_groups(k); }

// Panels in pairs: the rows rounded up to a multiple of 32.
std::size_t panel_pairs(std::size_t n) { return (n + 2 * panel_rows - 1) / (2 * panel_rows); }

// The four bytes at `bytes` in every 32-bit lane: four columns of a row of x. Past the row's
// end they meet W's zero padding.
__attribute__((target("avx512f"))) inline __m512i four_bytes_everywhere(const std::uint8_t* bytes) {
  std::int32_t group;
  std::memcpy(&group, bytes, sizeof group);
  return _mm512_set1_epi32(group);
}

template <std::size_t x_rows>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void vnni_panel_tile(const Int8Task& task, const std::int8_t* panels,
                                                                                   const std::int32_t* row_sums, std::size_t pair,
                                                                                   std::size_t i0) {
  const std::size_t k = task.k, groups = column_groups(k);
  const std::int8_t* first = panels + 2 * pair * panel_bytes(k);
  const std::int8_t* second = first + panel_bytes(k);
  const auto* x = reinterpret_cast<const std::uint8_t*>(task.x) + i0 * k;
  __m512i sums[x_rows][2][2];
  #pragma GCC unroll 2
  for (std::size_t a = 0; a < x_rows; ++a) {
    for (auto& panel : sums[a]) panel[0] = panel[1] = _mm512_setzero_si512();
  }
  std::size_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    const __m512i w00 = _mm512_loadu_si512(first + 64 * g), w01 = _mm512_loadu_si512(first + 64 * g + 64);
    const __m512i w10 = _mm512_loadu_si512(second + 64 * g), w11 = _mm512_loadu_si512(second + 64 * g + 64);
    #pragma GCC unroll 2
    for (std::size_t a = 0; a < x_rows; ++a) {
      const __m512i x0 = four_bytes_everywhere(x + a * k + 4 * g), x1 = four_bytes_everywhere(x + a * k + 4 * g + 4);
      sums[a][0][0] = _mm512_dpbusd_epi32(sums[a][0][0], x0, w00);
      sums[a][0][1] = _mm512_dpbusd_epi32(sums[a][0][1], x1, w01);
      sums[a][1][0] = _mm512_dpbusd_epi32(sums[a][1][0], x0, w10);
      sums[a][1][1] = _mm512_dpbusd_epi32(sums[a][1][1], x1, w11);
    }
  }
  if (g < groups) {
    const __m512i w0 = _mm512_loadu_si512(first + 64 * g), w1 = _mm512_loadu_si512(second + 64 * g);
    #pragma GCC unroll 2
    for (std::size_t a = 0; a < x_rows; ++a) {
      const __m512i xg = four_bytes_everywhere(x + a * k + 4 * g);
      sums[a][0][0] = _mm512_dpbusd_epi32(sums[a][0][0], xg, w0);
      sums[a][1][0] = _mm512_dpbusd_epi32(sums[a][1][0], xg, w1);
    }
  }
  #pragma GCC unroll 2
  for (std::size_t a = 0; a < x_rows; ++a) {
    for (std::size_t p = 0; p < 2; ++p) {
      std::int32_t lanes[panel_rows];
      _mm512_storeu_si512(lanes, _mm512_add_epi32(sums[a][p][0], sums[a][p][1]));
      const std::size_t j0 = (2 * pair + p) * panel_rows;
      for (std::size_t r = 0; r < panel_rows && j0 + r < task.n; ++r) task.add(i0 + a, j0 + r, lanes[r] - 128 * row_sums[j0 + r]);
    }
  }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void vnni_dots(const Int8Task& task, const std::int8_t* panels,
                                                                       const std::int32_t* row_sums, std::size_t first_pair,
                                                                       std::size_t end_pair) {
  for (std::size_t pair = first_pair; pair < end_pair; ++pair) {
    std::size_t i = 0;
    for (; i + 2 <= task.m; i += 2) vnni_panel_tile<2>(task, panels, row_sums, pair, i);
    for (; i < task.m; ++i) vnni_panel_tile<1>(task, panels, row_sums, pair, i);
  }
}

// The bf16 kernel below computes a tile of `weight_rows` rows of W by `x_rows` rows of x at a
// time: each step loads that many vectors of each and updates every pair's sum, so a batch
// reads W from the cache once per tile of x rows, not once per row. The counts are template
// parameters so that the sums stay in registers (with counts known only at run time GCC keeps
// them on the stack, a store and a load per step).

// AVX-512 BF16: vdpbf16ps adds the products of 32 bfloat16 pairs into 16 float lanes (denormal
// inputs and results read as zero, which moves a sum by less than K times the smallest normal).
template <std::size_t weight_rows, std::size_t x_rows>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) inline void bf16_tile(const Bf16Task& task, std::size_t j0,
                                                                             std::size_t i0) {
  const std::size_t k = task.k, full = k / 32 * 32;
  const __mmask32 tail = k == full ? 0 : (~__mmask32{0}) >> (32 - (k - full));
  const std::uint16_t* x = task.x + i0 * k;
  const std::uint16_t* w = task.weights + j0 * k;
  __m512 sums[x_rows][weight_rows];
  #pragma GCC unroll 4
  for (std::size_t a = 0; a < x_rows; ++a) {
    #pragma GCC unroll 4
    for (std::size_t r = 0; r < weight_rows; ++r) sums[a][r] = _mm512_setzero_ps();
  }
  for (std::size_t l = 0; l < k; l += 32) {
    const __mmask32 mask = l < full ? ~__mmask32{0} : tail;  // masked-off pairs load as zeros
    __m512bh ws[weight_rows];
    #pragma GCC unroll 4
    for (std::size_t r = 0; r < weight_rows; ++r) ws[r] = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, w + r * k + l));
    #pragma GCC unroll 4
    for (std::size_t a = 0; a < x_rows; ++a) {
      const auto xs = reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, x + a * k + l));
      #pragma GCC unroll 4
      for (std::size_t r = 0; r < weight_rows; ++r) sums[a][r] = _mm512_dpbf16_ps(sums[a][r], xs, ws[r]);
    }
  }
  #pragma GCC unroll 4
  for (std::size_t a = 0; a < x_rows; ++a) {
    #pragma GCC unroll 4
    for (std::size_t r = 0; r < weight_rows; ++r) task.add(i0 + a, j0 + r, lane_sum<float>(sums[a][r]));
  }
}

// Tiles of four rows of W by two rows of x, then what is left of either one row at a time.
template <class Tile>
[[gnu::always_inline]] inline void by_tiles(std::size_t m, std::size_t first, std::size_t end, Tile tile) {
  std::size_t j = first;
  for (; j + 4 <= end; j += 4) {
    std::size_t i = 0;
    for (; i + 2 <= m; i += 2) tile.template operator()<4, 2>(j, i);
    for (; i < m; ++i) tile.template operator()<4, 1>(j, i);
  }
  for (; j < end; ++j) {
    std::size_t i = 0;
    for (; i + 2 <= m; i += 2) tile.template operator()<1, 2>(j, i);
    for (; i < m; ++i) tile.template operator()<1, 1>(j, i);
  }
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) void avx512_bf16_dots(const Bf16Task& task, std::size_t first,
                                                                             std::size_t end) {
  by_tiles(task.m, first, end, [&]<std::size_t weight_rows, std::size_t x_rows>(std::size_t j, std::size_t i) {
    bf16_tile<weight_rows, x_rows>(task, j, i);
  });
}
#endif

// Runs `kernel(first, end)` over the rows of W, split over the threads in ranges of at least
// multiply_add_grain multiply-adds that start on a multiple of `block` rows (the kernel's).
template <class Kernel>
void for_weight_rows(std::size_t m, std::size_t n, std::size_t k, std::size_t block, Kernel kernel) {
  const std::size_t blocks = (n + block - 1) / block;
  const std::size_t grain = (rows_for_grain(m * k, multiply_add_grain) + block - 1) / block;
  blas::count_flops(2 * static_cast<std::uint64_t>(m) * n * k);
  parallel_for(blocks, grain, [&](std::size_t first, std::size_t end) { kernel(first * block, std::min(end * block, n)); });
}

void check_matrix(const Shape& shape, const char* what) {
  if (shape.size() != 2) throw std::invalid_argument(detail::message("QuantizedMatrix: ", what, " has shape ", shape, "; expected a matrix"));
}

}  // namespace

const char* weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::bf16: return "bf16";
    case WeightFormat::int8: return "int8";
    default: return "float32";
  }
}

WeightFormat weight_format_from_string(const std::string& name) {
  for (const WeightFormat format : {WeightFormat::float32, WeightFormat::bf16, WeightFormat::int8}) {
    if (name == weight_format_name(format)) return format;
  }
  throw std::invalid_argument("weight format '" + name + "' is not one of float32, bf16, int8");
}

QuantizedMatrix::QuantizedMatrix(WeightFormat format, std::size_t rows, std::size_t columns)
    : format_(format), rows_(rows), columns_(columns) {
  if (format == WeightFormat::int8) {
    int8_ = std::make_unique_for_overwrite<std::int8_t[]>(rows * columns);
    scales_ = std::make_unique_for_overwrite<float[]>(rows);
  } else if (format == WeightFormat::bf16) {
    bf16_ = std::make_unique_for_overwrite<std::uint16_t[]>(rows * columns);
  } else {
    throw std::invalid_argument("QuantizedMatrix: float32 weights need no rounding; use the float product");
  }
}

QuantizedMatrix::QuantizedMatrix(const Array<float>& weight, WeightFormat format)
    : QuantizedMatrix(format, weight.dimension() == 2 ? weight.shape()[0] : 0,
                      weight.dimension() == 2 ? weight.shape()[1] : 0) {
  check_matrix(Shape(weight.shape().begin(), weight.shape().end()), "the weight");
  const float* w = weight.data();
  if (!std::all_of(w, w + weight.size(), [](float v) { return std::isfinite(v); })) {
    throw std::invalid_argument("QuantizedMatrix: the weight holds a NaN or an infinity");
  }
  if (format == WeightFormat::bf16) {
    std::transform(w, w + weight.size(), bf16_.get(), safetensors::float_to_bf16);
    return;
  }
  for (std::size_t j = 0; j < rows_; ++j) {
    const float* row = w + j * columns_;
    float largest = 0.0F;
    for (std::size_t l = 0; l < columns_; ++l) largest = std::max(largest, std::abs(row[l]));
    scales_[j] = largest / int8_limit;
    const float inverse = largest == 0.0F ? 0.0F : int8_limit / largest;
    for (std::size_t l = 0; l < columns_; ++l) {
      int8_[j * columns_ + l] = static_cast<std::int8_t>(std::clamp(std::nearbyint(row[l] * inverse), -int8_limit, int8_limit));
    }
  }
  prepare_vnni_kernel();
}

void QuantizedMatrix::prepare_vnni_kernel() {
  if (!has_extension(Avx512Extension::vnni)) return;
  const std::size_t k = columns_;
  row_sums_ = std::make_unique_for_overwrite<std::int32_t[]>(rows_);
  for (std::size_t j = 0; j < rows_; ++j) {
    const std::int8_t* row = int8_.get() + j * k;
    row_sums_[j] = std::accumulate(row, row + k, std::int32_t{0});
  }
#if defined(__x86_64__)
  // Panel P, column group g, row r of the panel, byte t: W[16 P + r][4 g + t], zero past W.
  vnni_panels_ = std::make_unique<std::int8_t[]>(2 * panel_pairs(rows_) * panel_bytes(k));
  for (std::size_t j = 0; j < rows_; ++j) {
    std::int8_t* panel = vnni_panels_.get() + j / panel_rows * panel_bytes(k) + j % panel_rows * 4;
    for (std::size_t l = 0; l < k; ++l) panel[l / 4 * 4 * panel_rows + l % 4] = int8_[j * k + l];
  }
#endif
}

QuantizedMatrix QuantizedMatrix::read(const safetensors::File& file, const std::string& name) {
  const safetensors::Entry& entry = file.entry(name);
  auto fail = [&](const std::string& problem) -> void {
    throw file_error(detail::message(file.label(), ": tensor '", name, "' ", problem));
  };
  if (entry.shape.size() != 2) fail(detail::message("has shape ", entry.shape, "; a quantised weight is a matrix"));
  const std::size_t rows = entry.shape[0], columns = entry.shape[1];
  if (entry.dtype == safetensors::Dtype::bf16) {
    QuantizedMatrix matrix(WeightFormat::bf16, rows, columns);
    const Array<std::uint16_t> bits = file.stored<std::uint16_t>(name);
    std::copy_n(bits.data(), bits.size(), matrix.bf16_.get());
    return matrix;
  }
  if (entry.dtype != safetensors::Dtype::i8) {
    fail(detail::message("is ", safetensors::dtype_name(entry.dtype), "; a quantised weight is BF16, or I8 with its scales"));
  }
  const std::string scale_name = name + scale_suffix;
  if (!file.contains(scale_name)) fail(detail::message("is I8 but the file has no '", scale_name, "' for its row scales"));
  const safetensors::Entry& scale_entry = file.entry(scale_name);
  if (scale_entry.dtype != safetensors::Dtype::f32 || scale_entry.shape != Shape{rows}) {
    fail(detail::message("has ", rows, " rows but its scales '", scale_name, "' are ", safetensors::dtype_name(scale_entry.dtype),
                         " of shape ", scale_entry.shape, "; expected F32 of shape [", rows, "]"));
  }
  QuantizedMatrix matrix(WeightFormat::int8, rows, columns);
  const Array<std::int8_t> values = file.stored<std::int8_t>(name);
  std::copy_n(values.data(), values.size(), matrix.int8_.get());
  const Array<float> scales = file.stored<float>(scale_name);
  for (std::size_t j = 0; j < rows; ++j) {
    if (!(std::isfinite(scales[j]) && scales[j] >= 0.0F)) {
      fail(detail::message("has scale ", scales[j], " for row ", j, " in '", scale_name, "'; scales are finite and not negative"));
    }
    matrix.scales_[j] = scales[j];
  }
  matrix.prepare_vnni_kernel();
  return matrix;
}

Array<float> QuantizedMatrix::dequantized() const {
  Array<float> result = Array<float>::from_shape({rows_, columns_});
  float* out = result.data();
  if (format_ == WeightFormat::bf16) {
    std::transform(bf16_.get(), bf16_.get() + rows_ * columns_, out, safetensors::bf16_to_float);
    return result;
  }
  for (std::size_t j = 0; j < rows_; ++j) {
    for (std::size_t l = 0; l < columns_; ++l) out[j * columns_ + l] = float(int8_[j * columns_ + l]) * scales_[j];
  }
  return result;
}

void QuantizedMatrix::write(safetensors::Writer& writer, const std::string& name) const {
  const Shape shape{rows_, columns_};
  if (format_ == WeightFormat::bf16) {
    writer.add(name, dequantized(), safetensors::Dtype::bf16);  // bfloat16 values round to themselves
    return;
  }
  Array<std::int8_t> values = Array<std::int8_t>::from_shape(shape);
  std::copy_n(int8_.get(), rows_ * columns_, values.data());
  Array<float> scales = Array<float>::from_shape({rows_});
  std::copy_n(scales_.get(), rows_, scales.data());
  writer.add(name, values);
  writer.add(name + scale_suffix, scales);
}

void QuantizedMatrix::multiply_add(std::size_t m, const float* x, float* y) const {
  const std::size_t n = rows_, k = columns_;
  if (m == 0 || n == 0) return;
  const std::size_t row_grain = rows_for_grain(k, elementwise_grain);
  if (format_ == WeightFormat::bf16) {
    const auto rounded = std::make_unique_for_overwrite<std::uint16_t[]>(m * k);
    parallel_for(m * k, elementwise_grain, [&](std::size_t first, std::size_t end) {
      std::transform(x + first, x + end, rounded.get() + first, safetensors::float_to_bf16);
    });
    const Bf16Task task{m, n, k, rounded.get(), bf16_.get(), y};
    for_weight_rows(m, n, k, 4, [&](std::size_t first, std::size_t end) {
#if defined(__x86_64__)
      if (has_extension(Avx512Extension::bf16)) return avx512_bf16_dots(task, first, end);
#endif
      dispatch<Bf16Dots>(task, first, end);
    });
    return;
  }
  // Each row of x with its own scale; the VNNI kernels read the bytes as x + 128. Three bytes
  // more: the panel kernel reads the last columns in a group of four.
  const bool vnni = vnni_panels_ != nullptr && has_extension(Avx512Extension::vnni);
  const auto rounded = std::make_unique_for_overwrite<std::int8_t[]>(m * k + 3);
  std::vector<float> x_scales(m);
  std::vector<std::uint8_t> finite_rows(m);
  parallel_for(m, row_grain, [&](std::size_t first_row, std::size_t end_row) {
    for (std::size_t i = first_row; i < end_row; ++i) {
      const float* row = x + i * k;
      float largest = 0.0F;
      for (std::size_t l = 0; l < k; ++l) largest = std::max(largest, std::abs(row[l]));  // NaN is never the max
      const bool finite = std::isfinite(largest) && std::all_of(row, row + k, [](float v) { return !std::isnan(v); });
      finite_rows[i] = finite ? 1 : 0;
      x_scales[i] = largest / int8_limit;
      // A row that is not finite is rounded as zeros (its result is NaN anyway): converting a
      // NaN to an integer is undefined.
      const float inverse = largest == 0.0F || !finite ? 0.0F : int8_limit / largest;
      for (std::size_t l = 0; l < k; ++l) {
        const float scaled = finite ? std::nearbyint(row[l] * inverse) : 0.0F;
        const auto q = static_cast<std::int32_t>(std::clamp(scaled, -int8_limit, int8_limit));
        rounded[i * k + l] = static_cast<std::int8_t>(vnni ? static_cast<std::uint8_t>(q + 128) : q);
      }
    }
  });
  const auto sums = std::make_unique_for_overwrite<std::int32_t[]>(m * n);
  const auto add_scaled_sums = [&](std::size_t first, std::size_t end) {
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = first; j < end; ++j) {
        const float product = static_cast<float>(sums[i * n + j]) * (x_scales[i] * scales_[j]);
        y[i * n + j] = finite_rows[i] != 0 ? y[i * n + j] + product : std::numeric_limits<float>::quiet_NaN();
      }
    }
  };
  // A batch of rows is a matrix product, which oneDNN's VNNI GEMM blocks better than the dot
  // products below (which stream W once for batch-1 decoding); both are exact.
  constexpr std::size_t gemm_rows = 8;
  const auto* x_unsigned = reinterpret_cast<const std::uint8_t*>(rounded.get());
  if (vnni && m >= gemm_rows && blas::exact_int8_gemm(m, n, k, x_unsigned, int8_.get(), sums.get())) {
    parallel_for(n, rows_for_grain(m, elementwise_grain), add_scaled_sums);
    return;
  }
  const Int8Task task{m, n, k, rounded.get(), int8_.get(), sums.get()};
#if defined(__x86_64__)
  if (vnni) {
    for_weight_rows(m, n, k, 2 * panel_rows, [&](std::size_t first, std::size_t end) {
      vnni_dots(task, vnni_panels_.get(), row_sums_.get(), first / (2 * panel_rows), panel_pairs(end));
      add_scaled_sums(first, end);
    });
    return;
  }
#endif
  for_weight_rows(m, n, k, 4, [&](std::size_t first, std::size_t end) {
    dispatch<Int8Dots>(task, first, end);
    add_scaled_sums(first, end);
  });
}

Tensor<float> linear(const Tensor<float>& x, const QuantizedMatrix& weight, const Tensor<float>& bias) {
  const Shape& xs = x.shape();
  const std::size_t in = weight.columns(), out = weight.rows();
  if (xs.empty() || xs.back() != in || (bias.defined() && bias.shape() != Shape{out})) {
    throw shape_error(detail::message("linear: x of shape ", xs, ", a ", weight_format_name(weight.format()),
                                      " weight of shape [", out, ", ", in, "] and bias of shape ",
                                      bias.defined() ? to_string(bias.shape()) : std::string("(none)"),
                                      " do not fit (expected x [..., in], weight [out, in], bias [out])"));
  }
  std::vector<Tensor<float>> inputs{x};
  if (bias.defined()) inputs.push_back(bias);
  require_inference("linear", weight.format(), inputs);
  const std::size_t rows = x.size() / std::max<std::size_t>(in, 1);
  Shape result_shape = xs;
  result_shape.back() = out;
  Array<float> y = Array<float>::from_shape(result_shape);
  parallel_for(rows, rows_for_grain(out, elementwise_grain), [&](std::size_t first_row, std::size_t end_row) {
    for (std::size_t r = first_row; r < end_row; ++r) {
      if (bias.defined()) {
        std::copy_n(bias.data(), out, y.data() + r * out);
      } else {
        std::fill_n(y.data() + r * out, out, 0.0F);
      }
    }
  });
  weight.multiply_add(rows, x.data(), y.data());
  return Tensor<float>(std::move(y));
}

void require_inference(const char* operation, WeightFormat format, const std::vector<Tensor<float>>& inputs) {
  if (detail::should_record(inputs)) {
    throw std::logic_error(detail::message(operation, " with ", weight_format_name(format),
                                           " weights is for inference and has no gradient; run it under NoGradGuard, "
                                           "or train a float32 model"));
  }
}

namespace {
// Whether tensor `name` holds the row scales of an int8 matrix of the file.
bool is_int8_scales(const safetensors::File& file, const std::string& name) {
  if (!name.ends_with(scale_suffix)) return false;
  const std::string matrix = name.substr(0, name.size() - std::strlen(scale_suffix));
  return file.contains(matrix) && file.entry(matrix).dtype == safetensors::Dtype::i8;
}
}  // namespace

safetensors::File dequantized(const safetensors::File& file) {
  safetensors::Writer writer;
  for (const auto& [key, value] : file.metadata()) writer.set_metadata(key, value);
  for (const std::string& name : file.names()) {
    const safetensors::Entry& entry = file.entry(name);
    if (entry.dtype == safetensors::Dtype::i8) {
      writer.add(name, QuantizedMatrix::read(file, name).dequantized());
    } else if (is_int8_scales(file, name)) {
      continue;  // folded into its matrix
    } else if (entry.dtype == safetensors::Dtype::f64) {
      writer.add(name, file.floats<double>(name));
    } else if (safetensors::is_floating(entry.dtype)) {
      writer.add(name, file.floats<float>(name), entry.dtype);
    } else if (entry.dtype == safetensors::Dtype::i32) {
      writer.add(name, file.stored<std::int32_t>(name));
    } else if (entry.dtype == safetensors::Dtype::i64) {
      writer.add(name, file.integers(name));
    } else {
      writer.add(name, file.stored<bool>(name));
    }
  }
  return safetensors::File::parse(writer.serialize(), file.label());
}

}  // namespace xgrad
