// softmax and log_softmax: values, stability, masks (including fully masked rows) and
// gradients.
#define BOOST_TEST_MODULE softmax
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

BOOST_AUTO_TEST_CASE(values_along_each_axis) {
  Tensor<double> x(Array<double>{{1.0, 2.0, 3.0}, {1.0, 1.0, 1.0}});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  check_close(softmax(x).value(),
              Array<double>{{std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z}, {1 / 3.0, 1 / 3.0, 1 / 3.0}});
  const double e = 1.0 / (1.0 + std::exp(-0.0));
  check_close(softmax(x, 0).value(),
              Array<double>{{e, 1.0 / (1.0 + std::exp(-1.0)), 1.0 / (1.0 + std::exp(-2.0))},
                            {e, 1.0 / (1.0 + std::exp(1.0)), 1.0 / (1.0 + std::exp(2.0))}});
  check_close(log_softmax(x).value(), Array<double>(xt::log(softmax(x).value())), 1e-12);
}

BOOST_AUTO_TEST_CASE(large_logits_do_not_overflow) {
  Tensor<float> x(Array<float>{1000.0f, 1000.0f, -1000.0f});
  check_close(softmax(x).value(), Array<float>{0.5f, 0.5f, 0.0f}, 1e-6);
  check_close(log_softmax(x).value(), Array<float>{-std::log(2.0f), -std::log(2.0f), -2000.0f - std::log(2.0f)}, 1e-6);
}

BOOST_AUTO_TEST_CASE(masked_positions_get_exactly_zero) {
  Tensor<double> scores(Array<double>{{{0.5, 2.0, -1.0}, {1.0, 1.0, 3.0}}}, true);  // [1, 2, 3]
  const Mask key_padding{{{false, false, true}}};  // [1, 1, 3]: key 2 is padding for every query
  Tensor<double> p = softmax(scores, -1, key_padding);
  BOOST_TEST(p.value()(0, 0, 2) == 0.0);
  BOOST_TEST(p.value()(0, 1, 2) == 0.0);
  check_close(p.value(), Array<double>{{{1 / (1 + std::exp(1.5)), 1 / (1 + std::exp(-1.5)), 0.0}, {0.5, 0.5, 0.0}}});
  Tensor<double> lp = log_softmax(scores, -1, key_padding);
  BOOST_TEST(std::isinf(lp.value()(0, 0, 2)));
  BOOST_TEST(lp.value()(0, 1, 0) == -std::log(2.0), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(a_fully_masked_row_gives_zeros_and_no_nan) {
  Tensor<double> scores(Array<double>{{0.3, -0.2}, {1.0, 2.0}}, true);
  const Mask masked{{true, true}, {false, true}};
  Tensor<double> p = softmax(scores, -1, masked);
  check_close(p.value(), Array<double>{{0.0, 0.0}, {1.0, 0.0}});
  Tensor<double> lp = log_softmax(scores, -1, masked);
  BOOST_TEST(!xt::any(xt::isnan(lp.value())));
  sum(p * Tensor<double>(Array<double>{{1.0, 2.0}, {3.0, 4.0}})).backward();
  BOOST_TEST(!xt::any(xt::isnan(scores.grad())));
  check_close(scores.grad(), Array<double>{{0.0, 0.0}, {0.0, 0.0}});
  // Rows of -inf logits without a mask are treated the same way.
  Tensor<double> minus_infinity(Array<double>{-INFINITY, -INFINITY});
  check_close(softmax(minus_infinity).value(), Array<double>{0.0, 0.0});
}

BOOST_AUTO_TEST_CASE(gradients) {
  Tensor<double> x = random_tensor({2, 3, 4}, 1, -2.0, 2.0);
  for (int axis : {0, 1, 2}) {
    BOOST_TEST_CONTEXT("axis " << axis) {
      check_gradients([axis](const Inputs& v) { return softmax(v[0], axis); }, {x});
      check_gradients([axis](const Inputs& v) { return log_softmax(v[0], axis); }, {x});
    }
  }
  // A key-padding mask [2, 1, 4] with one fully masked row for the second batch entry.
  const Mask partial{{{false, true, false, true}}, {{false, false, false, true}}};
  const Mask with_full_row{{{false, true, false, false}, {true, true, true, true}, {false, false, false, true}},
                           {{true, false, false, false}, {false, false, true, false}, {true, true, true, true}}};
  for (const Mask& mask : {partial, with_full_row}) {
    check_gradients([mask](const Inputs& v) { return softmax(v[0], -1, mask); }, {x});
    // log_softmax is -inf at masked positions; weigh only the finite ones.
    check_gradients([mask](const Inputs& v) { return masked_fill(log_softmax(v[0], -1, mask), mask, 0.0); }, {x});
  }
}

BOOST_AUTO_TEST_CASE(errors) {
  Tensor<double> x = random_tensor({2, 3}, 2);
  BOOST_CHECK_THROW(softmax(x, 2), shape_error);
  try {
    softmax(x, -1, Mask{true, false});
    BOOST_FAIL("a mask that does not broadcast must throw");
  } catch (const shape_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("[2]") != std::string::npos, message);
    BOOST_TEST(message.find("[2, 3]") != std::string::npos, message);
  }
}
