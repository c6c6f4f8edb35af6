// Gradient checks for the custom op and layer, as a user would write them in their own tests.
#define BOOST_TEST_MODULE custom_layer
#include <boost/test/unit_test.hpp>

#include "highway.h"

using namespace xgrad;
using Inputs = std::vector<Tensor<double>>;

BOOST_AUTO_TEST_CASE(softplus_values_and_gradient) {
  Tensor<double> x = Tensor<double>::from({-30.0, -1.0, 0.0, 2.0, 40.0}, {5}, true);
  const Array<double> y = custom::softplus(x).value();
  BOOST_TEST(y(2) == std::log(2.0), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(y(4) == 40.0, boost::test_tools::tolerance(1e-12));  // no overflow
  // gradcheck compares every element of the analytic gradient with central differences in double.
  const GradcheckResult result = gradcheck([](const Inputs& in) { return custom::softplus(in[0]); }, {x});
  BOOST_TEST(result.passed, result.report);
}

BOOST_AUTO_TEST_CASE(highway_gradients_for_input_and_every_parameter) {
  manual_seed(3);
  custom::Highway<double> layer({.size = 4});
  Tensor<double> x = Tensor<double>::from({0.3, -1.2, 0.8, 2.0, -0.5, 0.1, 1.5, -0.7}, {2, 4}, true);
  // The parameters are found through the graph; naming them makes a failure report readable.
  const GradcheckResult result = gradcheck([&](const Inputs& in) { return layer(in[0]); }, {x},
                                           {.names = layer.named_parameters()});
  BOOST_TEST(result.passed, result.report);
  BOOST_TEST(result.checked == 8 * (8 + 2 * (16 + 4)));  // 8 outputs x (input + two weights and biases)
}
