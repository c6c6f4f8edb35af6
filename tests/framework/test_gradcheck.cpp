// gradcheck itself: it passes on correct ops, fails on a wrong backward and on one that
// assigns instead of accumulating, covers parameters reachable from the output, and reports
// the worst element.
#define BOOST_TEST_MODULE gradcheck
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

namespace {

// x^3 with a backward chosen by the test.
enum class Backward { correct, wrong_factor, assigns };

Tensor<double> cube(const Tensor<double>& x, Backward kind) {
  Array<double> y = x.value() * x.value() * x.value();
  return record<double>("cube", std::move(y), {x}, [kind](Node<double>& node) {
    const Array<double>& xv = node.input(0);
    const Array<double>& dy = node.output_grad();
    Array<double>& dx = node.input_grad(0);
    switch (kind) {
      case Backward::correct: dx += 3.0 * xv * xv * dy; break;       // dx += 3 x^2 dy
      case Backward::wrong_factor: dx += 2.9 * xv * xv * dy; break;  // deliberately wrong
      case Backward::assigns: dx = 3.0 * xv * xv * dy; break;        // overwrites instead of adding
    }
  });
}

}  // namespace

BOOST_AUTO_TEST_CASE(passes_on_a_correct_backward_with_a_non_scalar_output) {
  Tensor<double> x = random_tensor({3, 2}, 1);
  const GradcheckResult result = gradcheck([](const Inputs& v) { return cube(v[0], Backward::correct); }, {x});
  BOOST_TEST(result.passed, result.report);
  BOOST_TEST(result.checked == 36u);  // the full 6 x 6 Jacobian
  BOOST_TEST(result.report.find("gradcheck ok") == 0u, result.report);
}

BOOST_AUTO_TEST_CASE(fails_on_a_wrong_backward_and_names_the_worst_element) {
  Tensor<double> x(Array<double>{0.1, -2.0, 0.5}, true);
  const GradcheckResult result = gradcheck([](const Inputs& v) { return sum(cube(v[0], Backward::wrong_factor)); }, {x});
  BOOST_TEST(!result.passed);
  BOOST_TEST(result.mismatched == 3u);
  // The worst element is x[1] = -2: analytic 2.9 * 4, numeric 3 * 4.
  BOOST_TEST(result.report.find("d(output[])/d(input 0[1])") != std::string::npos, result.report);
  BOOST_TEST(result.worst_analytic == 11.6, boost::test_tools::tolerance(1e-9));
  BOOST_TEST(result.worst_numeric == 12.0, boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(fails_on_a_backward_that_does_not_accumulate) {
  Tensor<double> x = random_tensor({4}, 2);
  const GradcheckResult result = gradcheck([](const Inputs& v) { return cube(v[0], Backward::assigns); }, {x});
  BOOST_TEST(!result.passed);
  BOOST_TEST(result.report.find("does not accumulate") != std::string::npos, result.report);
}

BOOST_AUTO_TEST_CASE(checks_parameters_reachable_from_the_output) {
  // w is not an input, only captured by f: gradcheck finds it through the graph.
  Tensor<double> w(Array<double>{0.4, -0.7}, true);
  Tensor<double> x = random_tensor({2}, 3);
  const GradcheckResult ok = gradcheck([&w](const Inputs& v) { return sum(v[0] * w); }, {x},
                                       {.names = {{"layer.weight", w}}});
  BOOST_TEST(ok.passed, ok.report);
  BOOST_TEST(ok.checked == 4u);
  const GradcheckResult bad = gradcheck([&w](const Inputs& v) { return sum(cube(w, Backward::wrong_factor) + v[0]); },
                                        {x}, {.names = {{"layer.weight", w}}});
  BOOST_TEST(!bad.passed);
  BOOST_TEST(bad.report.find("layer.weight") != std::string::npos, bad.report);
}

BOOST_AUTO_TEST_CASE(leaves_caller_gradients_and_values_untouched) {
  Tensor<double> x(Array<double>{1.0, 2.0}, true);
  sum(x).backward();
  const Array<double> before = x.value();
  BOOST_TEST(gradcheck([](const Inputs& v) { return sum(tanh(v[0])); }, {x}).passed);
  BOOST_TEST(x.grad() == (Array<double>{1.0, 1.0}));
  BOOST_TEST(x.value() == before);
}

BOOST_AUTO_TEST_CASE(rejects_an_output_without_gradient) {
  Tensor<double> constant(Array<double>{1.0});
  BOOST_CHECK_THROW(gradcheck([](const Inputs& v) { return v[0] * 2.0; }, {constant}), graph_error);
}
