#pragma once
// Operations that move elements without changing them: reshaping, permuting axes,
// concatenating, stacking and slicing. Each result is a new contiguous tensor.

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "xgrad/framework/tensor.h"

namespace xgrad {

// A target shape in which at most one extent may be -1 (inferred from the element count).
using ShapeRequest = std::vector<std::int64_t>;

template <class T> Tensor<T> reshape(const Tensor<T>& x, const ShapeRequest& shape);
// Inserts an axis of extent 1 at `axis` (in the result's numbering).
template <class T> Tensor<T> unsqueeze(const Tensor<T>& x, int axis);
// Removes `axis`, which must have extent 1.
template <class T> Tensor<T> squeeze(const Tensor<T>& x, int axis);
// result.shape[i] == x.shape[order[i]]
template <class T> Tensor<T> permute(const Tensor<T>& x, const Axes& order);
template <class T> Tensor<T> transpose(const Tensor<T>& x, int axis_a, int axis_b);
// Joins tensors along an existing axis; all other extents must agree.
template <class T> Tensor<T> concat(const std::vector<Tensor<T>>& xs, int axis);
// Joins equally shaped tensors along a new axis.
template <class T> Tensor<T> stack(const std::vector<Tensor<T>>& xs, int axis);
// The same for a brace list, whose element type a std::vector parameter cannot deduce:
// concat({a, b}, 0).
template <class T> Tensor<T> concat(std::initializer_list<Tensor<T>> xs, int axis) {
  return concat(std::vector<Tensor<T>>(xs), axis);
}
template <class T> Tensor<T> stack(std::initializer_list<Tensor<T>> xs, int axis) {
  return stack(std::vector<Tensor<T>>(xs), axis);
}
// The elements start <= i < end along `axis` (negative positions count from the end).
template <class T> Tensor<T> slice(const Tensor<T>& x, int axis, std::int64_t start, std::int64_t end);
// The sub-tensor at `index` along `axis`, without that axis.
template <class T> Tensor<T> select(const Tensor<T>& x, int axis, std::int64_t index);

}  // namespace xgrad
