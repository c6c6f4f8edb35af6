#pragma once
// A matrix packed once for many products with it: the recurrent weights, which every time
// step of a recurrence multiplies by the batch's state. sgemm repacks its right-hand factor
// into panels on every call; for a 64-row state times a 256 x 1024 W_hh that repacking is
// 10% of a training step, and its kernel, tuned for large products, reaches 70-90 GFLOP/s
// on one core where a kernel that streams panels packed in advance reaches 105-115
// (bench/README.md). Forward passes read it from several threads at once.

#include <cstddef>
#include <memory>

#include "xgrad/framework/isa.h"

namespace xgrad::blas {

template <class T>
class PackedMatrix {
 public:
  // The k x n matrix B, stored row-major as k x n, or as n x k when `transposed` (so that
  // a weight W [n, k] packs as the B of x W^T).
  PackedMatrix(const T* b, bool transposed, std::size_t k, std::size_t n);

  std::size_t rows() const noexcept { return k_; }
  std::size_t columns() const noexcept { return n_; }

  // c[i][j] += sum_l a[i][l] B[l][j] for i < m and first_column <= j < end_column, where row
  // i of A (k values) starts at a + i * lda and row i of C (which starts at column 0) at
  // c + i * ldc. Column ranges that start and end on multiples of panel_width() are fastest.
  // Throws shape_error unless first_column <= end_column <= columns().
  void multiply_add(std::size_t m, const T* a, std::size_t lda, std::size_t first_column, std::size_t end_column,
                    T* c, std::size_t ldc) const;

  // The panel width of a matrix packed now: it follows the active instruction set (isa.h),
  // two of its vectors. A packed matrix keeps the instruction set it was packed for.
  static std::size_t panel_width() noexcept;

 private:
  std::size_t k_, n_;
  Isa isa_;
  // Panel p: k rows of panel_width() values, columns past n zero. Not value-initialised:
  // packing writes every value.
  std::unique_ptr<T[]> panels_;
};

}  // namespace xgrad::blas
