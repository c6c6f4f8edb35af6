// Graph behaviour: recording, reverse pass, accumulation, no-grad, diamonds, release of
// saved values, retained graphs and misuse errors.
#define BOOST_TEST_MODULE autograd
#include "xgrad_test.h"

#include <memory>
#include <thread>

using namespace xgrad;
using xgrad::testing::check_close;

BOOST_AUTO_TEST_CASE(leaf_gradients_accumulate_across_backward_calls_until_zeroed) {
  Tensor<double> x(Array<double>{1.0, -2.0, 3.0}, true);
  Tensor<double> y = sum(x * x);  // dy/dx = 2x
  y.backward(BackwardOptions{.retain_graph = true});
  check_close(x.grad(), Array<double>{2.0, -4.0, 6.0});
  y.backward();
  check_close(x.grad(), Array<double>{4.0, -8.0, 12.0});
  x.zero_grad();
  check_close(x.grad(), Array<double>{0.0, 0.0, 0.0});
  sum(x * 3.0).backward();
  check_close(x.grad(), Array<double>{3.0, 3.0, 3.0});
}

BOOST_AUTO_TEST_CASE(a_tensor_used_twice_receives_both_gradients) {
  // Diamond: a feeds b and c, both feed d. d = (2a) * exp(a) -> dd/da = 2 exp(a) (1 + a)
  Tensor<double> a(Array<double>{0.5, -1.5}, true);
  Tensor<double> b = a * 2.0;
  Tensor<double> c = exp(a);
  sum(b * c).backward();
  const Array<double> av = a.value();
  check_close(a.grad(), Array<double>(2.0 * xt::exp(av) * (1.0 + av)), 1e-12);
}

BOOST_AUTO_TEST_CASE(inputs_that_do_not_require_grad_get_no_gradient_and_no_node) {
  Tensor<double> w(Array<double>{1.0, 2.0}, true);
  Tensor<double> data(Array<double>{3.0, 4.0});
  Tensor<double> constant = data * 2.0;
  BOOST_TEST(!constant.requires_grad());
  BOOST_TEST(constant.is_leaf());
  sum(w * constant).backward();
  BOOST_TEST(!data.has_grad());
  check_close(w.grad(), Array<double>{6.0, 8.0});
}

BOOST_AUTO_TEST_CASE(no_grad_guard_stops_recording_and_restores_the_mode) {
  Tensor<double> x(Array<double>{1.0}, true);
  {
    NoGradGuard guard;
    BOOST_TEST(!grad_enabled());
    Tensor<double> y = tanh(x) * 2.0;
    BOOST_TEST(!y.requires_grad());
    BOOST_TEST(live_node_count() == 0u);
    BOOST_CHECK_THROW(y.backward(), graph_error);
  }
  BOOST_TEST(grad_enabled());
  BOOST_TEST(tanh(x).requires_grad());
}

BOOST_AUTO_TEST_CASE(backward_releases_saved_values_and_nodes) {
  Tensor<double> x(Array<double>{1.0, 2.0, 3.0}, true);
  {
    Tensor<double> loss = sum(tanh(x * x) + x);
    BOOST_TEST(live_node_count() == 4u);  // mul, tanh, add, sum
    loss.backward();
    // Only the loss's own node survives (it is the loss's grad_fn), with nothing saved.
    BOOST_TEST(live_node_count() == 1u);
    BOOST_TEST(loss.impl().grad_fn->inputs().empty());
    BOOST_CHECK_THROW(loss.backward(), graph_error);  // freed: second pass needs retain_graph
  }
  BOOST_TEST(live_node_count() == 0u);
}

BOOST_AUTO_TEST_CASE(retain_graph_keeps_the_graph_for_a_second_pass) {
  Tensor<double> x(Array<double>{0.3}, true);
  Tensor<double> y = sum(sigmoid(x));
  y.backward(BackwardOptions{.retain_graph = true});
  BOOST_TEST(live_node_count() == 2u);
  y.backward();
  const double s = 1.0 / (1.0 + std::exp(-0.3));
  BOOST_TEST(x.grad()(0) == 2.0 * s * (1.0 - s), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(intermediate_gradients_are_dropped_unless_retained) {
  Tensor<double> x(Array<double>{1.0, 2.0}, true);
  Tensor<double> hidden = x * 3.0;
  Tensor<double> kept = x * 5.0;
  kept.retain_grad();
  sum(hidden * kept).backward();
  BOOST_TEST(!hidden.has_grad());
  check_close(kept.grad(), Array<double>{3.0, 6.0});  // d/dkept = hidden
  check_close(x.grad(), Array<double>{30.0, 60.0});    // 2 * 15 x
}

BOOST_AUTO_TEST_CASE(nodes_whose_results_no_gradient_depends_on_are_skipped) {
  Tensor<double> x(Array<double>{1.0, 2.0}, true);
  Tensor<double> y(Array<double>{1.0, 1.0}, true);
  Tensor<double> unused = exp(y);  // recorded, but not part of the loss
  sum(x * 2.0).backward();
  BOOST_TEST(!y.has_grad());
  BOOST_TEST(live_node_count() == 1u);  // `unused` only: the loss was a temporary
}

BOOST_AUTO_TEST_CASE(backward_with_an_explicit_output_gradient) {
  Tensor<double> x(Array<double>{{1.0, 2.0}, {3.0, 4.0}}, true);
  Tensor<double> y = x * x;
  y.backward(Array<double>{{1.0, 0.0}, {0.5, -1.0}});
  check_close(x.grad(), Array<double>{{2.0, 0.0}, {3.0, -8.0}});
}

BOOST_AUTO_TEST_CASE(backward_misuse_throws_with_a_message) {
  Tensor<double> x(Array<double>{1.0, 2.0}, true);
  Tensor<double> y = x * 2.0;
  try {
    y.backward();
    BOOST_FAIL("backward on a non-scalar without a gradient must throw");
  } catch (const graph_error& e) {
    BOOST_TEST(std::string(e.what()).find("[2]") != std::string::npos, e.what());
  }
  Tensor<double> constant(Array<double>{1.0});
  BOOST_CHECK_THROW(constant.backward(), graph_error);
  BOOST_CHECK_THROW(y.backward(Array<double>{1.0, 2.0, 3.0}), shape_error);
  BOOST_CHECK_THROW(y.set_requires_grad(false), graph_error);
  BOOST_CHECK_THROW(Tensor<double>().value(), graph_error);
  BOOST_CHECK_THROW(Tensor<double>(Array<double>{1.0}).grad(), graph_error);
}

BOOST_AUTO_TEST_CASE(a_long_training_loop_does_not_grow_the_graph) {
  Tensor<double> w(Array<double>{0.5, -0.5}, true);
  Tensor<double> x(Array<double>{1.0, 2.0});
  for (int step = 0; step < 1000; ++step) {
    Tensor<double> loss = mean(tanh(w * x) * tanh(w * x));
    loss.backward();
    NoGradGuard update;
    w.mutable_value() -= 0.1 * w.grad();
    w.zero_grad();
  }
  BOOST_TEST(live_node_count() == 0u);
  // Graphs built but never backpropagated are freed with their tensors too.
  for (int step = 0; step < 1000; ++step) Tensor<double> unused = exp(w) * w;
  BOOST_TEST(live_node_count() == 0u);
}

BOOST_AUTO_TEST_CASE(a_very_deep_graph_is_freed_without_recursion) {
  Tensor<double> x(Array<double>{1.0}, true);
  {
    Tensor<double> y = x;
    for (int i = 0; i < 300000; ++i) y = y + 1.0;
    BOOST_TEST(live_node_count() == 300000u);
  }  // destroying the chain would overflow the stack if done recursively
  BOOST_TEST(live_node_count() == 0u);
  Tensor<double> y = x;
  for (int i = 0; i < 300000; ++i) y = y * 1.0;
  sum(y).backward();
  BOOST_TEST(x.grad()(0) == 1.0);
}

BOOST_AUTO_TEST_CASE(a_multi_output_node_runs_once_and_sees_only_reached_outputs) {
  // A custom op with two results: (2x, x^2), recorded as one node.
  Tensor<double> x(Array<double>{3.0}, true);
  int runs = 0;
  auto results = record<double, 2>(
      "double_and_square", {Array<double>{6.0}, Array<double>{9.0}}, {x}, [&runs](Node<double>& node) {
        ++runs;
        Array<double>& gx = node.input_grad(0);
        if (node.has_output_grad(0)) gx += 2.0 * node.output_grad(0);                       // dx += 2 dy0
        if (node.has_output_grad(1)) gx += 2.0 * node.input(0) * node.output_grad(1);       // dx += 2x dy1
      });
  sum(results[0] * 10.0 + results[1]).backward(BackwardOptions{.retain_graph = true});
  BOOST_TEST(runs == 1);
  BOOST_TEST(x.grad()(0) == 26.0);
  x.zero_grad();
  sum(results[1]).backward();
  BOOST_TEST(x.grad()(0) == 6.0);
}

BOOST_AUTO_TEST_CASE(tensors_from_values_and_a_shape) {
  Tensor<float> t = Tensor<float>::from({1, 2, 3, 4, 5, 6}, {1, 2, 3}, true);
  BOOST_TEST(to_string(t.shape()) == "[1, 2, 3]");
  BOOST_TEST(t.value()(0, 1, 2) == 6.0f);
  BOOST_TEST(t.requires_grad());
  BOOST_CHECK_THROW(Tensor<float>::from({1, 2, 3}, {2, 2}), shape_error);
  BOOST_TEST(Tensor<double>::scalar(2.5).item() == 2.5);
  BOOST_CHECK_THROW(t.item(), shape_error);
  BOOST_TEST(t.size(-1) == 3u);
}

// An op result's value is freed once only graph nodes that never read it hold it, as PyTorch
// keeps only what an op saved: concat, reshape, select and dropout read no values, a matrix
// product reads its inputs but not its result.
BOOST_AUTO_TEST_CASE(a_value_no_backward_reads_is_freed_with_its_last_handle) {
  const Tensor<double> x = testing::random_tensor({2, 3}, 1);
  const Tensor<double> w = testing::random_tensor({8, 3}, 2);
  Tensor<double> joined;
  {
    const Tensor<double> projected = linear(x, w);
    joined = concat<double>({projected, reshape(projected, {2, 8})}, 0);
    BOOST_TEST(projected.value().size() == 16u);  // a handle outside the graph keeps it readable
  }
  const Tensor<double>& freed = joined.impl().grad_fn->inputs()[0];
  BOOST_TEST(freed.impl().value_released());
  BOOST_TEST(to_string(freed.shape()) == "[2, 8]");  // the shape stays for backward
  BOOST_TEST(freed.size() == 16u);
  BOOST_CHECK_THROW(freed.value(), graph_error);
  testing::weighted_sum(joined).backward();

  // The same graph with every intermediate held gives the same gradients.
  Tensor<double> x_kept = testing::random_tensor({2, 3}, 1);
  Tensor<double> w_kept = testing::random_tensor({8, 3}, 2);
  const Tensor<double> projected = linear(x_kept, w_kept);
  testing::weighted_sum(concat<double>({projected, reshape(projected, {2, 8})}, 0)).backward();
  check_close(x.grad(), x_kept.grad(), 0.0);
  check_close(w.grad(), w_kept.grad(), 0.0);
}

// Freeing keeps the shape in a heap block of its own: a value no larger than that stays.
BOOST_AUTO_TEST_CASE(a_value_smaller_than_its_shape_record_is_not_freed) {
  const Tensor<double> x = testing::random_tensor({1, 3}, 1);
  const Tensor<double> w = testing::random_tensor({2, 3}, 2);
  const Tensor<double> joined = concat<double>({linear(x, w)}, 0);  // two values, 16 bytes
  BOOST_TEST(!joined.impl().grad_fn->inputs()[0].impl().value_released());
}

BOOST_AUTO_TEST_CASE(values_that_a_backward_reads_are_kept) {
  const Tensor<double> x = testing::random_tensor({2, 3}, 3);
  const Tensor<double> w = testing::random_tensor({4, 3}, 4);
  // linear reads its input, the reshape's result; tanh reads its own result.
  const Tensor<double> projected = linear(reshape(x, {2, 3}), w);
  const Tensor<double> joined = concat<double>({tanh(x)}, 0);
  BOOST_TEST(!projected.impl().grad_fn->inputs()[0].impl().value_released());
  BOOST_TEST(!joined.impl().grad_fn->inputs()[0].impl().value_released());
  testing::weighted_sum(projected + sum(joined)).backward();
  BOOST_TEST(x.has_grad());
}

BOOST_AUTO_TEST_CASE(a_released_node_stops_counting_as_a_holder_that_does_not_read) {
  const Tensor<double> x = testing::random_tensor({2, 3}, 5);
  const Tensor<double> w = testing::random_tensor({3, 3}, 6);
  const Tensor<double> v = testing::random_tensor({2, 3}, 7);
  Tensor<double> read_later;
  {
    const Tensor<double> shared = linear(x, w);
    const Tensor<double> joined = concat<double>({shared}, 0);  // holds `shared` without reading it
    read_later = linear(shared, v);                             // reads `shared` in its backward
    BOOST_TEST(shared.impl().unread_holders == 1u);
    sum(joined).backward();  // releases concat's node, and with it its hold on `shared`
    BOOST_TEST(shared.impl().unread_holders == 0u);
  }
  const Tensor<double>& shared = read_later.impl().grad_fn->inputs()[0];
  BOOST_TEST(!shared.impl().value_released());
  BOOST_TEST(shared.value().size() == 6u);
}

BOOST_AUTO_TEST_CASE(cross_entropy_turns_logits_nothing_else_holds_into_their_gradient) {
  const Indices targets{2, 0, -100, 1};
  const CrossEntropyOptions options{.ignore_index = -100, .label_smoothing = 0.1};
  const Tensor<double> x = testing::random_tensor({4, 5}, 8);
  const Tensor<double> w = testing::random_tensor({3, 5}, 9);
  cross_entropy(linear(x, w), targets, options).backward();  // logits: a temporary

  const Tensor<double> x_kept = testing::random_tensor({4, 5}, 8);
  const Tensor<double> w_kept = testing::random_tensor({3, 5}, 9);
  Tensor<double> logits = linear(x_kept, w_kept);
  logits.retain_grad();
  cross_entropy(logits, targets, options).backward();
  check_close(x.grad(), x_kept.grad(), 1e-15);
  check_close(w.grad(), w_kept.grad(), 1e-15);
  BOOST_TEST(logits.value().size() == 12u);  // a held value stays as it was

  // A retained graph keeps the logits for the second pass.
  const Tensor<double> x_twice = testing::random_tensor({4, 5}, 8);
  Tensor<double> loss = cross_entropy(linear(x_twice, w), targets, options);
  loss.backward(BackwardOptions{.retain_graph = true});
  loss.backward();
  check_close(x_twice.grad(), Array<double>(2.0 * x.grad()), 1e-15);
}

BOOST_AUTO_TEST_CASE(a_backward_that_reads_a_value_it_declared_unread_is_an_error) {
  const Tensor<double> x = testing::random_tensor({3}, 10);
  const Tensor<double> y = record<double>(
      "careless_square", Array<double>(x.value() * x.value()), {x},
      [](Node<double>& node) { node.input_grad(0) += 2.0 * node.input(0) * node.output_grad(); },
      reads_no_values());
  try {
    sum(y).backward();
    BOOST_FAIL("reading an input declared unread must throw");
  } catch (const graph_error& e) {
    BOOST_TEST(std::string(e.what()).find("careless_square") != std::string::npos, e.what());
  }
  const auto no_backward = [](Node<double>&) {};
  BOOST_CHECK_THROW(record<double>("listing_a_missing_input", Array<double>(x.value()), {x}, no_backward,
                                   ValuesRead{.inputs = std::vector<std::size_t>{1}, .outputs = true}),
                    std::invalid_argument);
}

// A recurrence h <- tanh(w h) over three steps, then an output layer v: v's gradient is final
// after the first node of backward, w's only after the last, and the unused leaf's at the end.
// Each report must see the leaf's gradient as it ends the pass, once per pass.
BOOST_AUTO_TEST_CASE(final_gradients_are_reported_as_soon_as_no_node_can_add_to_them) {
  const Tensor<double> w = testing::random_tensor({2, 2}, 11), v = testing::random_tensor({1, 2}, 12),
                       unused = testing::random_tensor({3}, 13);
  std::vector<std::string> reports;
  std::vector<Array<double>> seen(3);
  const std::vector<Tensor<double>> leaves{w, v, unused};
  const char* names[] = {"w", "v", "unused"};
  GradientFinalListener<double> listener(leaves, [&](std::size_t i) {
    reports.push_back(names[i]);
    if (leaves[i].has_grad()) seen[i] = leaves[i].grad();
  });
  const auto loss = [&] {
    Tensor<double> h(Array<double>{{0.5, -0.25}});
    for (int step = 0; step < 3; ++step) h = tanh(matmul(h, w));
    return sum(h * v);
  };
  for (int pass = 1; pass <= 2; ++pass) {
    reports.clear();
    loss().backward();
    BOOST_TEST(reports == (std::vector<std::string>{"v", "w", "unused"}), "pass " << pass);
    check_close(seen[0], w.grad());
    check_close(seen[1], v.grad());
    BOOST_TEST(!unused.has_grad());
  }
  BOOST_CHECK_THROW(GradientFinalListener<double>({w, w}, [](std::size_t) {}), std::invalid_argument);
  BOOST_CHECK_THROW(GradientFinalListener<double>({w * 2.0}, [](std::size_t) {}), std::invalid_argument);
  BOOST_CHECK_THROW(GradientFinalListener<double>({Tensor<double>(Array<double>{1.0})}, [](std::size_t) {}),
                    std::invalid_argument);
}

// Reporting happens inside the reverse loop: when v is reported, w has not received its
// gradient of the pass yet.
BOOST_AUTO_TEST_CASE(final_gradient_reports_come_before_backward_ends) {
  const Tensor<double> w = testing::random_tensor({2, 2}, 14), v = testing::random_tensor({1, 2}, 15);
  bool w_had_gradient_at_v = true;
  GradientFinalListener<double> listener({v, w}, [&](std::size_t i) {
    if (i == 0) w_had_gradient_at_v = w.has_grad();
  });
  Tensor<double> h(Array<double>{{0.5, -0.25}});
  for (int step = 0; step < 3; ++step) h = tanh(matmul(h, w));
  sum(h * v).backward();
  BOOST_TEST(!w_had_gradient_at_v);
  BOOST_TEST(w.has_grad());
  const Tensor<double> y = record<double>("listens_from_backward", Array<double>(w.value()), {w},
                                          [&](Node<double>&) { GradientFinalListener<double>({v}, [](std::size_t) {}); });
  BOOST_CHECK_THROW(sum(y).backward(), graph_error);
}

// A listener outlives the thread whose tape it listened to: destroying it then is safe.
BOOST_AUTO_TEST_CASE(a_final_gradient_listener_may_outlive_its_thread) {
  const Tensor<double> w = testing::random_tensor({2}, 16);
  std::unique_ptr<GradientFinalListener<double>> listener;
  std::thread([&] { listener = std::make_unique<GradientFinalListener<double>>(std::vector{w}, [](std::size_t) {}); })
      .join();
  listener.reset();
  std::size_t reports = 0;
  GradientFinalListener<double> here({w}, [&](std::size_t) { ++reports; });
  sum(w * 2.0).backward();
  BOOST_TEST(reports == 1u);
}
