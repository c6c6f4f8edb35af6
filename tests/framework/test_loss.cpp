// Losses: values against hand-computed ones (ignore_index, label smoothing, reductions),
// gradients, and errors.
#define BOOST_TEST_MODULE loss
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

namespace {
// Two rows of logits with known log-sum-exp values.
Tensor<double> logits() { return Tensor<double>(Array<double>{{1.0, 2.0, 3.0}, {1.0, 1.0, 1.0}}, true); }
const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
const double lse1 = 1.0 + std::log(3.0);
}  // namespace

BOOST_AUTO_TEST_CASE(cross_entropy_values_and_reductions) {
  const Indices targets{2, 0};
  const double row0 = lse0 - 3.0, row1 = lse1 - 1.0;
  BOOST_TEST(cross_entropy(logits(), targets).item() == (row0 + row1) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(cross_entropy(logits(), targets, {.reduction = Reduction::sum}).item() == row0 + row1,
             boost::test_tools::tolerance(1e-12));
  check_close(cross_entropy(logits(), targets, {.reduction = Reduction::none}).value(), Array<double>{row0, row1});
}

BOOST_AUTO_TEST_CASE(cross_entropy_ignore_index_excludes_rows_from_the_mean) {
  Tensor<double> x = logits();
  Tensor<double> loss = cross_entropy(x, Indices{2, 0}, {.ignore_index = 0});  // the second row is ignored
  BOOST_TEST(loss.item() == lse0 - 3.0, boost::test_tools::tolerance(1e-12));
  loss.backward();
  check_close(xt::view(x.grad(), 1), Array<double>{0.0, 0.0, 0.0});
  check_close(cross_entropy(logits(), Indices{-100, -100}).value(), Array<double>(0.0));  // no NaN
}

BOOST_AUTO_TEST_CASE(cross_entropy_label_smoothing) {
  const double s = 0.1;
  const double row0 = (1 - s) * (lse0 - 3.0) + s / 3 * (3 * lse0 - 6.0);
  const double row1 = (1 - s) * (lse1 - 1.0) + s / 3 * (3 * lse1 - 3.0);
  BOOST_TEST(cross_entropy(logits(), Indices{2, 0}, {.label_smoothing = s}).item() == (row0 + row1) / 2,
             boost::test_tools::tolerance(1e-12));
  // Value from PyTorch 1.13: F.cross_entropy(x, t, ignore_index=-100, label_smoothing=0.2) on
  // x = [[1, 2, 3], [1, 1, 1], [0.5, -1, 2]], t = [1, -100, 0].
  Tensor<double> x(Array<double>{{1.0, 2.0, 3.0}, {1.0, 1.0, 1.0}, {0.5, -1.0, 2.0}});
  const double torch_value = 1.574458630550769;
  BOOST_TEST(cross_entropy(x, Indices{1, -100, 0}, {.label_smoothing = 0.2}).item() == torch_value,
             boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(cross_entropy_over_batch_and_time) {
  // [batch 2, time 3, classes 4] against [2, 3] targets, padding ignored.
  Tensor<double> x = random_tensor({2, 3, 4}, 1);
  const Indices targets{{1, 3, -100}, {0, -100, -100}};
  Tensor<double> loss = cross_entropy(x, targets);
  double expected = 0;
  for (auto [b, t] : {std::pair{0, 0}, {0, 1}, {1, 0}}) {
    const auto row = xt::view(x.value(), b, t);
    expected += std::log(xt::sum(xt::exp(row))()) - row(targets(b, t));
  }
  BOOST_TEST(loss.item() == expected / 3, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(nll_bce_mse_values) {
  Tensor<double> log_probs(Array<double>{{-0.1, -2.5}, {-1.2, -0.4}});
  BOOST_TEST(nll_loss(log_probs, Indices{1, 0}).item() == (2.5 + 1.2) / 2, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(nll_loss(log_probs, Indices{1, -100}).item() == 2.5, boost::test_tools::tolerance(1e-12));

  Tensor<double> x(Array<double>{2.0, -1.0, 0.0});
  Tensor<double> y(Array<double>{1.0, 0.0, 0.5});
  const double expected = (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-1.0)) + std::log(2.0)) / 3;
  BOOST_TEST(binary_cross_entropy_with_logits(x, y).item() == expected, boost::test_tools::tolerance(1e-12));
  Tensor<double> huge(Array<double>{500.0, -500.0});
  check_close(binary_cross_entropy_with_logits(huge, Tensor<double>(Array<double>{1.0, 0.0}), Reduction::none).value(),
              Array<double>{0.0, 0.0});

  BOOST_TEST(mse_loss(x, y).item() == (1.0 + 1.0 + 0.25) / 3, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(mse_loss(x, y, Reduction::sum).item() == 2.25, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(gradients) {
  Tensor<double> x = random_tensor({2, 3, 5}, 2, -2.0, 2.0);
  const Indices targets{{4, 0, -100}, {2, 2, 1}};
  for (Reduction reduction : {Reduction::mean, Reduction::sum, Reduction::none}) {
    for (double smoothing : {0.0, 0.15}) {
      BOOST_TEST_CONTEXT("reduction " << int(reduction) << ", smoothing " << smoothing) {
        const CrossEntropyOptions options{.label_smoothing = smoothing, .reduction = reduction};
        check_gradients([&](const Inputs& v) { return cross_entropy(v[0], targets, options); }, {x});
      }
    }
    check_gradients([&](const Inputs& v) { return nll_loss(v[0], targets, {.reduction = reduction}); }, {x});
    Tensor<double> logits = random_tensor({3, 4}, 3, -3.0, 3.0);
    Tensor<double> probabilities = random_tensor({3, 4}, 4, 0.0, 1.0);
    check_gradients([&](const Inputs& v) { return binary_cross_entropy_with_logits(v[0], v[1], reduction); },
                    {logits, probabilities});
    check_gradients([&](const Inputs& v) { return mse_loss(v[0], v[1], reduction); }, {logits, probabilities});
  }
}

BOOST_AUTO_TEST_CASE(errors_name_shapes_and_targets) {
  Tensor<double> x = random_tensor({2, 3}, 5);
  try {
    cross_entropy(x, Indices{1, 3});
    BOOST_FAIL("a target outside the classes must throw");
  } catch (const index_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("target 3") != std::string::npos, message);
    BOOST_TEST(message.find("[1]") != std::string::npos, message);
  }
  try {
    cross_entropy(x, Indices{1, 0, 2});
    BOOST_FAIL("mismatched targets must throw");
  } catch (const shape_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("[2, 3]") != std::string::npos, message);
    BOOST_TEST(message.find("[3]") != std::string::npos, message);
  }
  BOOST_CHECK_THROW(cross_entropy(x, Indices{0, 1}, {.label_smoothing = 1.5}), std::invalid_argument);
  BOOST_CHECK_THROW(mse_loss(x, random_tensor({3, 2}, 6)), shape_error);
  BOOST_CHECK_THROW(binary_cross_entropy_with_logits(x, random_tensor({2}, 7)), shape_error);
}
