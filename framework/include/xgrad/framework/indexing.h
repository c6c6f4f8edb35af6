#pragma once
// Selecting elements by index or by mask. Index lookups are checked: an index outside its
// axis is an index_error naming the index, its position and the axis extent.

#include <concepts>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/tensor.h"

namespace xgrad {

// Takes whole slices of x along `axis` at `indices` (of any shape), as numpy.take does:
// result shape = x.shape[:axis] + indices.shape + x.shape[axis+1:]. With axis 0 this is an
// embedding lookup. Backward scatter-adds, so repeated indices accumulate.
template <class T> Tensor<T> index_select(const Tensor<T>& x, int axis, const Indices& indices);

// Rows of `weight` [num, dim] at `ids` (any shape) -> [ids..., dim]: an embedding lookup.
// Rows equal to `padding_idx` receive no gradient (as in PyTorch's F.embedding).
template <class T>
Tensor<T> embedding(const Tensor<T>& weight, const Indices& ids, std::optional<std::int64_t> padding_idx = std::nullopt);

// result[i][j][k] = x[i][indices[i][j][k]][k] for axis 1 (torch.gather): indices has x's rank
// and, outside `axis`, extents no larger than x's. Backward scatter-adds.
template <class T> Tensor<T> gather(const Tensor<T>& x, int axis, const Indices& indices);

// x with `value` wherever `mask` (broadcast to x's shape) is true; no gradient flows there.
template <class T> Tensor<T> masked_fill(const Tensor<T>& x, const Mask& mask, scalar_t<T> value);

// condition ? a : b elementwise, all three broadcast together.
template <class T>
Tensor<T> where(const Mask& condition, const Tensor<T>& a, const Tensor<T>& b);

namespace detail {
template <class X>
inline constexpr bool is_tensor = false;
template <class T>
inline constexpr bool is_tensor<Tensor<T>> = true;
}  // namespace detail

// The same for an unqualified where(mask, a, b): the Mask is an xtensor type, so the call
// also finds xt::where(E1&&, E2&&, E3&&), which takes non-const arguments without a
// conversion; this overload matches as well and, being constrained, is chosen.
template <class C, class A, class B>
  requires std::same_as<std::remove_cvref_t<C>, Mask> && detail::is_tensor<std::remove_cvref_t<A>> &&
           std::same_as<std::remove_cvref_t<A>, std::remove_cvref_t<B>>
std::remove_cvref_t<A> where(C&& condition, A&& a, B&& b) {
  using TensorType = std::remove_cvref_t<A>;
  return xgrad::where(static_cast<const Mask&>(condition), static_cast<const TensorType&>(a),
                      static_cast<const TensorType&>(b));
}

// Indices from their values in row-major order: 1-D, or with a shape (shape_error unless the
// shape holds exactly that many values). indices_from({3, 1, 4, 1}, {2, 2}).
Indices indices_from(const std::vector<std::int64_t>& values);
Indices indices_from(const std::vector<std::int64_t>& values, const Shape& shape);

}  // namespace xgrad
