#pragma once
// Parameter initialisers with PyTorch's formulas (torch.nn.init), filling a tensor's value
// in place from a Generator (the thread's default generator unless one is given).

#include <cstddef>
#include <utility>

#include "xgrad/framework/random.h"
#include "xgrad/framework/tensor.h"

namespace xgrad::init {

enum class Nonlinearity { linear, sigmoid, tanh, relu, leaky_relu };
enum class FanMode { fan_in, fan_out };

// (fan_in, fan_out) of a weight [out, in, *receptive field], as PyTorch computes them.
std::pair<std::size_t, std::size_t> fans(const Shape& shape);
// The recommended gain for a nonlinearity (`slope` is leaky_relu's negative slope).
double gain(Nonlinearity nonlinearity, double slope = 0.01);

template <class T> void constant(Tensor<T>& tensor, double value);
template <class T> void uniform(Tensor<T>& tensor, double low, double high, Generator& generator = default_generator());
template <class T> void normal(Tensor<T>& tensor, double mean, double std, Generator& generator = default_generator());
// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
template <class T> void xavier_uniform(Tensor<T>& tensor, double gain = 1.0, Generator& generator = default_generator());
// N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out)).
template <class T> void xavier_normal(Tensor<T>& tensor, double gain = 1.0, Generator& generator = default_generator());
// U(-b, b) with b = gain(nonlinearity, a) * sqrt(3 / fan).
template <class T>
void kaiming_uniform(Tensor<T>& tensor, double a = 0.0, FanMode mode = FanMode::fan_in,
                     Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator& generator = default_generator());
// N(0, s^2) with s = gain(nonlinearity, a) / sqrt(fan).
template <class T>
void kaiming_normal(Tensor<T>& tensor, double a = 0.0, FanMode mode = FanMode::fan_in,
                    Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator& generator = default_generator());
// A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one, times `gain`;
// tensors of rank above 2 are treated as [shape[0], rest].
template <class T> void orthogonal(Tensor<T>& tensor, double gain = 1.0, Generator& generator = default_generator());

}  // namespace xgrad::init
