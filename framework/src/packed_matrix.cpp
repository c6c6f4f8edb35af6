#include "xgrad/framework/packed_matrix.h"

#include <algorithm>
#include <cstring>

#include "xgrad/framework/blas.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/threading.h"

namespace xgrad::blas {
namespace {

// The kernel c += A * panel for one instruction set. A panel is two vectors wide; a block of
// rows keeps 2 * rows_per_block accumulators in registers, leaving room for the panel's two
// vectors and the broadcast value (32 registers with AVX-512, 16 below it).
template <Isa isa>
struct PanelProduct {
  static constexpr std::size_t vector_bytes = isa == Isa::avx512 ? 64 : (isa == Isa::avx2 ? 32 : 16);
  static constexpr std::size_t rows_per_block = isa == Isa::avx512 ? 8 : 6;
  template <class T>
  static constexpr std::size_t lanes = vector_bytes / sizeof(T);
  template <class T>
  static constexpr std::size_t panel_width = 2 * lanes<T>;
  template <class T>
  struct Vectors {
    typedef T Type __attribute__((vector_size(vector_bytes)));
  };
  template <class T>
  using Vector = typename Vectors<T>::Type;

  // Vectors pass by reference only: by value they would follow a calling convention that
  // differs with the target's vector width (-Wpsabi).
  template <class T>
  XGRAD_KERNEL static void load(Vector<T>& v, const T* values) {
    std::memcpy(&v, values, sizeof v);
  }

  template <class T>
  XGRAD_KERNEL static void store(T* values, const Vector<T>& v) {
    std::memcpy(values, &v, sizeof v);
  }

  // c[r][0 .. panel width) += sum_l a[r][l] panel[l][..] for r < Rows: c += A * panel
  template <class T, std::size_t Rows>
  XGRAD_KERNEL static void block(std::size_t k, const T* a, std::size_t lda, const T* panel, T* c, std::size_t ldc) {
    Vector<T> sum[Rows][2];
    for (std::size_t r = 0; r < Rows; ++r) {
      load<T>(sum[r][0], c + r * ldc);
      load<T>(sum[r][1], c + r * ldc + lanes<T>);
    }
    for (std::size_t l = 0; l < k; ++l) {
      Vector<T> left, right;
      load<T>(left, panel + l * panel_width<T>);
      load<T>(right, panel + l * panel_width<T> + lanes<T>);
#pragma GCC unroll 8
      for (std::size_t r = 0; r < Rows; ++r) {
        const T value = a[r * lda + l];
        sum[r][0] += value * left;
        sum[r][1] += value * right;
      }
    }
    for (std::size_t r = 0; r < Rows; ++r) {
      store<T>(c + r * ldc, sum[r][0]);
      store<T>(c + r * ldc + lanes<T>, sum[r][1]);
    }
  }

  // block<T, rows> for a row count below rows_per_block known only at run time.
  template <class T, std::size_t Rows = 1>
  XGRAD_KERNEL static void partial_block(std::size_t rows, std::size_t k, const T* a, std::size_t lda, const T* panel,
                                         T* c, std::size_t ldc) {
    if constexpr (Rows < rows_per_block) {
      if (rows == Rows) return block<T, Rows>(k, a, lda, panel, c, ldc);
      partial_block<T, Rows + 1>(rows, k, a, lda, panel, c, ldc);
    }
  }

  // c[i][j] += sum_l a[i][l] B[l][j] for i < m, first_column <= j < end_column, with B packed
  // in panels of panel_width<T> columns. A panel that the range covers only in part is
  // computed into `tile` and the covered columns added from there, so that columns outside
  // the range are never written.
  template <class T>
  XGRAD_KERNEL static void run(std::size_t m, std::size_t k, const T* a, std::size_t lda, const T* panels,
                               std::size_t first_column, std::size_t end_column, T* c, std::size_t ldc) {
    constexpr std::size_t width = panel_width<T>;
    T tile[rows_per_block * width];
    for (std::size_t j = first_column; j < end_column;) {
      const std::size_t panel = j / width, panel_start = panel * width;
      const std::size_t panel_end = std::min(panel_start + width, end_column);
      const T* packed = panels + panel * width * k;
      const bool whole = j == panel_start && panel_end == panel_start + width;
      for (std::size_t i = 0; i < m; i += rows_per_block) {
        const std::size_t rows = std::min(rows_per_block, m - i);
        T* target = whole ? c + i * ldc + panel_start : tile;
        const std::size_t target_stride = whole ? ldc : width;
        if (!whole) std::fill_n(tile, rows * width, T(0));
        if (rows == rows_per_block) {
          block<T, rows_per_block>(k, a + i * lda, lda, packed, target, target_stride);
        } else {
          partial_block<T>(rows, k, a + i * lda, lda, packed, target, target_stride);
        }
        if (whole) continue;
        for (std::size_t r = 0; r < rows; ++r) {
          for (std::size_t col = j; col < panel_end; ++col) c[(i + r) * ldc + col] += tile[r * width + col - panel_start];
        }
      }
      j = panel_end;
    }
  }
};

template <class T>
std::size_t panel_width_for(Isa isa) noexcept {
  switch (isa) {
    case Isa::avx512: return PanelProduct<Isa::avx512>::panel_width<T>;
    case Isa::avx2: return PanelProduct<Isa::avx2>::panel_width<T>;
    default: return PanelProduct<Isa::baseline>::panel_width<T>;
  }
}

}  // namespace

template <class T>
std::size_t PackedMatrix<T>::panel_width() noexcept {
  return panel_width_for<T>(active_isa());
}

template <class T>
PackedMatrix<T>::PackedMatrix(const T* b, bool transposed, std::size_t k, std::size_t n)
    : k_(k), n_(n), isa_(active_isa()) {
  const std::size_t width = panel_width_for<T>(isa_);
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
  if (first_column > end_column || end_column > n_) {
    throw shape_error(detail::message("PackedMatrix::multiply_add: columns [", first_column, ", ", end_column,
                                      ") of a ", k_, " x ", n_, " matrix; expected first <= end <= ", n_));
  }
  count_flops(2 * static_cast<std::uint64_t>(m) * (end_column - first_column) * k_);
  // The instruction set it was packed for, whose panel width the layout has.
  dispatch_to<PanelProduct>(isa_, m, k_, a, lda, static_cast<const T*>(panels_.get()), first_column, end_column, c, ldc);
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace xgrad::blas
