#include "xgrad/framework/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/fast_math.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/threading.h"

namespace xgrad {
namespace {

// Turns per-target losses into the requested result, and gives each target's share of the
// result's gradient.
struct LossReduction {
  Reduction mode;
  std::size_t counted;  // targets that contribute (the divisor of a mean)

  template <class T>
  Array<T> apply(Array<T> losses) const {
    if (mode == Reduction::none) return losses;
    double total = 0;
    for (std::size_t i = 0; i < losses.size(); ++i) total += losses.data()[i];
    if (mode == Reduction::mean) total = counted == 0 ? 0.0 : total / static_cast<double>(counted);
    return Array<T>(static_cast<T>(total));
  }

  template <class T>
  T gradient(const T* gy, std::size_t i) const {
    if (mode == Reduction::none) return gy[i];
    if (mode == Reduction::sum) return gy[0];
    return counted == 0 ? T(0) : gy[0] / static_cast<T>(counted);
  }
};

// Rows of class scores [..., C] paired with targets [...].
struct ClassRows {
  std::size_t rows;
  std::size_t classes;
  std::size_t counted;
};

ClassRows check_class_targets(const char* op, const Shape& scores, const Indices& targets,
                              std::int64_t ignore_index) {
  const Shape& ts = targets.shape();
  bool matches = !scores.empty() && ts.size() + 1 == scores.size();
  for (std::size_t i = 0; matches && i < ts.size(); ++i) matches = ts[i] == scores[i];
  if (!matches) {
    throw shape_error(detail::message(op, ": scores of shape ", scores, " and targets of shape ", ts,
                                      " do not pair up (expected scores [..., C] with targets [...])"));
  }
  ClassRows rows{targets.size(), scores.back(), 0};
  if (rows.classes == 0) throw shape_error(detail::message(op, ": scores of shape ", scores, " have no classes"));
  for (std::size_t r = 0; r < rows.rows; ++r) {
    const std::int64_t t = targets.data()[r];
    if (t == ignore_index) continue;
    if (t < 0 || static_cast<std::uint64_t>(t) >= rows.classes) {
      Shape position(ts.size());
      for (std::size_t axis = ts.size(), flat = r; axis-- > 0; flat /= ts[axis]) position[axis] = flat % ts[axis];
      throw index_error(detail::message(op, ": target ", t, " at position ", position, " is not a class in [0, ",
                                        rows.classes, ") and not the ignore_index ", ignore_index));
    }
    ++rows.counted;
  }
  return rows;
}

void check_same_shape(const char* op, const char* a_name, const Shape& a, const char* b_name, const Shape& b) {
  if (a != b) {
    throw shape_error(detail::message(op, ": ", a_name, " of shape ", a, " and ", b_name, " of shape ", b,
                                      " must have the same shape"));
  }
}

// The log of sum_j exp(row[j]) over `classes` values (taken as largest + log sum exp(row -
// largest), which cannot overflow), and sum_j row[j].
template <Isa isa>
struct LogSumExpRow {
  template <class T>
  XGRAD_KERNEL static std::pair<T, T> run(std::size_t classes, const T* row) {
    T largest = row[0];
    for (std::size_t j = 1; j < classes; ++j) largest = std::max(largest, row[j]);
    T total = 0;
    T row_sum = 0;
    for (std::size_t j = 0; j < classes; ++j) {
      total += math::exp(row[j] - largest);
      row_sum += row[j];
    }
    return {largest + std::log(total), row_sum};
  }
};

// grad_row[j] (+)= g (softmax(row)[j] - uniform), softmax from the row's log-sum-exp; assigned
// when `in_place` (grad_row is row itself, each value read before it is written).
template <Isa isa>
struct SoftmaxGradientRow {
  template <class T>
  XGRAD_KERNEL static void run(std::size_t classes, const T* row, T log_sum_exp, T g, T uniform, bool in_place,
                               T* grad_row) {
    for (std::size_t j = 0; j < classes; ++j) {
      const T earlier = in_place ? T(0) : grad_row[j];
      grad_row[j] = earlier + g * (math::exp(row[j] - log_sum_exp) - uniform);
    }
  }
};

}  // namespace

// loss = (1-s) (lse - x_t) + s/C (C lse - sum_j x_j); dx_j += g (softmax_j - (1-s)[j=t] - s/C)
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Indices& targets, const CrossEntropyOptions& options) {
  if (!(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0)) {
    throw std::invalid_argument(detail::message("cross_entropy: label_smoothing ", options.label_smoothing,
                                                " must lie in [0, 1]"));
  }
  const ClassRows rows = check_class_targets("cross_entropy", logits.shape(), targets, options.ignore_index);
  const T smoothing = static_cast<T>(options.label_smoothing);
  const T uniform = smoothing / static_cast<T>(rows.classes);
  std::vector<T> log_sum_exp(rows.rows);
  Array<T> losses(targets.shape(), T(0));
  const T* x = logits.data();
  const std::size_t rows_per_range = rows_for_grain(rows.classes, transcendental_grain);
  parallel_for(rows.rows, rows_per_range, [&](std::size_t first_row, std::size_t end_row) {
    for (std::size_t r = first_row; r < end_row; ++r) {
      const std::int64_t t = targets.data()[r];
      if (t == options.ignore_index) continue;
      const T* row = x + r * rows.classes;
      const auto [lse, row_sum] = dispatch<LogSumExpRow>(rows.classes, row);
      log_sum_exp[r] = lse;
      const T nll = lse - row[t];
      const T smooth = static_cast<T>(rows.classes) * lse - row_sum;
      losses.data()[r] = (T(1) - smoothing) * nll + uniform * smooth;
    }
  });
  const LossReduction reduction{options.reduction, rows.counted};
  return record<T>(
      "cross_entropy", reduction.apply(std::move(losses)), {logits},
      [targets, ignore = options.ignore_index, smoothing, uniform, classes = rows.classes, reduction,
       rows_per_range, log_sum_exp = std::move(log_sum_exp)](Node<T>& node) {
        const T* gy = node.output_grad().data();
        // Logits that nothing else holds become their own gradient: no second buffer of
        // rows x classes (the largest of a translation model) next to them.
        Array<T>* logits_as_grad = node.input_value_as_grad(0);
        const bool in_place = logits_as_grad != nullptr;
        T* gx = in_place ? logits_as_grad->data() : node.input_grad(0).data();
        const T* x = in_place ? gx : node.input(0).data();
        parallel_for(log_sum_exp.size(), rows_per_range, [&](std::size_t first_row, std::size_t end_row) {
          for (std::size_t r = first_row; r < end_row; ++r) {
            T* grad_row = gx + r * classes;
            const std::int64_t t = targets.data()[r];
            if (t == ignore) {
              if (in_place) std::fill_n(grad_row, classes, T(0));
              continue;
            }
            const T g = reduction.gradient(gy, r);
            dispatch<SoftmaxGradientRow>(classes, x + r * classes, log_sum_exp[r], g, uniform, in_place, grad_row);
            grad_row[t] -= g * (T(1) - smoothing);
          }
        });
      });
}

// loss = -lp_t; dlp_t -= g
template <class T>
Tensor<T> nll_loss(const Tensor<T>& log_probs, const Indices& targets, const NllLossOptions& options) {
  const ClassRows rows = check_class_targets("nll_loss", log_probs.shape(), targets, options.ignore_index);
  Array<T> losses(targets.shape(), T(0));
  for (std::size_t r = 0; r < rows.rows; ++r) {
    const std::int64_t t = targets.data()[r];
    if (t != options.ignore_index) losses.data()[r] = -log_probs.data()[r * rows.classes + t];
  }
  const LossReduction reduction{options.reduction, rows.counted};
  return record<T>("nll_loss", reduction.apply(std::move(losses)), {log_probs},
                   [targets, ignore = options.ignore_index, classes = rows.classes, reduction](Node<T>& node) {
                     const T* gy = node.output_grad().data();
                     T* gx = node.input_grad(0).data();
                     for (std::size_t r = 0; r < targets.size(); ++r) {
                       const std::int64_t t = targets.data()[r];
                       if (t != ignore) gx[r * classes + t] -= reduction.gradient(gy, r);
                     }
                   });
}

// loss = max(x,0) - x y + log(1 + exp(-|x|)); dx += g (sigmoid(x) - y); dy -= g x
template <class T>
Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>& logits, const Tensor<T>& targets, Reduction mode) {
  check_same_shape("binary_cross_entropy_with_logits", "logits", logits.shape(), "targets", targets.shape());
  Array<T> losses = Array<T>::from_shape(logits.shape());
  const T* x = logits.data();
  const T* y = targets.data();
  for (std::size_t i = 0; i < losses.size(); ++i) {
    losses.data()[i] = std::max(x[i], T(0)) - x[i] * y[i] + std::log1p(std::exp(-std::abs(x[i])));
  }
  const LossReduction reduction{mode, losses.size()};
  return record<T>("binary_cross_entropy_with_logits", reduction.apply(std::move(losses)), {logits, targets},
                   [reduction](Node<T>& node) {
                     const T* x = node.input(0).data();
                     const T* y = node.input(1).data();
                     const T* gy = node.output_grad().data();
                     T* gx = node.needs_grad(0) ? node.input_grad(0).data() : nullptr;
                     T* gt = node.needs_grad(1) ? node.input_grad(1).data() : nullptr;
                     for (std::size_t i = 0; i < node.input(0).size(); ++i) {
                       const T g = reduction.gradient(gy, i);
                       if (gx != nullptr) {
                         gx[i] += g * (math::sigmoid(x[i]) - y[i]);
                       }
                       if (gt != nullptr) gt[i] -= g * x[i];
                     }
                   });
}

// loss = (x - y)^2; dx += 2 g (x - y); dy -= 2 g (x - y)
template <class T>
Tensor<T> mse_loss(const Tensor<T>& input, const Tensor<T>& target, Reduction mode) {
  check_same_shape("mse_loss", "input", input.shape(), "target", target.shape());
  Array<T> losses = Array<T>::from_shape(input.shape());
  const T* x = input.data();
  const T* y = target.data();
  for (std::size_t i = 0; i < losses.size(); ++i) losses.data()[i] = (x[i] - y[i]) * (x[i] - y[i]);
  const LossReduction reduction{mode, losses.size()};
  return record<T>("mse_loss", reduction.apply(std::move(losses)), {input, target}, [reduction](Node<T>& node) {
    const T* x = node.input(0).data();
    const T* y = node.input(1).data();
    const T* gy = node.output_grad().data();
    T* gx = node.needs_grad(0) ? node.input_grad(0).data() : nullptr;
    T* gt = node.needs_grad(1) ? node.input_grad(1).data() : nullptr;
    for (std::size_t i = 0; i < node.input(0).size(); ++i) {
      const T d = T(2) * reduction.gradient(gy, i) * (x[i] - y[i]);
      if (gx != nullptr) gx[i] += d;
      if (gt != nullptr) gt[i] -= d;
    }
  });
}

#define XGRAD_INSTANTIATE_LOSS(T)                                                                  \
  template Tensor<T> cross_entropy(const Tensor<T>&, const Indices&, const CrossEntropyOptions&);  \
  template Tensor<T> nll_loss(const Tensor<T>&, const Indices&, const NllLossOptions&);            \
  template Tensor<T> binary_cross_entropy_with_logits(const Tensor<T>&, const Tensor<T>&, Reduction); \
  template Tensor<T> mse_loss(const Tensor<T>&, const Tensor<T>&, Reduction);

XGRAD_INSTANTIATE_LOSS(float)
XGRAD_INSTANTIATE_LOSS(double)

}  // namespace xgrad
