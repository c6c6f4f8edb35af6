#include "xgrad/framework/dropout.h"

#include <cmath>
#include <cstdint>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/threading.h"

namespace xgrad {
namespace {

// The mask is a pure function of the stream's key and the element's index, so backward draws
// it again instead of keeping a scale per element: every dropout holds one float per element
// less until backward (a Transformer has several per layer), for one more hash per element.
struct DropoutMask {
  CounterStream stream;
  std::uint64_t drop_below;  // unit_interval(bits) < p exactly when bits >> 11, an integer, is below ceil(p 2^53)
  // The factor of element `index`: 0 or keep_scale (multiplied, so that NaN and -0 pass as in x * m).
  template <class T>
  [[gnu::always_inline]] T scale(std::uint64_t index, T keep_scale) const noexcept {
    return (stream.bits(index) >> 11) < drop_below ? T(0) : keep_scale;
  }
};

// Arguments by value, so that the stores cannot alias them and the loops vectorise; for each
// instruction set (isa.h): AVX-512 multiplies the 64-bit hashes in vectors.
template <Isa isa>
struct ApplyMask {
  template <class T>
  XGRAD_KERNEL static void run(DropoutMask mask, T keep_scale, std::size_t begin, std::size_t end, const T* x, T* y) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) y[i] = x[i] * mask.scale(i, keep_scale);
  }
};

template <Isa isa>
struct AccumulateMasked {
  template <class T>
  XGRAD_KERNEL static void run(DropoutMask mask, T keep_scale, std::size_t begin, std::size_t end, const T* gy, T* gx) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) gx[i] += gy[i] * mask.scale(i, keep_scale);
  }
};

}  // namespace

// y = x * m with m in {0, 1/(1-p)}; dx += dy * m
template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training, Generator& generator) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument(detail::message("dropout: probability ", p, " must lie in [0, 1]"));
  }
  if (!training || p == 0.0) return x;
  const T keep_scale = p == 1.0 ? T(0) : static_cast<T>(1.0 / (1.0 - p));
  Array<T> y = Array<T>::from_shape(x.shape());
  // One draw from the generator keys the whole mask, whatever the number of threads.
  const DropoutMask mask{CounterStream(generator.next()), static_cast<std::uint64_t>(std::ceil(p * 0x1.0p53))};
  parallel_for(y.size(), elementwise_grain, [&, x_values = x.data(), outputs = y.data()](std::size_t begin, std::size_t end) {
    dispatch<ApplyMask>(mask, keep_scale, begin, end, x_values, outputs);
  });
  return record<T>(
      "dropout", std::move(y), {x},
      [mask, keep_scale](Node<T>& node) {
        const T* gy = node.output_grad().data();
        T* gx = node.input_grad(0).data();
        parallel_for(node.output_grad().size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
          dispatch<AccumulateMasked>(mask, keep_scale, begin, end, gy, gx);
        });
      },
      reads_no_values());
}

template <class T>
Tensor<T> dropout(const Tensor<T>& x, double p, bool training) {
  return dropout(x, p, training, default_generator());
}

template Tensor<float> dropout(const Tensor<float>&, double, bool, Generator&);
template Tensor<double> dropout(const Tensor<double>&, double, bool, Generator&);
template Tensor<float> dropout(const Tensor<float>&, double, bool);
template Tensor<double> dropout(const Tensor<double>&, double, bool);

}  // namespace xgrad
