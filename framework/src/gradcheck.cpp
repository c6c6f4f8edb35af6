#include "xgrad/framework/gradcheck.h"

#include <cmath>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"

namespace xgrad {
namespace {

struct Checked {
  Tensor<double> tensor;
  std::string name;
};

std::string index_text(const Shape& shape, std::size_t flat) {
  if (shape.empty()) return "[]";
  Shape index(shape.size());
  for (std::size_t axis = shape.size(); axis-- > 0;) {
    index[axis] = flat % shape[axis];
    flat /= shape[axis];
  }
  return to_string(index);
}

std::vector<Checked> tensors_to_check(const std::vector<Tensor<double>>& inputs, const Tensor<double>& output,
                                      const GradcheckOptions& options) {
  auto name_of = [&](const Tensor<double>& t, const std::string& fallback) {
    for (const auto& [name, named] : options.names) {
      if (named.same(t)) return name;
    }
    return fallback;
  };
  std::vector<Checked> checked;
  auto listed = [&](const Tensor<double>& t) {
    for (const Checked& c : checked) {
      if (c.tensor.same(t)) return true;
    }
    return false;
  };
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].requires_grad() && !listed(inputs[i])) {
      checked.push_back({inputs[i], name_of(inputs[i], "input " + std::to_string(i))});
    }
  }
  std::size_t parameter = 0;
  for (const Tensor<double>& leaf : reachable_leaves(output)) {
    if (listed(leaf)) continue;
    checked.push_back({leaf, name_of(leaf, "parameter " + std::to_string(parameter++))});
  }
  return checked;
}

// A recognisable, non-zero starting gradient for the accumulation check.
double prefill_value(std::size_t i) { return 0.25 * static_cast<double>(static_cast<int>(i % 7) - 3) + 0.125; }

// Rows of d(output[p]) / d(checked elements), one backward per output element. With
// `prefilled`, leaf gradients start from prefill_value instead of zero and the prefill is
// subtracted afterwards.
std::vector<std::vector<double>> analytic_rows(Tensor<double>& output, std::vector<Checked>& checked,
                                               bool prefilled) {
  std::vector<std::vector<double>> rows(output.size());
  for (std::size_t p = 0; p < output.size(); ++p) {
    for (Checked& c : checked) {
      Array<double>& grad = c.tensor.impl().grad.emplace(c.tensor.shape(), 0.0);
      if (prefilled) {
        for (std::size_t i = 0; i < grad.size(); ++i) grad.data()[i] = prefill_value(i);
      }
    }
    Array<double> seed(output.shape(), 0.0);
    seed.data()[p] = 1.0;
    output.backward(seed, BackwardOptions{.retain_graph = true});
    for (Checked& c : checked) {
      const Array<double>& grad = c.tensor.grad();
      for (std::size_t i = 0; i < grad.size(); ++i) {
        rows[p].push_back(grad.data()[i] - (prefilled ? prefill_value(i) : 0.0));
      }
    }
  }
  return rows;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& options) {
  Tensor<double> output = f(inputs);
  if (!output.requires_grad()) {
    throw graph_error("gradcheck: the output does not depend on any tensor that requires grad");
  }
  std::vector<Checked> checked = tensors_to_check(inputs, output, options);
  // Leave the caller's gradients as they were.
  std::vector<std::optional<Array<double>>> saved_grads;
  for (Checked& c : checked) saved_grads.push_back(std::move(c.tensor.impl().grad));

  const auto rows = analytic_rows(output, checked, false);
  const auto prefilled_rows = analytic_rows(output, checked, true);
  for (std::size_t k = 0; k < checked.size(); ++k) checked[k].tensor.impl().grad = std::move(saved_grads[k]);

  GradcheckResult result;
  double worst_ratio = -1.0;
  std::string worst, accumulation_error;
  std::size_t column = 0;
  for (Checked& c : checked) {
    // Perturbed and restored bit for bit: not a change (version) to graphs recorded over it.
    Array<double>& value = const_cast<Array<double>&>(c.tensor.value());
    for (std::size_t i = 0; i < value.size(); ++i, ++column) {
      const double original = value.data()[i];
      Array<double> plus, minus;
      {
        NoGradGuard no_graph;
        value.data()[i] = original + options.eps;
        plus = f(inputs).value();
        value.data()[i] = original - options.eps;
        minus = f(inputs).value();
        value.data()[i] = original;
      }
      for (std::size_t p = 0; p < output.size(); ++p) {
        const double numeric = (plus.data()[p] - minus.data()[p]) / (2 * options.eps);
        const double analytic = rows[p][column];
        const double tolerance = options.atol + options.rtol * std::abs(numeric);
        const double error = std::abs(analytic - numeric);
        const double ratio = std::isnan(error) ? INFINITY : error / tolerance;
        ++result.checked;
        auto where = [&] {
          return detail::message("d(output", index_text(output.shape(), p), ")/d(", c.name, index_text(value.shape(), i),
                                 ")");
        };
        if (!(error <= tolerance)) ++result.mismatched;
        if (ratio > worst_ratio) {
          worst_ratio = ratio;
          result.worst_analytic = analytic;
          result.worst_numeric = numeric;
          worst = detail::message(where(), ": analytic ", analytic, ", numeric ", numeric, ", |difference| ", error,
                                  " vs tolerance ", tolerance);
        }
        if (accumulation_error.empty() &&
            !(std::abs(prefilled_rows[p][column] - analytic) <= 1e-9 * (1.0 + std::abs(analytic)))) {
          accumulation_error = detail::message(
              "backward does not accumulate into existing gradients: ", where(), " is ", analytic,
              " from a zero gradient but ", prefilled_rows[p][column],
              " from a non-zero one (a backward function assigns where it must add)");
        }
      }
    }
  }
  result.passed = result.mismatched == 0 && accumulation_error.empty();
  if (!accumulation_error.empty()) {
    result.report = "gradcheck failed: " + accumulation_error;
  } else if (result.mismatched > 0) {
    result.report = detail::message("gradcheck failed: ", result.mismatched, " of ", result.checked,
                                    " Jacobian entries differ; worst ", worst);
  } else {
    result.report = detail::message("gradcheck ok: ", result.checked, " Jacobian entries; closest to tolerance ", worst);
  }
  return result;
}

}  // namespace xgrad
