#pragma once
// Loops over contiguous buffers shared by the elementwise, reduction and layout kernels.
// Every operand is addressed by element strides; a stride of 0 repeats an element along an
// axis, which is how broadcasting reads and how reductions accumulate.

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

#include "xgrad/framework/shape.h"
#include "xgrad/framework/tensor.h"
#include "xgrad/framework/threading.h"

namespace xgrad::detail {

using Strides = xt::svector<std::ptrdiff_t, 4>;

// Row-major element strides of a contiguous buffer of `shape`.
Strides contiguous_strides(const Shape& shape);

// Strides for reading an operand of shape `operand` at every index of `result`, which it
// broadcasts to (right-aligned; 0 along axes where the operand has extent 1 or is missing).
Strides broadcast_strides(const Shape& operand, const Shape& result);

template <std::size_t N, class Visit, std::size_t... I>
inline void visit_row(Visit& visit, const std::array<std::ptrdiff_t, N>& base,
                      const std::array<std::ptrdiff_t, N>& step, std::size_t count,
                      std::index_sequence<I...>) {
  const auto n = static_cast<std::ptrdiff_t>(count);
  if (((step[I] == 1) && ...)) {
    // All operands contiguous along the row: the form the compiler vectorises.
    for (std::ptrdiff_t j = 0; j < n; ++j) visit((base[I] + j)...);
  } else {
    for (std::ptrdiff_t j = 0; j < n; ++j) visit((base[I] + j * step[I])...);
  }
}

// Calls visit(offset_0, ..., offset_{N-1}) for every index of `extents` in row-major order,
// where offset_k is that index's element offset in operand k. Axes of extent 1 are dropped
// and neighbouring axes merged wherever every operand allows, so that the inner loop is as
// long as possible.
template <std::size_t N, class Visit>
void for_each_offset(const Shape& extents, const std::array<Strides, N>& strides, Visit&& visit) {
  xt::svector<std::size_t, 6> merged_extents;
  std::array<xt::svector<std::ptrdiff_t, 6>, N> merged_strides;
  for (std::size_t axis = 0; axis < extents.size(); ++axis) {
    const std::size_t extent = extents[axis];
    if (extent == 0) return;
    if (extent == 1) continue;
    bool merges = !merged_extents.empty();
    for (std::size_t k = 0; k < N && merges; ++k) {
      merges = merged_strides[k].back() == strides[k][axis] * static_cast<std::ptrdiff_t>(extent);
    }
    if (merges) {
      merged_extents.back() *= extent;
      for (std::size_t k = 0; k < N; ++k) merged_strides[k].back() = strides[k][axis];
    } else {
      merged_extents.push_back(extent);
      for (std::size_t k = 0; k < N; ++k) merged_strides[k].push_back(strides[k][axis]);
    }
  }
  std::array<std::ptrdiff_t, N> base{};
  std::array<std::ptrdiff_t, N> step{};
  if (merged_extents.empty()) {  // a single element
    visit_row<N>(visit, base, step, 1, std::make_index_sequence<N>{});
    return;
  }
  const std::size_t outer_rank = merged_extents.size() - 1;
  const std::size_t row = merged_extents.back();
  for (std::size_t k = 0; k < N; ++k) step[k] = merged_strides[k].back();
  xt::svector<std::size_t, 6> index(outer_rank, 0);
  while (true) {
    visit_row<N>(visit, base, step, row, std::make_index_sequence<N>{});
    // Advance the outer index like an odometer.
    std::size_t axis = outer_rank;
    while (axis > 0) {
      --axis;
      for (std::size_t k = 0; k < N; ++k) base[k] += merged_strides[k][axis];
      if (++index[axis] < merged_extents[axis]) break;
      for (std::size_t k = 0; k < N; ++k) {
        base[k] -= merged_strides[k][axis] * static_cast<std::ptrdiff_t>(merged_extents[axis]);
      }
      index[axis] = 0;
      if (axis == 0) return;
    }
    if (outer_rank == 0) return;
  }
}

// Sets every element to `value`, on the pool's threads when the array is large: the pages of
// a fresh buffer are then faulted in and zeroed on every core, not on one.
template <class T>
void parallel_fill(Array<T>& array, T value) {
  T* data = array.data();
  parallel_for(array.size(), elementwise_grain,
               [&](std::size_t begin, std::size_t end) { std::fill(data + begin, data + end, value); });
}

template <class T>
Array<T> parallel_filled(const Shape& shape, T value) {
  Array<T> result = Array<T>::from_shape(shape);
  parallel_fill(result, value);
  return result;
}

// A tensor seen as [outer, extent, inner] around one axis: the form of every kernel that
// works along an axis (softmax, concatenation, slicing, index_select).
struct AxisView {
  std::size_t outer = 1;
  std::size_t extent = 1;
  std::size_t inner = 1;
};
AxisView axis_view(const Shape& shape, std::size_t axis);

}  // namespace xgrad::detail
