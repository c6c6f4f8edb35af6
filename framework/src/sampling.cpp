#include "xgrad/framework/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/indexing.h"

namespace xgrad {
namespace {

// The category whose share of [0, total) holds `target` (total = the sum of `weights`, > 0):
// the first with a running sum above it. A category of weight 0 is never chosen, also when
// rounding puts the target at the very end.
std::size_t pick(const std::vector<double>& weights, double target) {
  double running = 0;
  std::size_t last_positive = 0;
  for (std::size_t v = 0; v < weights.size(); ++v) {
    if (weights[v] <= 0) continue;
    running += weights[v];
    last_positive = v;
    if (target < running) return v;
  }
  return last_positive;
}

// `a` before `b` in top_k's order: larger first (NaN largest), equal ones by position.
template <class T>
bool ranks_before(const T* row, std::int64_t a, std::int64_t b) {
  const T x = row[a], y = row[b];
  const bool x_nan = std::isnan(x), y_nan = std::isnan(y);
  if (x_nan != y_nan) return x_nan;
  if (!x_nan && x != y) return x > y;
  return a < b;
}

// The positions of the k first elements of `row` (width V) in top_k's order.
template <class T>
void top_positions(const T* row, std::size_t width, std::size_t k, std::vector<std::int64_t>& order) {
  order.resize(width);
  std::iota(order.begin(), order.end(), std::int64_t(0));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [row](std::int64_t a, std::int64_t b) { return ranks_before(row, a, b); });
  order.resize(k);
}

}  // namespace

template <class T>
Indices multinomial(const Tensor<T>& weights, std::size_t num_samples, bool replacement, Generator& generator) {
  const Shape& shape = weights.shape();
  if (shape.size() != 1 && shape.size() != 2) {
    throw shape_error(detail::message("multinomial: weights of shape ", shape, " (expected [V] or [B, V])"));
  }
  const std::size_t rows = shape.size() == 2 ? shape[0] : 1, width = shape.back();
  const T* data = weights.data();
  Indices samples = Indices::from_shape(shape.size() == 2 ? Shape{rows, num_samples} : Shape{num_samples});
  std::vector<double> row(width), cumulative(width);
  for (std::size_t b = 0; b < rows; ++b) {
    std::size_t positive = 0;
    for (std::size_t v = 0; v < width; ++v) {
      const double w = static_cast<double>(data[b * width + v]);
      if (!(w >= 0) || !std::isfinite(w)) {
        throw std::invalid_argument(detail::message("multinomial: weight ", w, " at row ", b, ", category ", v,
                                                    " (weights must be finite and >= 0)"));
      }
      row[v] = w;
      positive += w > 0 ? 1 : 0;
    }
    if (positive == 0) {
      throw std::invalid_argument(
          detail::message("multinomial: the weights of row ", b, " (of ", width, " categories) are all 0"));
    }
    if (!replacement && num_samples > positive) {
      throw std::invalid_argument(detail::message("multinomial: ", num_samples, " samples without replacement from row ",
                                                  b, ", which has ", positive, " categories of non-zero weight"));
    }
    std::int64_t* out = samples.data() + b * num_samples;
    if (replacement) {
      // Running sums, searched: the first above the target is the category (one of weight 0
      // repeats the sum before it, so it is never the first above anything).
      std::partial_sum(row.begin(), row.end(), cumulative.begin());
      const double total = cumulative.back();
      std::size_t last_positive = width;
      while (row[--last_positive] == 0) {
      }
      for (std::size_t s = 0; s < num_samples; ++s) {
        const auto above = std::upper_bound(cumulative.begin(), cumulative.end(), generator.uniform() * total);
        out[s] = static_cast<std::int64_t>(
            std::min(static_cast<std::size_t>(above - cumulative.begin()), last_positive));  // rounding at the end
      }
    } else {
      for (std::size_t s = 0; s < num_samples; ++s) {
        const double total = std::accumulate(row.begin(), row.end(), 0.0);  // of the categories left
        const std::size_t v = pick(row, generator.uniform() * total);
        out[s] = static_cast<std::int64_t>(v);
        row[v] = 0;
      }
    }
  }
  return samples;
}

template <class T>
TopK<T> top_k(const Tensor<T>& x, std::size_t k) {
  const Shape& shape = x.shape();
  if (shape.empty() || k > shape.back()) {
    throw shape_error(detail::message("top_k: k = ", k, " for shape ", shape,
                                      " (k must not exceed the extent of the last axis)"));
  }
  const std::size_t width = shape.back(), rows = width == 0 ? 0 : x.size() / width;
  Shape result_shape = shape;
  result_shape.back() = k;
  Indices indices = Indices::from_shape(result_shape);
  std::vector<std::int64_t> order;
  for (std::size_t r = 0; r < rows; ++r) {
    top_positions(x.data() + r * width, width, k, order);
    std::copy(order.begin(), order.end(), indices.data() + r * k);
  }
  return {gather(x, -1, indices), std::move(indices)};
}

template <class T>
Indices sample_logits(const Tensor<T>& logits, const SamplingOptions& options, Generator& generator) {
  if (!(options.temperature >= 0) || !std::isfinite(options.temperature)) {
    throw std::invalid_argument(detail::message("sample_logits: invalid temperature = ", options.temperature,
                                                " (must be a finite number >= 0; 0 is greedy)"));
  }
  const Shape& shape = logits.shape();
  if (shape.size() != 2 || shape[1] == 0) {
    throw shape_error(detail::message("sample_logits: logits of shape ", shape, " (expected [B, V] with V >= 1)"));
  }
  const std::size_t rows = shape[0], width = shape[1];
  const std::size_t k = options.top_k == 0 ? width : std::min(options.top_k, width);
  Indices tokens = Indices::from_shape({rows});
  std::vector<std::int64_t> candidates;
  std::vector<double> weights;
  for (std::size_t b = 0; b < rows; ++b) {
    const T* row = logits.data() + b * width;
    for (std::size_t v = 0; v < width; ++v) {
      if (std::isnan(row[v])) {
        throw std::invalid_argument(detail::message("sample_logits: row ", b, " has a NaN logit at ", v));
      }
    }
    // The candidates, the largest first (in top_k's order), or all of them in index order
    // with the first largest in front.
    if (options.temperature == 0 || k < width) {
      top_positions(row, width, options.temperature == 0 ? 1 : k, candidates);
    } else {
      candidates.resize(width);
      std::iota(candidates.begin(), candidates.end(), std::int64_t(0));
      const std::size_t best = static_cast<std::size_t>(std::max_element(row, row + width) - row);
      std::swap(candidates[0], candidates[best]);
    }
    const double largest = static_cast<double>(row[candidates[0]]);
    if (largest == -INFINITY) {
      throw std::invalid_argument(detail::message("sample_logits: the logits of row ", b, " are all -inf"));
    }
    if (options.temperature == 0) {
      tokens(b) = candidates[0];
      continue;
    }
    weights.resize(candidates.size());
    double total = 0;
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      const double logit = static_cast<double>(row[candidates[c]]);
      // An infinite largest logit takes all the probability (shared with equal ones).
      weights[c] = std::isinf(largest) ? (logit == largest ? 1.0 : 0.0)
                                       : std::exp((logit - largest) / options.temperature);
      total += weights[c];
    }
    tokens(b) = candidates[pick(weights, generator.uniform() * total)];
  }
  return tokens;
}

#define XGRAD_INSTANTIATE_SAMPLING(T)                                                   \
  template Indices multinomial(const Tensor<T>&, std::size_t, bool, Generator&);        \
  template TopK<T> top_k(const Tensor<T>&, std::size_t);                                 \
  template Indices sample_logits(const Tensor<T>&, const SamplingOptions&, Generator&);

XGRAD_INSTANTIATE_SAMPLING(float)
XGRAD_INSTANTIATE_SAMPLING(double)

}  // namespace xgrad
