// The version counter (PyTorch's _version): a value that an op saved for backward and that
// was then changed in place through mutable_value() makes backward throw, naming the op.
#define BOOST_TEST_MODULE version_counter
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;

namespace {

// The message of the graph_error that `f` throws ("" when it throws none).
template <class F>
std::string graph_error_message(F&& f) {
  try {
    f();
  } catch (const graph_error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(mutable_value_counts_changes) {
  Tensor<double> x(Array<double>{1.0, 2.0});
  BOOST_TEST(x.version() == 0u);
  x.mutable_value()(0) = 3.0;
  x.mutable_value()(1) = 4.0;
  BOOST_TEST(x.version() == 2u);
  // Reading does not count; neither does a copy (a new storage) nor another handle.
  (void)x.value();
  BOOST_TEST(x.version() == 2u);
  Tensor<double> same = x;
  BOOST_TEST(same.version() == 2u);
  BOOST_TEST(x.detach().version() == 0u);
}

BOOST_AUTO_TEST_CASE(an_output_changed_after_the_op_makes_backward_throw_naming_the_op) {
  Tensor<double> x(Array<double>{0.5, -1.0}, true);
  Tensor<double> y = tanh(x);  // backward reads y: 1 - y^2
  y.mutable_value() *= 2.0;
  Tensor<double> loss = sum(y);
  const std::string message = graph_error_message([&] { loss.backward(); });
  BOOST_TEST(contains(message, "tanh's backward needs its output, which was changed in place after the op "
                               "(version 1, saved at version 0)"),
             message);
  BOOST_TEST(!x.has_grad());
  BOOST_TEST(live_node_count() > 0u);  // the graph is still there, as after any throwing backward
}

BOOST_AUTO_TEST_CASE(an_input_changed_after_the_op_makes_backward_throw_naming_the_op_and_input) {
  Tensor<double> a(Array<double>{1.0, 2.0}, true);
  Tensor<double> b(Array<double>{3.0, 4.0}, true);
  Tensor<double> product = mul(a, b);  // backward reads both inputs
  Tensor<double> loss = sum(product);
  b.mutable_value()(0) = 5.0;
  const std::string message = graph_error_message([&] { loss.backward(); });
  BOOST_TEST(contains(message, "mul's backward needs its input 1, which was changed in place after the op "
                               "(version 1, saved at version 0)"),
             message);
}

BOOST_AUTO_TEST_CASE(a_parameter_updated_between_forward_and_backward_throws) {
  Tensor<double> w(Array<double>{{0.5, -0.25}, {1.0, 0.75}}, true);
  Tensor<double> x(Array<double>{{1.0, 2.0}});
  Tensor<double> loss = sum(matmul(x, w));  // backward reads both operands
  {
    NoGradGuard no_grad;
    w.mutable_value() -= 0.1;  // what an optimizer step does between forward and backward
  }
  const std::string message = graph_error_message([&] { loss.backward(); });
  BOOST_TEST(contains(message, "matmul's backward needs its input 1"), message);
}

BOOST_AUTO_TEST_CASE(a_value_changed_before_any_op_saved_it_is_fine) {
  Tensor<double> x(Array<double>{0.5, -1.0}, true);
  x.mutable_value() *= 2.0;  // version 1 before the op: that is the version saved
  init::constant(x, 0.25);  // version 2
  Tensor<double> y = exp(x);
  sum(y * y).backward();
  check_close(x.grad(), Array<double>{2.0 * std::exp(0.5), 2.0 * std::exp(0.5)}, 1e-12);
}

BOOST_AUTO_TEST_CASE(a_value_the_backward_does_not_read_may_change) {
  // add reads neither operand, as in PyTorch only saved values are checked.
  Tensor<double> a(Array<double>{1.0, 2.0}, true);
  Tensor<double> b(Array<double>{3.0, 4.0}, true);
  Tensor<double> loss = sum(a + b);
  a.mutable_value() += 1.0;
  loss.backward();
  check_close(a.grad(), Array<double>{1.0, 1.0});
  check_close(b.grad(), Array<double>{1.0, 1.0});
}

BOOST_AUTO_TEST_CASE(a_retained_graph_refuses_a_second_backward_after_an_optimizer_step) {
  Tensor<double> w(Array<double>{0.5, -0.25}, true);
  Tensor<double> loss = sum(w * w);
  loss.backward(BackwardOptions{.retain_graph = true});
  optim::SGD<double> sgd({w}, {.lr = 0.1});
  sgd.step();
  const std::string message = graph_error_message([&] { loss.backward(); });
  BOOST_TEST(contains(message, "mul's backward needs its input 0, which was changed in place after the op "
                               "(version 1, saved at version 0)"),
             message);
}

BOOST_AUTO_TEST_CASE(training_steps_with_every_optimizer_run_without_complaint) {
  for (const std::string type : {"SGD", "Adam", "AdamW"}) {
    Tensor<float> w(Array<float>{{0.5f, -0.25f, 0.1f}, {1.0f, 0.75f, -0.5f}}, true);
    Tensor<float> b(Array<float>{0.1f, -0.1f, 0.2f}, true);
    std::unique_ptr<optim::Optimizer<float>> optimizer;
    if (type == "SGD") optimizer = std::make_unique<optim::SGD<float>>(std::vector{w, b}, optim::SgdOptions{.lr = 0.1});
    if (type == "Adam") optimizer = std::make_unique<optim::Adam<float>>(std::vector{w, b});
    if (type == "AdamW") optimizer = std::make_unique<optim::AdamW<float>>(std::vector{w, b});
    const Tensor<float> x(Array<float>{{1.0f, 2.0f}, {-1.0f, 0.5f}});
    float first_loss = 0, last_loss = 0;
    for (int step = 0; step < 5; ++step) {
      optimizer->zero_grad();
      Tensor<float> loss = mean(tanh(matmul(x, w) + b) * tanh(matmul(x, w) + b));
      (step == 0 ? first_loss : last_loss) = loss.item();
      BOOST_CHECK_NO_THROW(loss.backward());
      optimizer->step();
    }
    BOOST_TEST(w.version() == 5u, type);  // one change per step
    BOOST_TEST(last_loss < first_loss, type);
  }
}

BOOST_AUTO_TEST_CASE(gradcheck_leaves_the_versions_of_its_inputs_alone) {
  Tensor<double> x = xgrad::testing::random_tensor({3}, 7);
  Tensor<double> kept = sum(tanh(x));  // a graph over x from before gradcheck
  const GradcheckResult result = gradcheck([](const auto& xs) { return sum(tanh(xs[0]) * xs[0]); }, {x});
  BOOST_TEST(result.passed, result.report);
  BOOST_TEST(x.version() == 0u);
  BOOST_CHECK_NO_THROW(kept.backward());
}
