#include "xgrad/framework/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "loops.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/fast_math.h"
#include "xgrad/framework/isa.h"

namespace xgrad {
namespace {

// The mask expanded to x's full shape (one flag per element), so that the kernels below can
// walk it alongside x.
std::vector<unsigned char> expand_mask(const char* op, const Mask& mask, const Shape& shape) {
  if (!broadcasts_to(mask.shape(), shape)) {
    throw shape_error(detail::message(op, ": the mask of shape ", mask.shape(),
                                      " does not broadcast to the input shape ", shape));
  }
  std::vector<unsigned char> expanded(element_count(shape));
  const bool* pm = mask.data();
  detail::for_each_offset<2>(
      shape, {detail::contiguous_strides(shape), detail::broadcast_strides(mask.shape(), shape)},
      [&](std::ptrdiff_t i, std::ptrdiff_t m) { expanded[static_cast<std::size_t>(i)] = pm[m] ? 1 : 0; });
  return expanded;
}

// Softmax rows of x seen as [outer, extent, inner]: each (outer, inner) pair is one row with
// stride `inner`. Writes probabilities, or log-probabilities when `log` is set. For each
// instruction set (isa.h): a decoder's output layer is a softmax over the whole vocabulary.
template <Isa isa>
struct SoftmaxRows {
  template <class T>
  XGRAD_KERNEL static void run(const T* x, const unsigned char* masked, T* y, const detail::AxisView& view, bool log) {
    if (masked == nullptr && view.inner == 1 && !log) {
      contiguous_softmax(x, y, view);
      return;
    }
    const T masked_value = log ? -std::numeric_limits<T>::infinity() : T(0);
    for (std::size_t o = 0; o < view.outer; ++o) {
      for (std::size_t i = 0; i < view.inner; ++i) {
        const std::size_t start = o * view.extent * view.inner + i;
        const unsigned char* row_mask = masked == nullptr ? nullptr : masked + start;
        T largest = -std::numeric_limits<T>::infinity();
        bool any = false;
        for (std::size_t j = 0; j < view.extent; ++j) {
          if (row_mask != nullptr && row_mask[j * view.inner] != 0) continue;
          any = true;
          largest = std::max(largest, x[start + j * view.inner]);
        }
        // With nothing kept, or every kept logit -inf, the row has no distribution: zeros, not NaN.
        if (!any || largest == -std::numeric_limits<T>::infinity()) {
          for (std::size_t j = 0; j < view.extent; ++j) y[start + j * view.inner] = masked_value;
          continue;
        }
        T total = 0;
        for (std::size_t j = 0; j < view.extent; ++j) {
          if (row_mask == nullptr || row_mask[j * view.inner] == 0) total += math::exp(x[start + j * view.inner] - largest);
        }
        const T log_total = std::log(total);
        for (std::size_t j = 0; j < view.extent; ++j) {
          const std::size_t at = start + j * view.inner;
          if (row_mask != nullptr && row_mask[j * view.inner] != 0) {
            y[at] = masked_value;
          } else if (log) {
            y[at] = x[at] - largest - log_total;
          } else {
            y[at] = math::exp(x[at] - largest) / total;
          }
        }
      }
    }
  }

  // Unmasked rows of contiguous values (attention weights): the same arithmetic in the same
  // order as above, so the same bits, but each exp computed once and in loops that vectorise.
  template <class T>
  XGRAD_KERNEL static void contiguous_softmax(const T* x, T* y, const detail::AxisView& view) {
    for (std::size_t o = 0; o < view.outer; ++o) {
      const T* row = x + o * view.extent;
      T* out = y + o * view.extent;
      T largest = -std::numeric_limits<T>::infinity();
      for (std::size_t j = 0; j < view.extent; ++j) largest = std::max(largest, row[j]);
      if (largest == -std::numeric_limits<T>::infinity()) {
        std::fill_n(out, view.extent, T(0));
        continue;
      }
      for (std::size_t j = 0; j < view.extent; ++j) out[j] = math::exp(row[j] - largest);
      T total = 0;
      for (std::size_t j = 0; j < view.extent; ++j) total += out[j];
      for (std::size_t j = 0; j < view.extent; ++j) out[j] /= total;
    }
  }
};

template <class T>
Tensor<T> softmax_family(const char* op, const Tensor<T>& x, int axis, const Mask* mask, bool log) {
  const std::size_t a = normalize_axis(op, axis, x.dim());
  const detail::AxisView view = detail::axis_view(x.shape(), a);
  std::vector<unsigned char> masked;
  if (mask != nullptr) masked = expand_mask(op, *mask, x.shape());
  Array<T> y = Array<T>::from_shape(x.shape());
  // Rows are independent: the outer blocks split over the threads with the same bits as one.
  const std::size_t block = view.extent * view.inner, grain = rows_for_grain(block, transcendental_grain);
  parallel_for(view.outer, grain, [&](std::size_t first, std::size_t end) {
    detail::AxisView part = view;
    part.outer = end - first;
    dispatch<SoftmaxRows>(x.data() + first * block, masked.empty() ? nullptr : masked.data() + first * block,
                          y.data() + first * block, part, log);
  });
  return record<T>(op, std::move(y), {x}, [view, log, masked = std::move(masked)](Node<T>& node) {
    const T* py = node.output().data();
    const T* gy = node.output_grad().data();
    T* gx = node.input_grad(0).data();
    const std::size_t block = view.extent * view.inner;
    parallel_for(view.outer, rows_for_grain(block, transcendental_grain), [&](std::size_t first, std::size_t end) {
      for (std::size_t o = first; o < end; ++o) {
        for (std::size_t i = 0; i < view.inner; ++i) {
          const std::size_t start = o * view.extent * view.inner + i;
          auto kept = [&](std::size_t j) { return masked.empty() || masked[start + j * view.inner] == 0; };
          T dot = 0;  // softmax: sum_k dy_k y_k; log_softmax: sum_k dy_k (over kept positions)
          for (std::size_t j = 0; j < view.extent; ++j) {
            const std::size_t at = start + j * view.inner;
            if (kept(j)) dot += log ? gy[at] : gy[at] * py[at];
          }
          for (std::size_t j = 0; j < view.extent; ++j) {
            const std::size_t at = start + j * view.inner;
            if (!kept(j)) continue;
            if (log) {
              gx[at] += gy[at] - math::exp(py[at]) * dot;  // dx += dy - softmax * sum(dy)
            } else {
              gx[at] += py[at] * (gy[at] - dot);  // dx += y * (dy - sum(dy * y))
            }
          }
        }
      }
    });
  });
}

}  // namespace

template <class T>
Tensor<T> softmax(const Tensor<T>& x, int axis) {
  return softmax_family<T>("softmax", x, axis, nullptr, false);
}

template <class T>
Tensor<T> softmax(const Tensor<T>& x, int axis, const Mask& masked) {
  return softmax_family<T>("softmax", x, axis, &masked, false);
}

template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, int axis) {
  return softmax_family<T>("log_softmax", x, axis, nullptr, true);
}

template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, int axis, const Mask& masked) {
  return softmax_family<T>("log_softmax", x, axis, &masked, true);
}

#define XGRAD_INSTANTIATE_SOFTMAX(T)                                     \
  template Tensor<T> softmax(const Tensor<T>&, int);                     \
  template Tensor<T> softmax(const Tensor<T>&, int, const Mask&);        \
  template Tensor<T> log_softmax(const Tensor<T>&, int);                 \
  template Tensor<T> log_softmax(const Tensor<T>&, int, const Mask&);

XGRAD_INSTANTIATE_SOFTMAX(float)
XGRAD_INSTANTIATE_SOFTMAX(double)

}  // namespace xgrad
