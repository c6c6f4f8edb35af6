#include "xgrad/framework/dropout.h"

#include <cmath>
#include <cstdint>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/threading.h"

namespace xgrad {
namespace {

// Arguments by value, so that the stores cannot alias them and the loop vectorises; for each
// instruction set (isa.h): AVX-512 multiplies the 64-bit hashes in vectors.
template <Isa isa>
struct DrawMask {
  template <class T>
  XGRAD_KERNEL static void run(CounterStream stream, std::uint64_t drop_below, T keep_scale, std::size_t begin,
                               std::size_t end, const T* x, T* scales, T* y) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) {
      const T scale = (stream.bits(i) >> 11) < drop_below ? T(0) : keep_scale;
      scales[i] = scale;
      y[i] = x[i] * scale;
    }
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
  Array<T> scale = Array<T>::from_shape(x.shape());
  Array<T> y = Array<T>::from_shape(x.shape());
  // One draw from the generator keys the whole mask, whatever the number of threads.
  const CounterStream stream(generator.next());
  // unit_interval(bits) < p exactly when bits >> 11, an integer, is below ceil(p 2^53).
  const auto drop_below = static_cast<std::uint64_t>(std::ceil(p * 0x1.0p53));
  parallel_for(y.size(), elementwise_grain, [&, x_values = x.data(), scales = scale.data(), outputs = y.data()](
                                                std::size_t begin, std::size_t end) {
    dispatch<DrawMask>(stream, drop_below, keep_scale, begin, end, x_values, scales, outputs);
  });
  return record<T>(
      "dropout", std::move(y), {x},
      [scale = std::move(scale)](Node<T>& node) {
        const T* gy = node.output_grad().data();
        T* gx = node.input_grad(0).data();
        parallel_for(scale.size(), elementwise_grain, [gy, gx, scales = scale.data()](std::size_t begin, std::size_t end) {
          for (std::size_t i = begin; i < end; ++i) gx[i] += gy[i] * scales[i];
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
