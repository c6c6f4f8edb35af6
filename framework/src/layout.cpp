#include "xgrad/framework/layout.h"

#include <algorithm>
#include <cstring>

#include "loops.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"

namespace xgrad {
namespace {

std::string request_text(const ShapeRequest& request) {
  std::string text = "[";
  for (std::size_t i = 0; i < request.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(request[i]);
  }
  return text + "]";
}

Shape resolve_shape(const Shape& from, const ShapeRequest& request) {
  const std::size_t count = element_count(from);
  std::size_t known = 1;
  std::ptrdiff_t inferred = -1;
  Shape shape(request.size());
  for (std::size_t i = 0; i < request.size(); ++i) {
    if (request[i] == -1 && inferred < 0) {
      inferred = static_cast<std::ptrdiff_t>(i);
      continue;
    }
    if (request[i] < 0) {
      throw shape_error(detail::message("reshape: cannot reshape ", from, " to ", request_text(request),
                                        " (only one extent may be -1, none other negative)"));
    }
    shape[i] = static_cast<std::size_t>(request[i]);
    known *= shape[i];
  }
  if (inferred >= 0) {
    if (known == 0 || count % known != 0) {
      throw shape_error(detail::message("reshape: cannot infer the -1 extent of ", request_text(request),
                                        " for ", count, " elements of shape ", from));
    }
    shape[static_cast<std::size_t>(inferred)] = count / known;
    known *= shape[static_cast<std::size_t>(inferred)];
  }
  if (known != count) {
    throw shape_error(detail::message("reshape: cannot reshape ", from, " (", count, " elements) to ",
                                      request_text(request), " (", known, " elements)"));
  }
  return shape;
}

// Result and gradient have the same elements in the same order; only the shape differs.
// dx += reshape(dy, x.shape)
template <class T>
Tensor<T> with_shape(const char* op, const Tensor<T>& x, const Shape& shape) {
  Array<T> y = Array<T>::from_shape(shape);
  const T* values = x.data();
  parallel_for(x.size(), elementwise_grain, [&, out = y.data()](std::size_t begin, std::size_t end) {
    std::copy(values + begin, values + end, out + begin);
  });
  return record<T>(
      op, std::move(y), {x},
      [](Node<T>& node) {
        const T* gy = node.output_grad().data();
        T* gx = node.input_grad(0).data();
        parallel_for(node.output_grad().size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
          for (std::size_t i = begin; i < end; ++i) gx[i] += gy[i];
        });
      },
      reads_no_values());
}

Shape with_axis_inserted(const Shape& shape, std::size_t axis, std::size_t extent) {
  Shape result;
  for (std::size_t i = 0; i <= shape.size(); ++i) {
    if (i == axis) result.push_back(extent);
    if (i < shape.size()) result.push_back(shape[i]);
  }
  return result;
}

Shape with_axis_removed(const Shape& shape, std::size_t axis) {
  Shape result;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != axis) result.push_back(shape[i]);
  }
  return result;
}

std::int64_t resolve_position(const char* op, const char* what, std::int64_t position,
                              std::size_t extent, const Shape& shape, int axis, bool inclusive_end) {
  const auto n = static_cast<std::int64_t>(extent);
  const std::int64_t resolved = position < 0 ? position + n : position;
  const std::int64_t upper = inclusive_end ? n : n - 1;
  if (resolved < 0 || resolved > upper) {
    throw index_error(detail::message(op, ": ", what, " ", position, " is out of range for axis ",
                                      axis, " of extent ", extent, " in shape ", shape));
  }
  return resolved;
}

// Copies rows [start, start + count) of x seen as [outer, extent, inner] into a result of
// `shape`; dx[rows] += dy
template <class T>
Tensor<T> take_rows(const char* op, const Tensor<T>& x, std::size_t axis, std::size_t start,
                    std::size_t count, const Shape& shape) {
  const detail::AxisView view = detail::axis_view(x.shape(), axis);
  const std::size_t block = count * view.inner;
  Array<T> y = Array<T>::from_shape(shape);
  for (std::size_t o = 0; o < view.outer; ++o) {
    std::copy_n(x.data() + (o * view.extent + start) * view.inner, block, y.data() + o * block);
  }
  return record<T>(
      op, std::move(y), {x},
      [view, start, block](Node<T>& node) {
        const T* gy = node.output_grad().data();
        T* gx = node.input_grad(0).data();
        for (std::size_t o = 0; o < view.outer; ++o) {
          T* dst = gx + (o * view.extent + start) * view.inner;
          const T* src = gy + o * block;
          for (std::size_t i = 0; i < block; ++i) dst[i] += src[i];
        }
      },
      reads_no_values());
}

// Joins xs along `axis` of `shape`, where input k contributes extents[k] there; each input
// is seen as [outer, extents[k] * inner]. dx_k += its block of dy
template <class T>
Tensor<T> join(const char* op, const std::vector<Tensor<T>>& xs, std::size_t axis,
               const std::vector<std::size_t>& extents, const Shape& shape) {
  const detail::AxisView view = detail::axis_view(shape, axis);
  std::vector<std::size_t> blocks(xs.size());
  for (std::size_t k = 0; k < xs.size(); ++k) blocks[k] = extents[k] * view.inner;
  const std::size_t row = view.extent * view.inner;
  Array<T> y = Array<T>::from_shape(shape);
  const std::size_t rows_per_range = rows_for_grain(row, elementwise_grain);
  parallel_for(view.outer, rows_per_range, [&, out = y.data()](std::size_t first_row, std::size_t end_row) {
    for (std::size_t o = first_row; o < end_row; ++o) {
      T* dst = out + o * row;
      for (std::size_t k = 0; k < xs.size(); ++k) {
        std::copy_n(xs[k].data() + o * blocks[k], blocks[k], dst);
        dst += blocks[k];
      }
    }
  });
  return record<T>(op, std::move(y), xs, [blocks, outer = view.outer, row, rows_per_range](Node<T>& node) {
    const T* gy = node.output_grad().data();
    std::size_t offset = 0;
    for (std::size_t k = 0; k < blocks.size(); ++k) {
      if (node.needs_grad(k)) {
        T* gx = node.input_grad(k).data();
        parallel_for(outer, rows_per_range, [&](std::size_t first_row, std::size_t end_row) {
          for (std::size_t o = first_row; o < end_row; ++o) {
            const T* src = gy + o * row + offset;
            T* dst = gx + o * blocks[k];
            for (std::size_t i = 0; i < blocks[k]; ++i) dst[i] += src[i];
          }
        });
      }
      offset += blocks[k];
    }
  }, reads_no_values());
}

template <class T>
std::string list_shapes(const std::vector<Tensor<T>>& xs) {
  std::string text;
  for (std::size_t k = 0; k < xs.size(); ++k) text += (k == 0 ? "" : ", ") + to_string(xs[k].shape());
  return text;
}

}  // namespace

template <class T>
Tensor<T> reshape(const Tensor<T>& x, const ShapeRequest& shape) {
  return with_shape("reshape", x, resolve_shape(x.shape(), shape));
}

template <class T>
Tensor<T> unsqueeze(const Tensor<T>& x, int axis) {
  const std::size_t a = normalize_axis("unsqueeze", axis, x.dim() + 1);
  return with_shape("unsqueeze", x, with_axis_inserted(x.shape(), a, 1));
}

template <class T>
Tensor<T> squeeze(const Tensor<T>& x, int axis) {
  const std::size_t a = normalize_axis("squeeze", axis, x.dim());
  if (x.shape()[a] != 1) {
    throw shape_error(detail::message("squeeze: axis ", axis, " of shape ", x.shape(),
                                      " has extent ", x.shape()[a], ", not 1"));
  }
  return with_shape("squeeze", x, with_axis_removed(x.shape(), a));
}

// y[i...] = x[i permuted]; dx[i permuted] += dy[i...]
template <class T>
Tensor<T> permute(const Tensor<T>& x, const Axes& order) {
  const std::size_t rank = x.dim();
  if (order.size() != rank) {
    throw shape_error(detail::message("permute: ", order.size(), " axes given for shape ", x.shape(),
                                      " of rank ", rank));
  }
  const detail::Strides x_strides = detail::contiguous_strides(x.shape());
  Shape shape(rank);
  detail::Strides gather_strides(rank);  // stride in x of each result axis
  std::vector<bool> used(rank, false);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t a = normalize_axis("permute", order[i], rank);
    if (used[a]) {
      throw shape_error(detail::message("permute: axis ", order[i], " appears twice in the order for shape ",
                                        x.shape()));
    }
    used[a] = true;
    shape[i] = x.shape()[a];
    gather_strides[i] = x_strides[a];
  }
  const detail::Strides y_strides = detail::contiguous_strides(shape);
  Array<T> y = Array<T>::from_shape(shape);
  const T* px = x.data();
  T* py = y.data();
  detail::for_each_offset<2>(shape, {y_strides, gather_strides},
                             [&](std::ptrdiff_t o, std::ptrdiff_t i) { py[o] = px[i]; });
  return record<T>("permute", std::move(y), {x}, [shape, y_strides, gather_strides](Node<T>& node) {
    const T* gy = node.output_grad().data();
    T* gx = node.input_grad(0).data();
    detail::for_each_offset<2>(shape, {y_strides, gather_strides},
                               [&](std::ptrdiff_t o, std::ptrdiff_t i) { gx[i] += gy[o]; });
  });
}

template <class T>
Tensor<T> transpose(const Tensor<T>& x, int axis_a, int axis_b) {
  const std::size_t a = normalize_axis("transpose", axis_a, x.dim());
  const std::size_t b = normalize_axis("transpose", axis_b, x.dim());
  Axes order(x.dim());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::swap(order[a], order[b]);
  return permute(x, order);
}

template <class T>
Tensor<T> concat(const std::vector<Tensor<T>>& xs, int axis) {
  if (xs.empty()) throw shape_error("concat: no tensors to concatenate");
  const Shape& first = xs.front().shape();
  const std::size_t a = normalize_axis("concat", axis, first.size());
  Shape shape = first;
  shape[a] = 0;
  std::vector<std::size_t> extents(xs.size());
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const Shape& s = xs[k].shape();
    bool compatible = s.size() == first.size();
    for (std::size_t i = 0; compatible && i < s.size(); ++i) compatible = i == a || s[i] == first[i];
    if (!compatible) {
      throw shape_error(detail::message("concat: shapes ", list_shapes(xs),
                                        " differ outside axis ", axis, " (tensor ", k, ")"));
    }
    extents[k] = s[a];
    shape[a] += s[a];
  }
  return join("concat", xs, a, extents, shape);
}

template <class T>
Tensor<T> stack(const std::vector<Tensor<T>>& xs, int axis) {
  if (xs.empty()) throw shape_error("stack: no tensors to stack");
  const Shape& first = xs.front().shape();
  for (std::size_t k = 1; k < xs.size(); ++k) {
    if (xs[k].shape() != first) {
      throw shape_error(detail::message("stack: shapes ", list_shapes(xs),
                                        " differ (tensor ", k, "); all must be equal"));
    }
  }
  const std::size_t a = normalize_axis("stack", axis, first.size() + 1);
  return join("stack", xs, a, std::vector<std::size_t>(xs.size(), 1), with_axis_inserted(first, a, xs.size()));
}

template <class T>
Tensor<T> slice(const Tensor<T>& x, int axis, std::int64_t start, std::int64_t end) {
  const std::size_t a = normalize_axis("slice", axis, x.dim());
  const std::size_t extent = x.shape()[a];
  const std::int64_t first = resolve_position("slice", "start", start, extent, x.shape(), axis, true);
  const std::int64_t last = resolve_position("slice", "end", end, extent, x.shape(), axis, true);
  if (last < first) {
    throw index_error(detail::message("slice: end ", end, " comes before start ", start, " on axis ",
                                      axis, " of shape ", x.shape()));
  }
  Shape shape = x.shape();
  shape[a] = static_cast<std::size_t>(last - first);
  return take_rows("slice", x, a, static_cast<std::size_t>(first), shape[a], shape);
}

template <class T>
Tensor<T> select(const Tensor<T>& x, int axis, std::int64_t index) {
  const std::size_t a = normalize_axis("select", axis, x.dim());
  const std::int64_t position =
      resolve_position("select", "index", index, x.shape()[a], x.shape(), axis, false);
  return take_rows("select", x, a, static_cast<std::size_t>(position), 1, with_axis_removed(x.shape(), a));
}

#define XGRAD_INSTANTIATE_LAYOUT(T)                                               \
  template Tensor<T> reshape(const Tensor<T>&, const ShapeRequest&);              \
  template Tensor<T> unsqueeze(const Tensor<T>&, int);                            \
  template Tensor<T> squeeze(const Tensor<T>&, int);                              \
  template Tensor<T> permute(const Tensor<T>&, const Axes&);                      \
  template Tensor<T> transpose(const Tensor<T>&, int, int);                       \
  template Tensor<T> concat(const std::vector<Tensor<T>>&, int);                  \
  template Tensor<T> stack(const std::vector<Tensor<T>>&, int);                   \
  template Tensor<T> slice(const Tensor<T>&, int, std::int64_t, std::int64_t);    \
  template Tensor<T> select(const Tensor<T>&, int, std::int64_t);

XGRAD_INSTANTIATE_LAYOUT(float)
XGRAD_INSTANTIATE_LAYOUT(double)

}  // namespace xgrad
