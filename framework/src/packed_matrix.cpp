#include "xgrad/framework/packed_matrix.h"

#include <algorithm>
#include <cstring>

#include "xgrad/framework/blas.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/threading.h"

namespace xgrad::blas {
namespace {

// One register of the widest vectors the build targets (GCC's vector extension, which
// lowers to narrower instructions where the target has none so wide).
#if defined(__AVX512F__)
constexpr std::size_t vector_bytes = 64;
#else
constexpr std::size_t vector_bytes = 32;
#endif

template <class T>
struct Lanes {
  typedef T Vector __attribute__((vector_size(vector_bytes)));
  static constexpr std::size_t count = vector_bytes / sizeof(T);
};

// A panel is two vectors wide: with 8 rows that is 16 accumulators, which leaves the
// registers for the panel's two vectors and the broadcast value.
template <class T>
constexpr std::size_t panel_width_of = 2 * Lanes<T>::count;

constexpr std::size_t rows_per_block = 8;

// Vectors pass by reference only: by value they would follow a calling convention that
// differs with the target's vector width (-Wpsabi).
template <class T>
void load(typename Lanes<T>::Vector& v, const T* values) {
  std::memcpy(&v, values, sizeof v);
}

template <class T>
void store(T* values, const typename Lanes<T>::Vector& v) {
  std::memcpy(values, &v, sizeof v);
}

// c[r][0 .. panel width) += sum_l a[r][l] panel[l][..] for r < Rows: c += A * panel
template <class T, std::size_t Rows>
void multiply_add_block(std::size_t k, const T* a, std::size_t lda, const T* panel, T* c, std::size_t ldc) {
  using Vector = typename Lanes<T>::Vector;
  constexpr std::size_t lanes = Lanes<T>::count;
  Vector sum[Rows][2];
  for (std::size_t r = 0; r < Rows; ++r) {
    load<T>(sum[r][0], c + r * ldc);
    load<T>(sum[r][1], c + r * ldc + lanes);
  }
  for (std::size_t l = 0; l < k; ++l) {
    Vector left, right;
    load<T>(left, panel + l * 2 * lanes);
    load<T>(right, panel + l * 2 * lanes + lanes);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < Rows; ++r) {
      const T value = a[r * lda + l];
      sum[r][0] += value * left;
      sum[r][1] += value * right;
    }
  }
  for (std::size_t r = 0; r < Rows; ++r) {
    store<T>(c + r * ldc, sum[r][0]);
    store<T>(c + r * ldc + lanes, sum[r][1]);
  }
}

template <class T>
void multiply_add_rows(std::size_t rows, std::size_t k, const T* a, std::size_t lda, const T* panel, T* c,
                       std::size_t ldc) {
  switch (rows) {
    case 1: return multiply_add_block<T, 1>(k, a, lda, panel, c, ldc);
    case 2: return multiply_add_block<T, 2>(k, a, lda, panel, c, ldc);
    case 3: return multiply_add_block<T, 3>(k, a, lda, panel, c, ldc);
    case 4: return multiply_add_block<T, 4>(k, a, lda, panel, c, ldc);
    case 5: return multiply_add_block<T, 5>(k, a, lda, panel, c, ldc);
    case 6: return multiply_add_block<T, 6>(k, a, lda, panel, c, ldc);
    case 7: return multiply_add_block<T, 7>(k, a, lda, panel, c, ldc);
    default: return multiply_add_block<T, rows_per_block>(k, a, lda, panel, c, ldc);
  }
}

}  // namespace

template <class T>
std::size_t PackedMatrix<T>::panel_width() noexcept {
  return panel_width_of<T>;
}

template <class T>
PackedMatrix<T>::PackedMatrix(const T* b, bool transposed, std::size_t k, std::size_t n)
    : k_(k), n_(n) {
  constexpr std::size_t width = panel_width_of<T>;
  const std::size_t panel_count = (n + width - 1) / width;
  panels_ = std::make_unique_for_overwrite<T[]>(panel_count * width * k);
  // Panels on both threads: a recurrence packs W_hh on every pass, and one thread alone
  // would keep the other waiting.
  parallel_for(panel_count, rows_for_grain(width * k, elementwise_grain), [&](std::size_t first, std::size_t end) {
    for (std::size_t panel = first; panel < end; ++panel) {
      T* packed = panels_.get() + panel * width * k;
      const std::size_t first_column = panel * width, columns = std::min(width, n - first_column);
      // Each loop reads B in its stored order; columns past n stay zero.
      if (transposed) {
        for (std::size_t l = 0; l < k; ++l) std::fill_n(packed + l * width + columns, width - columns, T(0));
        for (std::size_t j = 0; j < columns; ++j) {
          for (std::size_t l = 0; l < k; ++l) packed[l * width + j] = b[(first_column + j) * k + l];
        }
      } else {
        for (std::size_t l = 0; l < k; ++l) {
          std::copy_n(b + l * n + first_column, columns, packed + l * width);
          std::fill_n(packed + l * width + columns, width - columns, T(0));
        }
      }
    }
  });
}

template <class T>
void PackedMatrix<T>::multiply_add(std::size_t m, const T* a, std::size_t lda, std::size_t first_column,
                                   std::size_t end_column, T* c, std::size_t ldc) const {
  constexpr std::size_t width = panel_width_of<T>;
  if (first_column > end_column || end_column > n_) {
    throw shape_error(detail::message("PackedMatrix::multiply_add: columns [", first_column, ", ", end_column,
                                      ") of a ", k_, " x ", n_, " matrix; expected first <= end <= ", n_));
  }
  count_flops(2 * static_cast<std::uint64_t>(m) * (end_column - first_column) * k_);
  // A panel that the range covers only in part is computed into `tile` and the covered
  // columns added from there, so that columns outside the range are never written.
  T tile[rows_per_block * width];
  for (std::size_t j = first_column; j < end_column;) {
    const std::size_t panel = j / width, panel_start = panel * width;
    const std::size_t panel_end = std::min(panel_start + width, end_column);
    const T* packed = panels_.get() + panel * width * k_;
    const bool whole = j == panel_start && panel_end == panel_start + width;
    for (std::size_t i = 0; i < m; i += rows_per_block) {
      const std::size_t rows = std::min(rows_per_block, m - i);
      if (whole) {
        multiply_add_rows(rows, k_, a + i * lda, lda, packed, c + i * ldc + panel_start, ldc);
        continue;
      }
      std::fill_n(tile, rows * width, T(0));
      multiply_add_rows(rows, k_, a + i * lda, lda, packed, tile, width);
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t col = j; col < panel_end; ++col) c[(i + r) * ldc + col] += tile[r * width + col - panel_start];
      }
    }
    j = panel_end;
  }
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace xgrad::blas
