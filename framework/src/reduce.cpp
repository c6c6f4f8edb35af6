#include "xgrad/framework/reduce.h"

#include <cmath>
#include <numeric>

#include "loops.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"

namespace xgrad {
namespace {

// Which axes a reduction removes, and the shapes before and after dropping them.
struct Reduction {
  Shape kept;    // the input shape with reduced axes set to 1
  Shape result;  // `kept`, or without the reduced axes unless keepdims
  std::size_t count = 1;  // elements folded into each result element
};

Reduction plan_reduction(const char* op, const Shape& shape, const Axes& axes, bool keepdims) {
  std::vector<bool> reduced(shape.size(), false);
  for (int axis : axes) {
    const std::size_t a = normalize_axis(op, axis, shape.size());
    if (reduced[a]) {
      throw shape_error(detail::message(op, ": axis ", axis, " is listed twice for shape ", shape));
    }
    reduced[a] = true;
  }
  Reduction plan;
  plan.kept = shape;
  for (std::size_t a = 0; a < shape.size(); ++a) {
    if (!reduced[a]) {
      plan.result.push_back(shape[a]);
      continue;
    }
    plan.count *= shape[a];
    plan.kept[a] = 1;
    if (keepdims) plan.result.push_back(1);
  }
  return plan;
}

Axes all_axes(std::size_t rank) {
  Axes axes(rank);
  std::iota(axes.begin(), axes.end(), 0);
  return axes;
}

// y = scale * sum over the reduced axes of x; dx += scale * dy, broadcast back
template <class T>
Tensor<T> scaled_sum(const char* op, const Tensor<T>& x, const Reduction& plan, double scale) {
  const Array<T>& xv = x.value();
  Array<T> y(plan.result, T(0));
  const T* px = xv.data();
  T* py = y.data();
  const detail::Strides input_strides = detail::contiguous_strides(xv.shape());
  const detail::Strides output_strides = detail::broadcast_strides(plan.kept, xv.shape());
  if (y.size() == 1) {
    double total = 0;  // a full reduction: accumulate in double, as losses are means of many terms
    for (std::size_t i = 0; i < xv.size(); ++i) total += px[i];
    py[0] = static_cast<T>(total * scale);
  } else {
    detail::for_each_offset<2>(xv.shape(), {input_strides, output_strides},
                               [&](std::ptrdiff_t i, std::ptrdiff_t o) { py[o] += px[i]; });
    if (scale != 1.0) y *= static_cast<T>(scale);
  }
  return record<T>(op, std::move(y), {x}, [input_strides, output_strides, scale](Node<T>& node) {
    const T* gy = node.output_grad().data();
    T* gx = node.input_grad(0).data();
    const T factor = static_cast<T>(scale);
    detail::for_each_offset<2>(node.input(0).shape(), {input_strides, output_strides},
                               [&](std::ptrdiff_t i, std::ptrdiff_t o) { gx[i] += factor * gy[o]; });
  });
}

// y = max over the reduced axes of x; dx[argmax] += dy
template <class T>
Tensor<T> max_over(const Tensor<T>& x, const Reduction& plan) {
  const Array<T>& xv = x.value();
  if (plan.count == 0 || xv.size() == 0) {
    throw shape_error(detail::message("max: cannot reduce over an empty axis of shape ", xv.shape()));
  }
  Array<T> y = Array<T>::from_shape(plan.result);
  std::vector<std::ptrdiff_t> winner(y.size(), -1);  // offset in x of each result element
  const T* px = xv.data();
  T* py = y.data();
  detail::for_each_offset<2>(
      xv.shape(),
      {detail::contiguous_strides(xv.shape()), detail::broadcast_strides(plan.kept, xv.shape())},
      [&](std::ptrdiff_t i, std::ptrdiff_t o) {
        const T v = px[i];
        if (winner[o] < 0 || (!std::isnan(py[o]) && (v > py[o] || std::isnan(v)))) {
          py[o] = v;
          winner[o] = i;
        }
      });
  return record<T>("max", std::move(y), {x}, [winner = std::move(winner)](Node<T>& node) {
    const T* gy = node.output_grad().data();
    T* gx = node.input_grad(0).data();
    for (std::size_t o = 0; o < winner.size(); ++o) gx[winner[o]] += gy[o];
  });
}

}  // namespace

template <class T>
Tensor<T> sum(const Tensor<T>& x) {
  return sum(x, all_axes(x.dim()), false);
}

template <class T>
Tensor<T> sum(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  return scaled_sum("sum", x, plan_reduction("sum", x.shape(), axes, keepdims), 1.0);
}

template <class T>
Tensor<T> mean(const Tensor<T>& x) {
  return mean(x, all_axes(x.dim()), false);
}

template <class T>
Tensor<T> mean(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  const Reduction plan = plan_reduction("mean", x.shape(), axes, keepdims);
  if (plan.count == 0) {
    throw shape_error(detail::message("mean: cannot average over an empty axis of shape ", x.shape()));
  }
  return scaled_sum("mean", x, plan, 1.0 / static_cast<double>(plan.count));
}

template <class T>
Tensor<T> max(const Tensor<T>& x) {
  return max(x, all_axes(x.dim()), false);
}

template <class T>
Tensor<T> max(const Tensor<T>& x, const Axes& axes, bool keepdims) {
  return max_over(x, plan_reduction("max", x.shape(), axes, keepdims));
}

template <class T>
Indices argmax(const Tensor<T>& x, int axis, bool keepdims) {
  const Array<T>& xv = x.value();
  const std::size_t a = normalize_axis("argmax", axis, xv.dimension());
  const Reduction plan = plan_reduction("argmax", xv.shape(), {axis}, keepdims);
  if (plan.count == 0) {
    throw shape_error(detail::message("argmax: axis ", axis, " of shape ", xv.shape(), " is empty"));
  }
  const detail::AxisView view = detail::axis_view(xv.shape(), a);
  Indices result = Indices::from_shape(plan.result);
  const T* px = xv.data();
  for (std::size_t outer = 0; outer < view.outer; ++outer) {
    for (std::size_t inner = 0; inner < view.inner; ++inner) {
      const T* row = px + outer * view.extent * view.inner + inner;
      std::size_t best = 0;
      for (std::size_t j = 1; j < view.extent; ++j) {
        const T v = row[j * view.inner];
        if (!std::isnan(row[best * view.inner]) && (v > row[best * view.inner] || std::isnan(v))) {
          best = j;
        }
      }
      result.data()[outer * view.inner + inner] = static_cast<std::int64_t>(best);
    }
  }
  return result;
}

#define XGRAD_INSTANTIATE_REDUCE(T)                                \
  template Tensor<T> sum(const Tensor<T>&);                        \
  template Tensor<T> sum(const Tensor<T>&, const Axes&, bool);     \
  template Tensor<T> mean(const Tensor<T>&);                       \
  template Tensor<T> mean(const Tensor<T>&, const Axes&, bool);    \
  template Tensor<T> max(const Tensor<T>&);                        \
  template Tensor<T> max(const Tensor<T>&, const Axes&, bool);     \
  template Indices argmax(const Tensor<T>&, int, bool);

XGRAD_INSTANTIATE_REDUCE(float)
XGRAD_INSTANTIATE_REDUCE(double)

}  // namespace xgrad
