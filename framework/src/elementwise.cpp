#include "xgrad/framework/elementwise.h"

#include <cmath>

#include "loops.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/fast_math.h"

namespace xgrad {
namespace {

// The values an elementwise derivative reads besides dy: its first input (x, or a), its
// second (b), its result (y). Declared to the graph (ValuesRead), so that the others can be
// freed before backward, and the only ones backward touches: the derivative gets 0 for the rest.
struct Uses {
  bool first = false;
  bool second = false;
  bool result = false;
};

template <Uses uses>
const ValuesRead& values_read() {
  static const ValuesRead reads = [] {
    std::vector<std::size_t> inputs;
    if (uses.first) inputs.push_back(0);
    if (uses.second) inputs.push_back(1);
    return ValuesRead{.inputs = std::move(inputs), .outputs = uses.result};
  }();
  return reads;
}

// y = f(x); dx += dy * dydx(x, y)
template <Uses uses, class T, class Forward, class Derivative>
Tensor<T> unary(const char* op, const Tensor<T>& x, Forward f, Derivative dydx) {
  static_assert(!uses.second, "a unary op has one input");
  const Array<T>& xv = x.value();
  Array<T> y = Array<T>::from_shape(xv.shape());
  const T* px = xv.data();
  T* py = y.data();
  parallel_for(xv.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) py[i] = f(px[i]);
  });
  return record<T>(
      op, std::move(y), {x},
      [dydx](Node<T>& node) {
        const T* px = uses.first ? node.input(0).data() : nullptr;
        const T* py = uses.result ? node.output().data() : nullptr;
        const Array<T>& gyv = node.output_grad();
        const T* gy = gyv.data();
        T* gx = node.input_grad(0).data();
        parallel_for(gyv.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
          for (std::size_t i = begin; i < end; ++i) {
            gx[i] += gy[i] * dydx(uses.first ? px[i] : T(0), uses.result ? py[i] : T(0));
          }
        });
      },
      values_read<uses>());
}

// y = f(a, b) with broadcasting; da += dy * dyda(a, b, y); db += dy * dydb(a, b, y), each
// summed over the axes along which that operand was broadcast.
template <Uses uses, class T, class Forward, class DerivativeA, class DerivativeB>
Tensor<T> binary(const char* op, const Tensor<T>& a, const Tensor<T>& b, Forward f,
                 DerivativeA dyda, DerivativeB dydb) {
  const Array<T>& av = a.value();
  const Array<T>& bv = b.value();
  const bool same_shape = av.shape() == bv.shape();
  const Shape shape = same_shape ? av.shape() : broadcast_shapes(op, av.shape(), bv.shape());
  Array<T> y = Array<T>::from_shape(shape);
  const T* pa = av.data();
  const T* pb = bv.data();
  T* py = y.data();
  using detail::broadcast_strides;
  if (same_shape) {
    parallel_for(y.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) py[i] = f(pa[i], pb[i]);
    });
  } else {
    detail::for_each_offset<3>(
        shape,
        {detail::contiguous_strides(shape), broadcast_strides(av.shape(), shape),
         broadcast_strides(bv.shape(), shape)},
        [&](std::ptrdiff_t o, std::ptrdiff_t i, std::ptrdiff_t j) { py[o] = f(pa[i], pb[j]); });
  }
  // Broadcasting needs the operands' shapes, which outlive values that backward does not read.
  return record<T>(
      op, std::move(y), {a, b},
      [dyda, dydb, same_shape, a_shape = av.shape(), b_shape = bv.shape()](Node<T>& node) {
        const T* pa = uses.first ? node.input(0).data() : nullptr;
        const T* pb = uses.second ? node.input(1).data() : nullptr;
        const T* py = uses.result ? node.output().data() : nullptr;
        const Array<T>& gyv = node.output_grad();
        const T* gy = gyv.data();
        T* ga = node.needs_grad(0) ? node.input_grad(0).data() : nullptr;
        T* gb = node.needs_grad(1) ? node.input_grad(1).data() : nullptr;
        auto accumulate = [&](std::ptrdiff_t o, std::ptrdiff_t i, std::ptrdiff_t j) {
          const T first = uses.first ? pa[i] : T(0), second = uses.second ? pb[j] : T(0);
          const T result = uses.result ? py[o] : T(0);
          if (ga != nullptr) ga[i] += gy[o] * dyda(first, second, result);
          if (gb != nullptr) gb[j] += gy[o] * dydb(first, second, result);
        };
        if (same_shape) {  // each element's gradients on one thread, even when a and b are one tensor
          parallel_for(gyv.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
            for (auto i = static_cast<std::ptrdiff_t>(begin); i < static_cast<std::ptrdiff_t>(end); ++i) accumulate(i, i, i);
          });
        } else {
          detail::for_each_offset<3>(gyv.shape(),
                                     {detail::contiguous_strides(gyv.shape()), broadcast_strides(a_shape, gyv.shape()),
                                      broadcast_strides(b_shape, gyv.shape())},
                                     accumulate);
        }
      },
      values_read<uses>());
}

}  // namespace

// da += dy; db += dy
template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  return binary<Uses{}>(
      "add", a, b, [](T x, T y) { return x + y; }, [](T, T, T) { return T(1); },
      [](T, T, T) { return T(1); });
}

// da += dy; db -= dy
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  return binary<Uses{}>(
      "sub", a, b, [](T x, T y) { return x - y; }, [](T, T, T) { return T(1); },
      [](T, T, T) { return T(-1); });
}

// da += dy * b; db += dy * a
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  return binary<Uses{.first = true, .second = true}>(
      "mul", a, b, [](T x, T y) { return x * y; }, [](T, T y, T) { return y; },
      [](T x, T, T) { return x; });
}

// da += dy / b; db -= dy * a / b^2 = dy * (-y / b)
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  return binary<Uses{.second = true, .result = true}>(
      "div", a, b, [](T x, T y) { return x / y; }, [](T, T y, T) { return T(1) / y; },
      [](T, T y, T out) { return -out / y; });
}

// da += dy * b * a^(b-1); db += dy * y * log(a)
template <class T>
Tensor<T> pow(const Tensor<T>& a, const Tensor<T>& b) {
  return binary<Uses{.first = true, .second = true, .result = true}>(
      "pow", a, b, [](T x, T e) { return std::pow(x, e); },
      [](T x, T e, T) { return e * std::pow(x, e - T(1)); },
      [](T x, T e, T out) { return x == T(0) && e >= T(0) ? T(0) : out * std::log(x); });
}

// dx += dy
template <class T>
Tensor<T> add(const Tensor<T>& a, scalar_t<T> s) {
  return unary<Uses{}>("add", a, [s](T x) { return x + s; }, [](T, T) { return T(1); });
}

// dx += dy
template <class T>
Tensor<T> sub(const Tensor<T>& a, scalar_t<T> s) {
  return unary<Uses{}>("sub", a, [s](T x) { return x - s; }, [](T, T) { return T(1); });
}

// dx -= dy
template <class T>
Tensor<T> sub(scalar_t<T> s, const Tensor<T>& a) {
  return unary<Uses{}>("sub", a, [s](T x) { return s - x; }, [](T, T) { return T(-1); });
}

// dx += dy * s
template <class T>
Tensor<T> mul(const Tensor<T>& a, scalar_t<T> s) {
  return unary<Uses{}>("mul", a, [s](T x) { return x * s; }, [s](T, T) { return s; });
}

// dx += dy / s
template <class T>
Tensor<T> div(const Tensor<T>& a, scalar_t<T> s) {
  return unary<Uses{}>("div", a, [s](T x) { return x / s; }, [s](T, T) { return T(1) / s; });
}

// dx -= dy * s / x^2 = dy * (-y / x)
template <class T>
Tensor<T> div(scalar_t<T> s, const Tensor<T>& a) {
  return unary<Uses{.first = true, .result = true}>("div", a, [s](T x) { return s / x; }, [](T x, T y) { return -y / x; });
}

// dx += dy * e * x^(e-1)
template <class T>
Tensor<T> pow(const Tensor<T>& a, scalar_t<T> exponent) {
  return unary<Uses{.first = true}>(
      "pow", a, [exponent](T x) { return std::pow(x, exponent); },
      [exponent](T x, T) { return exponent * std::pow(x, exponent - T(1)); });
}

// dx -= dy
template <class T>
Tensor<T> neg(const Tensor<T>& x) {
  return unary<Uses{}>("neg", x, [](T v) { return -v; }, [](T, T) { return T(-1); });
}

// dx += dy * y
template <class T>
Tensor<T> exp(const Tensor<T>& x) {
  return unary<Uses{.result = true}>("exp", x, [](T v) { return math::exp(v); }, [](T, T y) { return y; });
}

// dx += dy / x
template <class T>
Tensor<T> log(const Tensor<T>& x) {
  return unary<Uses{.first = true}>("log", x, [](T v) { return std::log(v); }, [](T v, T) { return T(1) / v; });
}

// dx += dy / (2 y)
template <class T>
Tensor<T> sqrt(const Tensor<T>& x) {
  return unary<Uses{.result = true}>("sqrt", x, [](T v) { return std::sqrt(v); }, [](T, T y) { return T(0.5) / y; });
}

// dx += dy * sign(x)
template <class T>
Tensor<T> abs(const Tensor<T>& x) {
  return unary<Uses{.first = true}>(
      "abs", x, [](T v) { return std::abs(v); },
      [](T v, T) { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0)); });
}

// dx += dy * (1 - y^2)
template <class T>
Tensor<T> tanh(const Tensor<T>& x) {
  return unary<Uses{.result = true}>("tanh", x, [](T v) { return math::tanh(v); }, [](T, T y) { return T(1) - y * y; });
}

// dx += dy * y * (1 - y)
template <class T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  return unary<Uses{.result = true}>(
      "sigmoid", x, [](T v) { return math::sigmoid(v); }, [](T, T y) { return y * (T(1) - y); });
}

// dx += dy * [y > 0]  (y > 0 exactly where x > 0)
template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  return unary<Uses{.result = true}>(
      "relu", x, [](T v) { return v > T(0) ? v : T(0); },
      [](T, T y) { return y > T(0) ? T(1) : T(0); });
}

// exact: dx += dy * (Phi(x) + x phi(x)), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
// tanh:  with u = c (x + a x^3), dx += dy * (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3 a x^2))
template <class T>
Tensor<T> gelu(const Tensor<T>& x, GeluApproximation approximation) {
  if (approximation == GeluApproximation::none) {
    constexpr T inverse_sqrt2 = T(0.70710678118654752440);
    constexpr T inverse_sqrt_2pi = T(0.39894228040143267794);
    return unary<Uses{.first = true}>(
        "gelu", x, [](T v) { return T(0.5) * v * (T(1) + std::erf(v * inverse_sqrt2)); },
        [](T v, T) {
          return T(0.5) * (T(1) + std::erf(v * inverse_sqrt2)) + v * inverse_sqrt_2pi * std::exp(T(-0.5) * v * v);
        });
  }
  constexpr T c = T(0.79788456080286535588);  // sqrt(2 / pi)
  constexpr T a = T(0.044715);
  return unary<Uses{.first = true}>(
      "gelu_tanh", x, [](T v) { return T(0.5) * v * (T(1) + math::tanh(c * (v + a * v * v * v))); },
      [](T v, T) {
        const T t = math::tanh(c * (v + a * v * v * v));
        return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * c * (T(1) + T(3) * a * v * v);
      });
}

// dx += dy * [min <= x <= max]
template <class T>
Tensor<T> clamp(const Tensor<T>& x, scalar_t<T> min, scalar_t<T> max) {
  if (!(min <= max)) {
    throw std::invalid_argument(
        detail::message("clamp: min (", min, ") must not be greater than max (", max, ")"));
  }
  return unary<Uses{.first = true}>(
      "clamp", x, [min, max](T v) { return v < min ? min : (v > max ? max : v); },
      [min, max](T v, T) { return v >= min && v <= max ? T(1) : T(0); });
}

#define XGRAD_INSTANTIATE_ELEMENTWISE(T)                              \
  template Tensor<T> add(const Tensor<T>&, const Tensor<T>&);         \
  template Tensor<T> sub(const Tensor<T>&, const Tensor<T>&);         \
  template Tensor<T> mul(const Tensor<T>&, const Tensor<T>&);         \
  template Tensor<T> div(const Tensor<T>&, const Tensor<T>&);         \
  template Tensor<T> pow(const Tensor<T>&, const Tensor<T>&);         \
  template Tensor<T> add(const Tensor<T>&, scalar_t<T>);              \
  template Tensor<T> sub(const Tensor<T>&, scalar_t<T>);              \
  template Tensor<T> sub(scalar_t<T>, const Tensor<T>&);              \
  template Tensor<T> mul(const Tensor<T>&, scalar_t<T>);              \
  template Tensor<T> div(const Tensor<T>&, scalar_t<T>);              \
  template Tensor<T> div(scalar_t<T>, const Tensor<T>&);              \
  template Tensor<T> pow(const Tensor<T>&, scalar_t<T>);              \
  template Tensor<T> neg(const Tensor<T>&);                           \
  template Tensor<T> exp(const Tensor<T>&);                           \
  template Tensor<T> log(const Tensor<T>&);                           \
  template Tensor<T> sqrt(const Tensor<T>&);                          \
  template Tensor<T> abs(const Tensor<T>&);                           \
  template Tensor<T> tanh(const Tensor<T>&);                          \
  template Tensor<T> sigmoid(const Tensor<T>&);                       \
  template Tensor<T> relu(const Tensor<T>&);                          \
  template Tensor<T> gelu(const Tensor<T>&, GeluApproximation);       \
  template Tensor<T> clamp(const Tensor<T>&, scalar_t<T>, scalar_t<T>);

XGRAD_INSTANTIATE_ELEMENTWISE(float)
XGRAD_INSTANTIATE_ELEMENTWISE(double)

}  // namespace xgrad
