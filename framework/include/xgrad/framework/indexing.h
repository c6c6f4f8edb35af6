#pragma once
// Selecting elements by index or by mask. Index lookups are checked: an index outside its
// axis is an index_error naming the index, its position and the axis extent.

#include <cstdint>
#include <optional>

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

// condition ? a : b elementwise, all three broadcast together. Call it as xgrad::where: the
// Mask argument is an xtensor type, so an unqualified call also finds xt::where.
template <class T>
Tensor<T> where(const Mask& condition, const Tensor<T>& a, const Tensor<T>& b);

}  // namespace xgrad
