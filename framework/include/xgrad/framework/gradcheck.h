#pragma once
// gradcheck: compares the gradients backward() computes with central finite differences,
// in double precision, as torch.autograd.gradcheck does.
//
// f maps the inputs to an output tensor of any shape. The check covers every input that
// requires grad and every other leaf that requires grad reachable from the output (a
// layer's parameters), element by element, for every element of the output: the full
// Jacobian. f must be deterministic (dropout off, or a fixed generator reseeded inside f).
//
//   auto result = xgrad::gradcheck(f, {x, w});
//   BOOST_TEST(result.passed, result.report);

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/framework/tensor.h"

namespace xgrad {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  // Names for tensors in the report (for example a module's named_parameters()); others are
  // called "input i" or "parameter j".
  std::vector<std::pair<std::string, Tensor<double>>> names = {};
};

struct GradcheckResult {
  bool passed = false;
  std::string report;              // what failed, with the worst element; "ok ..." otherwise
  std::size_t checked = 0;         // Jacobian entries compared
  std::size_t mismatched = 0;      // entries outside the tolerance
  double worst_analytic = 0.0;
  double worst_numeric = 0.0;

  explicit operator bool() const noexcept { return passed; }
};

using GradcheckFunction = std::function<Tensor<double>(const std::vector<Tensor<double>>&)>;

// Besides the values, gradcheck verifies that backward accumulates: leaf gradients that
// already hold values must end up holding those values plus the new gradient.
GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor<double>>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace xgrad
