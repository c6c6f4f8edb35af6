#include "xgrad/framework/indexing.h"

#include <algorithm>

#include "loops.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"

namespace xgrad {
namespace {

// The multi-index of flat position `flat` in `shape`, for error messages.
std::string position_in(const Shape& shape, std::size_t flat) {
  Shape index(shape.size());
  for (std::size_t axis = shape.size(); axis-- > 0;) {
    index[axis] = flat % shape[axis];
    flat /= shape[axis];
  }
  return to_string(index);
}

void check_index(const char* op, const Indices& indices, std::size_t flat, std::size_t extent,
                 int axis, const Shape& x_shape) {
  const std::int64_t index = indices.data()[flat];
  if (index < 0 || static_cast<std::uint64_t>(index) >= extent) {
    throw index_error(detail::message(op, ": index ", index, " at position ",
                                      position_in(indices.shape(), flat), " of the indices is out of range for axis ",
                                      axis, " of extent ", extent, " (tensor shape ", x_shape, ")"));
  }
}

void check_mask(const char* op, const char* what, const Shape& mask, const Shape& target) {
  if (!broadcasts_to(mask, target)) {
    throw shape_error(detail::message(op, ": the ", what, " of shape ", mask,
                                      " does not broadcast to shape ", target));
  }
}

// y[o, j, i] = x[o, indices[j], i]; dx[o, indices[j], i] += dy[o, j, i] except where
// indices[j] == skip
template <class T>
Tensor<T> take_along(const char* op, const Tensor<T>& x, int axis, const Indices& indices,
                     std::optional<std::int64_t> skip) {
  const std::size_t a = normalize_axis(op, axis, x.dim());
  const detail::AxisView view = detail::axis_view(x.shape(), a);
  const std::size_t count = indices.size();
  for (std::size_t j = 0; j < count; ++j) check_index(op, indices, j, view.extent, axis, x.shape());
  Shape shape(x.shape().begin(), x.shape().begin() + static_cast<std::ptrdiff_t>(a));
  shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
  shape.insert(shape.end(), x.shape().begin() + static_cast<std::ptrdiff_t>(a) + 1, x.shape().end());
  Array<T> y = Array<T>::from_shape(shape);
  const std::int64_t* ids = indices.data();
  for (std::size_t o = 0; o < view.outer; ++o) {
    for (std::size_t j = 0; j < count; ++j) {
      std::copy_n(x.data() + (o * view.extent + static_cast<std::size_t>(ids[j])) * view.inner, view.inner,
                  y.data() + (o * count + j) * view.inner);
    }
  }
  return record<T>(op, std::move(y), {x}, [view, indices, skip](Node<T>& node) {
    const T* gy = node.output_grad().data();
    T* gx = node.input_grad(0).data();
    const std::size_t count = indices.size();
    const std::int64_t* ids = indices.data();
    for (std::size_t o = 0; o < view.outer; ++o) {
      for (std::size_t j = 0; j < count; ++j) {
        if (skip && ids[j] == *skip) continue;
        T* dst = gx + (o * view.extent + static_cast<std::size_t>(ids[j])) * view.inner;
        const T* src = gy + (o * count + j) * view.inner;
        for (std::size_t i = 0; i < view.inner; ++i) dst[i] += src[i];
      }
    }
  }, reads_no_values());
}

}  // namespace

template <class T>
Tensor<T> index_select(const Tensor<T>& x, int axis, const Indices& indices) {
  return take_along("index_select", x, axis, indices, std::nullopt);
}

template <class T>
Tensor<T> embedding(const Tensor<T>& weight, const Indices& ids, std::optional<std::int64_t> padding_idx) {
  if (weight.dim() != 2) {
    throw shape_error(detail::message("embedding: the weight has shape ", weight.shape(), "; expected [num, dim]"));
  }
  return take_along("embedding", weight, 0, ids, padding_idx);
}

// y[p] = x[p with axis coordinate replaced by indices[p]]; dx[that element] += dy[p]
template <class T>
Tensor<T> gather(const Tensor<T>& x, int axis, const Indices& indices) {
  const std::size_t a = normalize_axis("gather", axis, x.dim());
  const Shape& xs = x.shape();
  const Shape& is = indices.shape();
  bool fits = is.size() == xs.size();
  for (std::size_t i = 0; fits && i < is.size(); ++i) fits = i == a || is[i] <= xs[i];
  if (!fits) {
    throw shape_error(detail::message("gather: indices of shape ", is, " do not fit x of shape ", xs,
                                      " (same rank, and no larger extents outside axis ", axis, ")"));
  }
  const detail::Strides x_strides = detail::contiguous_strides(xs);
  detail::Strides base_strides = x_strides;  // stride in x of each index axis, but the gathered one
  base_strides[a] = 0;
  const detail::Strides index_strides = detail::contiguous_strides(is);
  std::vector<std::ptrdiff_t> sources(indices.size());
  const std::ptrdiff_t axis_stride = x_strides[a];
  detail::for_each_offset<2>(is, {index_strides, base_strides}, [&](std::ptrdiff_t p, std::ptrdiff_t base) {
    check_index("gather", indices, static_cast<std::size_t>(p), xs[a], axis, xs);
    sources[static_cast<std::size_t>(p)] = base + indices.data()[p] * axis_stride;
  });
  Array<T> y = Array<T>::from_shape(is);
  for (std::size_t p = 0; p < sources.size(); ++p) y.data()[p] = x.data()[sources[p]];
  return record<T>("gather", std::move(y), {x}, [sources = std::move(sources)](Node<T>& node) {
    const T* gy = node.output_grad().data();
    T* gx = node.input_grad(0).data();
    for (std::size_t p = 0; p < sources.size(); ++p) gx[sources[p]] += gy[p];
  });
}

// y = mask ? value : x; dx += dy * !mask
template <class T>
Tensor<T> masked_fill(const Tensor<T>& x, const Mask& mask, scalar_t<T> value) {
  check_mask("masked_fill", "mask", mask.shape(), x.shape());
  const detail::Strides x_strides = detail::contiguous_strides(x.shape());
  const detail::Strides mask_strides = detail::broadcast_strides(mask.shape(), x.shape());
  Array<T> y = Array<T>::from_shape(x.shape());
  const T* px = x.data();
  const bool* pm = mask.data();
  T* py = y.data();
  detail::for_each_offset<2>(x.shape(), {x_strides, mask_strides},
                             [&](std::ptrdiff_t i, std::ptrdiff_t m) { py[i] = pm[m] ? value : px[i]; });
  return record<T>("masked_fill", std::move(y), {x}, [mask, x_strides, mask_strides](Node<T>& node) {
    const T* gy = node.output_grad().data();
    T* gx = node.input_grad(0).data();
    const bool* pm = mask.data();
    detail::for_each_offset<2>(node.input(0).shape(), {x_strides, mask_strides},
                               [&](std::ptrdiff_t i, std::ptrdiff_t m) {
                                 if (!pm[m]) gx[i] += gy[i];
                               });
  });
}

// y = c ? a : b; da += dy * c; db += dy * !c
template <class T>
Tensor<T> where(const Mask& condition, const Tensor<T>& a, const Tensor<T>& b) {
  const Shape shape = broadcast_shapes("where", condition.shape(), broadcast_shapes("where", a.shape(), b.shape()));
  const std::array<detail::Strides, 4> strides{
      detail::contiguous_strides(shape), detail::broadcast_strides(condition.shape(), shape),
      detail::broadcast_strides(a.shape(), shape), detail::broadcast_strides(b.shape(), shape)};
  Array<T> y = Array<T>::from_shape(shape);
  const bool* pc = condition.data();
  const T* pa = a.data();
  const T* pb = b.data();
  T* py = y.data();
  detail::for_each_offset<4>(shape, strides, [&](std::ptrdiff_t o, std::ptrdiff_t c, std::ptrdiff_t i, std::ptrdiff_t j) {
    py[o] = pc[c] ? pa[i] : pb[j];
  });
  return record<T>("where", std::move(y), {a, b}, [condition, shape, strides](Node<T>& node) {
    const T* gy = node.output_grad().data();
    T* ga = node.needs_grad(0) ? node.input_grad(0).data() : nullptr;
    T* gb = node.needs_grad(1) ? node.input_grad(1).data() : nullptr;
    const bool* pc = condition.data();
    detail::for_each_offset<4>(shape, strides, [&](std::ptrdiff_t o, std::ptrdiff_t c, std::ptrdiff_t i, std::ptrdiff_t j) {
      if (pc[c]) {
        if (ga != nullptr) ga[i] += gy[o];
      } else if (gb != nullptr) {
        gb[j] += gy[o];
      }
    });
  });
}

Indices indices_from(const std::vector<std::int64_t>& values) { return indices_from(values, {values.size()}); }

Indices indices_from(const std::vector<std::int64_t>& values, const Shape& shape) {
  if (values.size() != element_count(shape)) {
    throw shape_error(detail::message("indices_from: ", values.size(), " values cannot fill shape ", shape, " (",
                                      element_count(shape), " elements)"));
  }
  Indices indices = Indices::from_shape(shape);
  std::copy(values.begin(), values.end(), indices.begin());
  return indices;
}

#define XGRAD_INSTANTIATE_INDEXING(T)                                               \
  template Tensor<T> index_select(const Tensor<T>&, int, const Indices&);           \
  template Tensor<T> embedding(const Tensor<T>&, const Indices&, std::optional<std::int64_t>); \
  template Tensor<T> gather(const Tensor<T>&, int, const Indices&);                 \
  template Tensor<T> masked_fill(const Tensor<T>&, const Mask&, scalar_t<T>);       \
  template Tensor<T> where(const Mask&, const Tensor<T>&, const Tensor<T>&);

XGRAD_INSTANTIATE_INDEXING(float)
XGRAD_INSTANTIATE_INDEXING(double)

}  // namespace xgrad
