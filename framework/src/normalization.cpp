#include "xgrad/framework/normalization.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/threading.h"

namespace xgrad {
namespace {

// The inputs of a normalisation's node: x, then the weight and the bias where given.
template <class T>
std::vector<Tensor<T>> normalization_inputs(const Tensor<T>& x, const Tensor<T>& weight, const Tensor<T>& bias) {
  std::vector<Tensor<T>> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  return inputs;
}

// What a normalisation's backward reads and writes, from a node with normalization_inputs;
// a gradient is null where none is needed, the weight where there is none.
template <class T>
struct NormalizationBuffers {
  const T* x;
  const T* dy;
  const T* weight;
  T* dx;
  T* dweight;
  T* dbias;
};

template <class T>
NormalizationBuffers<T> normalization_buffers(Node<T>& node, bool has_weight, bool has_bias) {
  const std::size_t bias_input = has_weight ? 2 : 1;
  return {node.input(0).data(),
          node.output_grad().data(),
          has_weight ? node.input(1).data() : nullptr,
          node.needs_grad(0) ? node.input_grad(0).data() : nullptr,
          has_weight && node.needs_grad(1) ? node.input_grad(1).data() : nullptr,
          has_bias && node.needs_grad(bias_input) ? node.input_grad(bias_input).data() : nullptr};
}

// The sum of term(0) .. term(n - 1) in double, in eight interleaved partial sums: eight
// independent chains of additions vectorise, where one running sum waits on every add.
template <class Term>
double interleaved_sum(std::size_t n, Term term) {
  constexpr std::size_t lanes = 8;
  double partial[lanes] = {};
  std::size_t s = 0;
  for (; s + lanes <= n; s += lanes) {
    for (std::size_t lane = 0; lane < lanes; ++lane) partial[lane] += term(s + lane);
  }
  double rest = 0;
  for (; s < n; ++s) rest += term(s);
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7])) +
         rest;
}

}  // namespace

// xhat = (x - mean) * rstd; y = xhat * w + b
// dx += rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w; dw += sum dy xhat; db += sum dy
template <class T>
Tensor<T> layer_norm(const Tensor<T>& x, const Shape& normalized_shape, const Tensor<T>& weight,
                     const Tensor<T>& bias, double eps) {
  const Shape& xs = x.shape();
  const std::size_t k = normalized_shape.size();
  bool fits = k >= 1 && k <= xs.size();
  for (std::size_t i = 0; fits && i < k; ++i) fits = xs[xs.size() - k + i] == normalized_shape[i];
  fits = fits && (!weight.defined() || weight.shape() == normalized_shape) &&
         (!bias.defined() || bias.shape() == normalized_shape);
  if (!fits) {
    throw shape_error(detail::message(
        "layer_norm: x of shape ", xs, " with normalized_shape ", normalized_shape, ", weight ",
        weight.defined() ? to_string(weight.shape()) : std::string("(none)"), " and bias ",
        bias.defined() ? to_string(bias.shape()) : std::string("(none)"),
        " do not fit (x must end with normalized_shape; weight and bias must equal it)"));
  }
  const std::size_t width = element_count(normalized_shape);
  const std::size_t rows = width == 0 ? 0 : x.size() / width;
  std::vector<T> means(rows), rstds(rows);
  Array<T> y = Array<T>::from_shape(xs);
  const T* px = x.data();
  const T* w = weight.defined() ? weight.data() : nullptr;
  const T* b = bias.defined() ? bias.data() : nullptr;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = px + r * width;
    double mean = 0, variance = 0;
    for (std::size_t j = 0; j < width; ++j) mean += row[j];
    mean /= double(width);
    for (std::size_t j = 0; j < width; ++j) variance += (row[j] - mean) * (row[j] - mean);
    variance /= double(width);
    means[r] = static_cast<T>(mean);
    rstds[r] = static_cast<T>(1.0 / std::sqrt(variance + eps));
    T* out = y.data() + r * width;
    for (std::size_t j = 0; j < width; ++j) {
      const T normalized = (row[j] - means[r]) * rstds[r];
      out[j] = normalized * (w ? w[j] : T(1)) + (b ? b[j] : T(0));
    }
  }
  const bool has_weight = weight.defined(), has_bias = bias.defined();
  return record<T>("layer_norm", std::move(y), normalization_inputs(x, weight, bias),
                   [rows, width, has_weight, has_bias, means = std::move(means), rstds = std::move(rstds)](Node<T>& node) {
                     const auto [px, dy, w, dx, dw, db] = normalization_buffers(node, has_weight, has_bias);
                     for (std::size_t r = 0; r < rows; ++r) {
                       const T* row = px + r * width;
                       const T* g_out = dy + r * width;
                       double mean_g = 0, mean_g_xhat = 0;
                       for (std::size_t j = 0; j < width; ++j) {
                         const T xhat = (row[j] - means[r]) * rstds[r];
                         const T g = g_out[j] * (w ? w[j] : T(1));
                         mean_g += g;
                         mean_g_xhat += g * xhat;
                         if (dw) dw[j] += g_out[j] * xhat;
                         if (db) db[j] += g_out[j];
                       }
                       if (!dx) continue;
                       mean_g /= double(width);
                       mean_g_xhat /= double(width);
                       for (std::size_t j = 0; j < width; ++j) {
                         const T xhat = (row[j] - means[r]) * rstds[r];
                         const T g = g_out[j] * (w ? w[j] : T(1));
                         dx[r * width + j] += rstds[r] * (g - T(mean_g) - xhat * T(mean_g_xhat));
                       }
                     }
                   });
}

// xhat = (x - mean_c) * rstd_c; y = xhat * w + b; dw += sum dy xhat; db += sum dy
// training: dx += w rstd (dy - mean(dy) - xhat mean(dy xhat)); evaluation: dx += w rstd dy
template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, Tensor<T> running_mean, Tensor<T> running_var, const Tensor<T>& weight,
                     const Tensor<T>& bias, const BatchNormOptions& options) {
  const Shape& xs = x.shape();
  const Shape channel_shape{xs.size() >= 2 ? xs[1] : 0};
  const auto per_channel = [&](const Tensor<T>& t) { return !t.defined() || t.shape() == channel_shape; };
  const auto describe = [](const Tensor<T>& t) { return t.defined() ? to_string(t.shape()) : std::string("(none)"); };
  if (xs.size() < 2 || !per_channel(running_mean) || !per_channel(running_var) || !per_channel(weight) ||
      !per_channel(bias)) {
    throw shape_error(detail::message("batch_norm: x of shape ", xs, ", running_mean ", describe(running_mean),
                                      ", running_var ", describe(running_var), ", weight ", describe(weight),
                                      " and bias ", describe(bias),
                                      " do not fit (expected x [B, C, ...] and each of the others [C] or none)"));
  }
  if (!options.training && !(running_mean.defined() && running_var.defined())) {
    throw std::invalid_argument("batch_norm: evaluation (training = false) needs running_mean and running_var");
  }
  const std::size_t channels = xs[1], batch = xs[0];
  const std::size_t inner = batch * channels == 0 ? 0 : x.size() / (batch * channels);
  const std::size_t count = batch * inner;  // values per channel
  if (options.training && count <= 1) {
    throw shape_error(detail::message("batch_norm: x of shape ", xs, " has ", count,
                                      " value per channel; training needs more than one (a variance)"));
  }
  std::vector<T> means(channels), rstds(channels);
  std::vector<double> batch_variances(options.training ? channels : 0);
  Array<T> y = Array<T>::from_shape(xs);
  const T* px = x.data();
  const T* w = weight.defined() ? weight.data() : nullptr;
  const T* b = bias.defined() ? bias.data() : nullptr;
  const T* stored_mean = options.training ? nullptr : running_mean.data();
  const T* stored_variance = options.training ? nullptr : running_var.data();
  T* out = y.data();
  parallel_for(channels, rows_for_grain(count, elementwise_grain), [&](std::size_t first, std::size_t end) {
    for (std::size_t c = first; c < end; ++c) {
      double mean = 0, variance = 0;
      if (options.training) {
        for (std::size_t n = 0; n < batch; ++n) {
          const T* row = px + (n * channels + c) * inner;
          mean += interleaved_sum(inner, [row](std::size_t s) { return double(row[s]); });
        }
        mean /= double(count);
        for (std::size_t n = 0; n < batch; ++n) {
          const T* row = px + (n * channels + c) * inner;
          variance += interleaved_sum(inner, [row, mean](std::size_t s) { return (row[s] - mean) * (row[s] - mean); });
        }
        variance /= double(count);
        batch_variances[c] = variance;
      } else {
        mean = stored_mean[c];
        variance = stored_variance[c];
      }
      means[c] = static_cast<T>(mean);
      rstds[c] = static_cast<T>(1.0 / std::sqrt(variance + options.eps));
      const T scale = rstds[c] * (w ? w[c] : T(1)), shift = b ? b[c] : T(0);
      for (std::size_t n = 0; n < batch; ++n) {
        const std::size_t offset = (n * channels + c) * inner;
        for (std::size_t s = 0; s < inner; ++s) out[offset + s] = (px[offset + s] - means[c]) * scale + shift;
      }
    }
  });
  if (options.training) {
    const double kept = 1.0 - options.momentum, unbiased = double(count) / double(count - 1);
    if (running_mean.defined()) {
      T* stored = running_mean.mutable_value().data();
      for (std::size_t c = 0; c < channels; ++c) stored[c] = static_cast<T>(kept * stored[c] + options.momentum * means[c]);
    }
    if (running_var.defined()) {
      T* stored = running_var.mutable_value().data();
      for (std::size_t c = 0; c < channels; ++c) {
        stored[c] = static_cast<T>(kept * stored[c] + options.momentum * batch_variances[c] * unbiased);
      }
    }
  }
  const bool has_weight = weight.defined(), has_bias = bias.defined(), training = options.training;
  return record<T>("batch_norm", std::move(y), normalization_inputs(x, weight, bias),
                   [channels, batch, inner, training, has_weight, has_bias, means = std::move(means),
                    rstds = std::move(rstds)](Node<T>& node) {
    // Named copies rather than a structured binding, which the loop's lambda cannot capture
    // before clang 16.
    const NormalizationBuffers<T> buffers = normalization_buffers(node, has_weight, has_bias);
    const T *px = buffers.x, *dy = buffers.dy, *w = buffers.weight;
    T *dx = buffers.dx, *dw = buffers.dweight, *db = buffers.dbias;
    const double count = double(batch * inner);
    parallel_for(channels, rows_for_grain(batch * inner, elementwise_grain), [&](std::size_t first, std::size_t end) {
      for (std::size_t c = first; c < end; ++c) {
        double sum_dy = 0, sum_dy_xhat = 0;
        const T mean = means[c], rstd = rstds[c];
        for (std::size_t n = 0; n < batch; ++n) {
          const T* dy_row = dy + (n * channels + c) * inner;
          const T* x_row = px + (n * channels + c) * inner;
          sum_dy += interleaved_sum(inner, [dy_row](std::size_t s) { return double(dy_row[s]); });
          sum_dy_xhat += interleaved_sum(
              inner, [dy_row, x_row, mean, rstd](std::size_t s) { return double(dy_row[s] * (x_row[s] - mean) * rstd); });
        }
        if (dw) dw[c] += static_cast<T>(sum_dy_xhat);
        if (db) db[c] += static_cast<T>(sum_dy);
        if (!dx) continue;
        const T scale = rstds[c] * (w ? w[c] : T(1));
        // In training the statistics depend on x too, which takes out the mean gradient and its
        // projection on xhat.
        const T mean_dy = training ? static_cast<T>(sum_dy / count) : T(0);
        const T mean_dy_xhat = training ? static_cast<T>(sum_dy_xhat / count) : T(0);
        for (std::size_t n = 0; n < batch; ++n) {
          const std::size_t offset = (n * channels + c) * inner;
          for (std::size_t s = 0; s < inner; ++s) {
            const T xhat = (px[offset + s] - means[c]) * rstds[c];
            dx[offset + s] += scale * (dy[offset + s] - mean_dy - xhat * mean_dy_xhat);
          }
        }
      }
    });
  }, has_weight ? reads_only_inputs({0, 1}) : reads_only_inputs({0}));
}

template Tensor<float> batch_norm(const Tensor<float>&, Tensor<float>, Tensor<float>, const Tensor<float>&,
                                  const Tensor<float>&, const BatchNormOptions&);
template Tensor<double> batch_norm(const Tensor<double>&, Tensor<double>, Tensor<double>, const Tensor<double>&,
                                   const Tensor<double>&, const BatchNormOptions&);
template Tensor<float> layer_norm(const Tensor<float>&, const Shape&, const Tensor<float>&, const Tensor<float>&, double);
template Tensor<double> layer_norm(const Tensor<double>&, const Shape&, const Tensor<double>&, const Tensor<double>&,
                                   double);

}  // namespace xgrad
