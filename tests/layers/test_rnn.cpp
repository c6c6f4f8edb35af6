// RNN, LSTM, GRU and their cells: PyTorch's names and initialisation, gradients of inputs,
// initial states and parameters, padded batches against sequences run alone, parity with
// PyTorch's packed sequences, sequence-first inputs against batch-first ones, dropout between
// layers, the graph they record, and errors;
// the cell kinds' names, the factories and the kind-independent interfaces.
#define BOOST_TEST_MODULE rnn
#include "xgrad_test.h"

#include "xgrad/layers/rnn.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::fixture;
using xgrad::testing::fixture_objective;
using xgrad::testing::load_parameters;
using xgrad::testing::parity_tolerance;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;
using Lengths = std::vector<std::size_t>;

namespace {

// The outputs and final states of a layer in one vector, so that one check covers them all.
template <class T>
Tensor<T> all_results(const nn::RnnOutput<T>& result) {
  std::vector<Tensor<T>> parts{reshape(result.output, {-1}), reshape(result.h_n, {-1})};
  if (result.c_n.defined()) parts.push_back(reshape(result.c_n, {-1}));
  return concat(parts, 0);
}

// Gradcheck of weighted_sum(f(inputs)) that also requires every element of the inputs and of
// the module's parameters to have been checked: none may be cut off from the result.
template <class Module>
void check_all_gradients(const std::function<Tensor<double>(const Inputs&)>& f, const Inputs& inputs,
                         const Module& module) {
  const GradcheckResult result =
      gradcheck([&](const Inputs& xs) { return xgrad::testing::weighted_sum(f(xs)); }, inputs,
                {.names = module.named_parameters()});
  BOOST_TEST(result.passed, result.report);
  std::size_t elements = 0;
  for (const Tensor<double>& input : inputs) elements += input.size();
  for (const Tensor<double>& parameter : module.parameters()) elements += parameter.size();
  BOOST_TEST(result.checked == elements);
}

template <class T>
Tensor<T> random_as(const Shape& shape, std::uint64_t seed, bool requires_grad = false) {
  return Tensor<T>(xt::cast<T>(random_tensor(shape, seed).value()), requires_grad);
}

// LSTM takes c0; GRU and RNN do not.
template <class Layer, class T>
nn::RnnOutput<T> run(const Layer& layer, const Tensor<T>& x, const Lengths& lengths, const Tensor<T>& h0,
                     const Tensor<T>& c0) {
  if constexpr (std::is_same_v<Layer, nn::LSTM<T>>) {
    return layer.forward(x, lengths, h0, c0);
  } else {
    return layer.forward(x, lengths, h0);
  }
}

template <class E, class F>
void check_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    BOOST_FAIL("expected an exception");
  } catch (const E& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) BOOST_TEST(message.find(part) != std::string::npos, message);
  }
}

Lengths lengths_of(const safetensors::File& file) {
  const Indices values = file.integers("lengths");
  return Lengths(values.begin(), values.end());
}

}  // namespace

BOOST_AUTO_TEST_CASE(parameters_follow_pytorch) {
  nn::LSTM<double> lstm({.input_size = 5, .hidden_size = 50, .num_layers = 2, .bidirectional = true});
  const std::vector<std::pair<std::string, Shape>> expected{
      {"weight_ih_l0", {200, 5}},          {"weight_hh_l0", {200, 50}},         {"bias_ih_l0", {200}},
      {"bias_hh_l0", {200}},               {"weight_ih_l0_reverse", {200, 5}},  {"weight_hh_l0_reverse", {200, 50}},
      {"bias_ih_l0_reverse", {200}},       {"bias_hh_l0_reverse", {200}},       {"weight_ih_l1", {200, 100}},
      {"weight_hh_l1", {200, 50}},         {"bias_ih_l1", {200}},               {"bias_hh_l1", {200}},
      {"weight_ih_l1_reverse", {200, 100}}, {"weight_hh_l1_reverse", {200, 50}}, {"bias_ih_l1_reverse", {200}},
      {"bias_hh_l1_reverse", {200}}};
  const NamedTensors<double> parameters = lstm.named_parameters();
  BOOST_TEST_REQUIRE(parameters.size() == expected.size());
  const double bound = 1.0 / std::sqrt(50.0);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    BOOST_TEST(parameters[i].first == expected[i].first);
    BOOST_TEST(to_string(parameters[i].second.shape()) == to_string(expected[i].second));
    const double largest = xt::amax(xt::abs(parameters[i].second.value()))();
    BOOST_TEST((largest <= bound && largest > 0.9 * bound), parameters[i].first << ": " << largest);
  }

  nn::GRU<float> gru({.input_size = 3, .hidden_size = 4, .bias = false});
  BOOST_TEST_REQUIRE(gru.named_parameters().size() == 2u);
  BOOST_TEST(gru.named_parameters()[0].first == "weight_ih_l0");
  BOOST_TEST(to_string(gru.named_parameters()[1].second.shape()) == "[12, 4]");
  nn::RNN<float> rnn({.input_size = 3, .hidden_size = 4});
  BOOST_TEST(to_string(rnn.named_parameters()[0].second.shape()) == "[4, 3]");

  nn::LSTMCell<float> lstm_cell({.input_size = 3, .hidden_size = 4});
  std::vector<std::string> names;
  for (const auto& [name, parameter] : lstm_cell.named_parameters()) names.push_back(name);
  BOOST_TEST((names == std::vector<std::string>{"weight_ih", "weight_hh", "bias_ih", "bias_hh"}));
  BOOST_TEST(to_string(lstm_cell.weight_ih.shape()) == "[16, 3]");
  nn::GRUCell<float> gru_cell({.input_size = 3, .hidden_size = 4, .bias = false});
  BOOST_TEST(gru_cell.named_parameters().size() == 2u);
  BOOST_TEST(!gru_cell.bias_ih.defined());
  BOOST_TEST(to_string(gru_cell.weight_hh.shape()) == "[12, 4]");
}

BOOST_AUTO_TEST_CASE(lstm_gradients_with_uneven_lengths) {
  nn::LSTM<double> lstm({.input_size = 2, .hidden_size = 2, .num_layers = 2, .bidirectional = true});
  const Lengths lengths{3, 1, 2};
  check_all_gradients([&](const Inputs& v) { return all_results(lstm.forward(v[0], lengths, v[1], v[2])); },
                      {random_tensor({3, 3, 2}, 1), random_tensor({4, 3, 2}, 2), random_tensor({4, 3, 2}, 3)}, lstm);
  // Zero initial states, all sequences at full length.
  check_all_gradients([&](const Inputs& v) { return all_results(lstm.forward(v[0])); }, {random_tensor({2, 3, 2}, 4)},
                      lstm);
}

BOOST_AUTO_TEST_CASE(gru_gradients_with_uneven_lengths) {
  nn::GRU<double> gru({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
  const Lengths lengths{3, 1, 2};
  check_all_gradients([&](const Inputs& v) { return all_results(gru.forward(v[0], lengths, v[1])); },
                      {random_tensor({3, 3, 2}, 5), random_tensor({4, 3, 3}, 6)}, gru);
  nn::GRU<double> no_bias({.input_size = 2, .hidden_size = 2, .bias = false});
  check_all_gradients([&](const Inputs& v) { return all_results(no_bias.forward(v[0], {2, 3})); },
                      {random_tensor({2, 3, 2}, 7)}, no_bias);
}

BOOST_AUTO_TEST_CASE(rnn_gradients_tanh_and_relu) {
  nn::RNN<double> tanh_rnn({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
  check_all_gradients([&](const Inputs& v) { return all_results(tanh_rnn.forward(v[0], {3, 1, 2}, v[1])); },
                      {random_tensor({3, 3, 2}, 8), random_tensor({4, 3, 3}, 9)}, tanh_rnn);
  nn::RNN<double> relu_rnn({.input_size = 2,
                            .hidden_size = 3,
                            .num_layers = 2,
                            .bidirectional = true,
                            .nonlinearity = nn::RnnNonlinearity::relu});
  // Positive initial states keep enough units active that the relu is exercised both ways.
  check_all_gradients([&](const Inputs& v) { return all_results(relu_rnn.forward(v[0], {2, 3, 1}, v[1])); },
                      {random_tensor({3, 3, 2}, 10), random_tensor({4, 3, 3}, 11, 0.2, 1.0)}, relu_rnn);
}

// A sequence-first layer gives the batch-first layer's output transposed and the same final
// states, and receives the same gradients (x's transposed): bidirectional, two layers, uneven
// lengths, given initial states.
template <template <class> class Layer>
void check_sequence_first_equals_batch_first_transposed() {
  const nn::RnnOptions options{.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true};
  nn::RnnOptions time_major_options = options;
  time_major_options.batch_first = false;
  manual_seed(31);
  Layer<double> batch_major(options);
  manual_seed(31);
  Layer<double> time_major(time_major_options);
  const Lengths lengths{4, 1, 3};
  const Tensor<double> x = random_tensor({3, 4, 2}, 1), h0 = random_tensor({4, 3, 3}, 2), c0 = random_tensor({4, 3, 3}, 3);
  const Tensor<double> x_t(transpose(x, 0, 1).value(), true), h0_t(h0.value(), true), c0_t(c0.value(), true);
  const nn::RnnOutput<double> expected = run(batch_major, x, lengths, h0, c0);
  const nn::RnnOutput<double> actual = run(time_major, x_t, lengths, h0_t, c0_t);
  BOOST_TEST(to_string(actual.output.shape()) == "[4, 3, 6]");
  check_close(actual.output.value(), transpose(expected.output, 0, 1).value());
  check_close(actual.h_n.value(), expected.h_n.value());
  if (expected.c_n.defined()) check_close(actual.c_n.value(), expected.c_n.value());
  xgrad::testing::weighted_sum(all_results(expected)).backward();
  // The same objective: the output's elements in batch-first order, then the states.
  nn::RnnOutput<double> reordered = actual;
  reordered.output = transpose(actual.output, 0, 1);
  xgrad::testing::weighted_sum(all_results(reordered)).backward();
  check_close(x_t.grad(), transpose(Tensor<double>(x.grad()), 0, 1).value());
  check_close(h0_t.grad(), h0.grad());
  if (expected.c_n.defined()) check_close(c0_t.grad(), c0.grad());
  const auto expected_parameters = batch_major.named_parameters();
  const auto actual_parameters = time_major.named_parameters();
  for (std::size_t n = 0; n < expected_parameters.size(); ++n) {
    BOOST_TEST_CONTEXT(expected_parameters[n].first) {
      check_close(actual_parameters[n].second.grad(), expected_parameters[n].second.grad());
    }
  }
}

BOOST_AUTO_TEST_CASE(sequence_first_equals_batch_first_transposed) {
  check_sequence_first_equals_batch_first_transposed<nn::RNN>();
  check_sequence_first_equals_batch_first_transposed<nn::LSTM>();
  check_sequence_first_equals_batch_first_transposed<nn::GRU>();
}

BOOST_AUTO_TEST_CASE(sequence_first_gradients) {
  nn::LSTM<double> lstm({.input_size = 2, .hidden_size = 2, .num_layers = 2, .bidirectional = true, .batch_first = false});
  const Lengths lengths{3, 1, 2};
  check_all_gradients([&](const Inputs& v) { return all_results(lstm.forward(v[0], lengths, v[1], v[2])); },
                      {random_tensor({3, 3, 2}, 12), random_tensor({4, 3, 2}, 13), random_tensor({4, 3, 2}, 14)}, lstm);
  nn::GRU<double> gru({.input_size = 2, .hidden_size = 3, .batch_first = false});
  check_all_gradients([&](const Inputs& v) { return all_results(gru.forward(v[0], {2, 3})); },
                      {random_tensor({3, 2, 2}, 15)}, gru);
}

BOOST_AUTO_TEST_CASE(cell_gradients) {
  nn::LSTMCell<double> lstm_cell({.input_size = 2, .hidden_size = 3});
  check_all_gradients(
      [&](const Inputs& v) {
        const auto [h, c] = lstm_cell.forward(v[0], v[1], v[2]);
        return concat<double>({h, c * 0.7}, 1);
      },
      {random_tensor({2, 2}, 12), random_tensor({2, 3}, 13), random_tensor({2, 3}, 14)}, lstm_cell);
  // Only h' used (c' dropped), from zero states.
  check_all_gradients([&](const Inputs& v) { return lstm_cell.forward(v[0]).first; }, {random_tensor({2, 2}, 15)},
                      lstm_cell);
  nn::GRUCell<double> gru_cell({.input_size = 2, .hidden_size = 3});
  check_all_gradients([&](const Inputs& v) { return gru_cell.forward(v[0], v[1]); },
                      {random_tensor({2, 2}, 16), random_tensor({2, 3}, 17)}, gru_cell);
  for (const auto nonlinearity : {nn::RnnNonlinearity::tanh, nn::RnnNonlinearity::relu}) {
    nn::RNNCell<double> rnn_cell({.input_size = 2, .hidden_size = 3, .nonlinearity = nonlinearity});
    check_all_gradients([&](const Inputs& v) { return rnn_cell.forward(v[0], v[1]); },
                        {random_tensor({2, 2}, 18), random_tensor({2, 3}, 19)}, rnn_cell);
  }
  nn::RNNCell<double> no_bias({.input_size = 2, .hidden_size = 2, .bias = false});
  check_all_gradients([&](const Inputs& v) { return no_bias.forward(v[0], v[1]); },
                      {random_tensor({3, 2}, 20), random_tensor({3, 2}, 21)}, no_bias);
}

// A padded batch gives, for each sequence, what that sequence gives alone: the same outputs
// at its steps, zeros after them, the same final states; padded inputs get no gradient.
template <class T, template <class> class Layer>
void check_padding_is_invisible() {
  const std::size_t batch = 4, steps = 5, hidden = 3;
  Layer<T> layer({.input_size = 2, .hidden_size = hidden, .num_layers = 2, .bidirectional = true});
  const Lengths lengths{5, 2, 4, 1};
  const Tensor<T> x = random_as<T>({batch, steps, 2}, 30, true);
  const Tensor<T> h0 = random_as<T>({4, batch, hidden}, 31);
  const Tensor<T> c0 = random_as<T>({4, batch, hidden}, 32);
  const nn::RnnOutput<T> padded = run(layer, x, lengths, h0, c0);
  const bool lstm = padded.c_n.defined();
  // Alone and in a batch, the products may run in other kernels and sum in another order. An
  // output is a chain over both layers and all steps of sums of at most 6 + 3 + 2 terms (the
  // second layer's input, the state, two biases) whose magnitudes stay below 4 (1 + |output|).
  const double tolerance = 2 * xgrad::testing::sum_error_bound<T>(2 * steps * 11, 4);
  for (std::size_t b = 0; b < batch; ++b) {
    const auto length = static_cast<std::int64_t>(lengths[b]);
    const auto row = static_cast<std::int64_t>(b);
    const nn::RnnOutput<T> alone = run(layer, slice(slice(x, 0, row, row + 1), 1, 0, length), Lengths{},
                                       slice(h0, 1, row, row + 1), lstm ? slice(c0, 1, row, row + 1) : Tensor<T>());
    const Array<T> outputs = xt::view(padded.output.value(), b);
    check_close(xt::view(outputs, xt::range(0, length)), xt::view(alone.output.value(), 0), tolerance);
    BOOST_TEST(xt::all(xt::equal(xt::view(outputs, xt::range(length, steps)), T(0))));
    check_close(xt::view(padded.h_n.value(), xt::all(), b), xt::view(alone.h_n.value(), xt::all(), 0), tolerance);
    if (lstm) {
      check_close(xt::view(padded.c_n.value(), xt::all(), b), xt::view(alone.c_n.value(), xt::all(), 0), tolerance);
    }
  }
  sum(all_results(padded)).backward();
  for (std::size_t b = 0; b < batch; ++b) {
    const auto padding = xt::view(x.grad(), b, xt::range(lengths[b], steps));
    BOOST_TEST(xt::all(xt::equal(padding, T(0))));
    if (lengths[b] > 0) BOOST_TEST(xt::any(xt::not_equal(xt::view(x.grad(), b, lengths[b] - 1), T(0))));
  }
}

BOOST_AUTO_TEST_CASE(padded_batch_equals_each_sequence_alone) {
  check_padding_is_invisible<double, nn::LSTM>();
  check_padding_is_invisible<double, nn::GRU>();
  check_padding_is_invisible<float, nn::LSTM>();
  check_padding_is_invisible<float, nn::GRU>();
  check_padding_is_invisible<double, nn::RNN>();
}

BOOST_AUTO_TEST_CASE(an_empty_sequence_keeps_its_initial_state) {
  nn::LSTM<double> lstm({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
  const Tensor<double> h0 = random_tensor({4, 2, 3}, 35);
  const Tensor<double> c0 = random_tensor({4, 2, 3}, 36);
  const nn::RnnOutput<double> result = lstm.forward(random_tensor({2, 3, 2}, 37), {3, 0}, h0, c0);
  BOOST_TEST(xt::all(xt::equal(xt::view(result.output.value(), 1), 0.0)));
  check_close(xt::view(result.h_n.value(), xt::all(), 1), xt::view(h0.value(), xt::all(), 1), 0.0);
  check_close(xt::view(result.c_n.value(), xt::all(), 1), xt::view(c0.value(), xt::all(), 1), 0.0);
  sum(result.h_n).backward();
  check_close(xt::view(h0.grad(), xt::all(), 1), xt::ones<double>({4, 3}), 0.0);
}

// A cell stepped over a sequence equals the one-layer sequence layer with the same weights.
template <template <class> class Layer, class Cell, class Step>
void check_cell_matches_layer(const nn::RnnOptions& options, Step step) {
  Layer<double> layer(options);
  Cell cell({.input_size = options.input_size, .hidden_size = options.hidden_size,
             .nonlinearity = options.nonlinearity});
  for (auto& [name, parameter] : cell.named_parameters()) {
    for (const auto& [layer_name, layer_parameter] : layer.named_parameters()) {
      if (layer_name == name + "_l0") parameter.mutable_value() = layer_parameter.value();
    }
  }
  const Tensor<double> x = random_tensor({2, 4, options.input_size}, 40);
  const nn::RnnOutput<double> expected = layer.forward(x);
  Tensor<double> h = Tensor<double>::zeros({2, options.hidden_size});
  Tensor<double> c = h;
  for (std::int64_t t = 0; t < 4; ++t) {
    step(cell, select(x, 1, t), h, c);
    check_close(h.value(), xt::view(expected.output.value(), xt::all(), t), 1e-14);
  }
  check_close(h.value(), xt::view(expected.h_n.value(), 0), 1e-14);
  if (expected.c_n.defined()) check_close(c.value(), xt::view(expected.c_n.value(), 0), 1e-14);
}

BOOST_AUTO_TEST_CASE(cells_stepped_over_a_sequence_match_the_layers) {
  check_cell_matches_layer<nn::LSTM, nn::LSTMCell<double>>(
      {.input_size = 3, .hidden_size = 4},
      [](const nn::LSTMCell<double>& cell, const Tensor<double>& x, Tensor<double>& h, Tensor<double>& c) {
        std::tie(h, c) = cell.forward(x, h, c);
      });
  check_cell_matches_layer<nn::GRU, nn::GRUCell<double>>(
      {.input_size = 3, .hidden_size = 4},
      [](const nn::GRUCell<double>& cell, const Tensor<double>& x, Tensor<double>& h, Tensor<double>&) {
        h = cell.forward(x, h);
      });
  check_cell_matches_layer<nn::RNN, nn::RNNCell<double>>(
      {.input_size = 3, .hidden_size = 4, .nonlinearity = nn::RnnNonlinearity::relu},
      [](const nn::RNNCell<double>& cell, const Tensor<double>& x, Tensor<double>& h, Tensor<double>&) {
        h = cell.forward(x, h);
      });
}

constexpr std::array<nn::CellKind, 3> all_kinds{nn::CellKind::rnn, nn::CellKind::lstm, nn::CellKind::gru};

BOOST_AUTO_TEST_CASE(cell_kinds_have_names_and_gate_counts) {
  const std::array<std::string, 3> names{"rnn", "lstm", "gru"};
  const std::array<std::size_t, 3> gates{1, 4, 3};
  for (std::size_t k = 0; k < all_kinds.size(); ++k) {
    BOOST_TEST(nn::to_string(all_kinds[k]) == names[k]);
    BOOST_TEST((nn::cell_kind_from_string(names[k]) == all_kinds[k]));
    BOOST_TEST(nn::gate_count(all_kinds[k]) == gates[k]);
    // The count the models estimate their size with is the one the layers allocate.
    const auto layer = nn::make_recurrent_layer<float>(all_kinds[k], {.input_size = 2, .hidden_size = 5});
    BOOST_TEST(layer->named_parameters()[0].second.shape()[0] == gates[k] * 5);
  }
  check_error<std::invalid_argument>([] { nn::cell_kind_from_string("GRU"); },
                                     {"cell 'GRU' is not one of: rnn, lstm, gru"});
  check_error<std::invalid_argument>([] { nn::to_string(static_cast<nn::CellKind>(7)); }, {"cell kind 7"});
}

// The factory makes what the classes make: the same class, parameters and draws from the
// generator, and the RNN's nonlinearity from the options.
BOOST_AUTO_TEST_CASE(factories_build_the_layer_and_cell_of_each_kind) {
  const nn::RnnOptions options{.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true};
  const nn::RnnCellOptions cell_options{.input_size = 3, .hidden_size = 4};
  const auto same_parameters = [](const auto& made, const auto& direct) {
    const auto made_parameters = made.named_parameters();
    const auto direct_parameters = direct.named_parameters();
    BOOST_TEST_REQUIRE(made_parameters.size() == direct_parameters.size());
    for (std::size_t i = 0; i < made_parameters.size(); ++i) {
      BOOST_TEST(made_parameters[i].first == direct_parameters[i].first);
      BOOST_TEST(xt::all(xt::equal(made_parameters[i].second.value(), direct_parameters[i].second.value())));
    }
  };
  const auto check = [&]<template <class> class Layer, class Cell>(nn::CellKind kind) {
    BOOST_TEST_CONTEXT(nn::to_string(kind)) {
      manual_seed(11);
      const auto layer = nn::make_recurrent_layer<float>(kind, options);
      const auto cell = nn::make_recurrent_cell<float>(kind, cell_options);
      manual_seed(11);
      const Layer<float> direct_layer(options);
      const Cell direct_cell(cell_options);
      BOOST_TEST_REQUIRE(dynamic_cast<const Layer<float>*>(layer.get()) != nullptr);
      BOOST_TEST_REQUIRE(dynamic_cast<const Cell*>(cell.get()) != nullptr);
      same_parameters(*layer, direct_layer);
      same_parameters(*cell, direct_cell);
    }
  };
  check.template operator()<nn::RNN, nn::RNNCell<float>>(nn::CellKind::rnn);
  check.template operator()<nn::LSTM, nn::LSTMCell<float>>(nn::CellKind::lstm);
  check.template operator()<nn::GRU, nn::GRUCell<float>>(nn::CellKind::gru);

  const auto relu = nn::make_recurrent_layer<double>(nn::CellKind::rnn,
                                                     {.input_size = 1, .hidden_size = 1, .nonlinearity = nn::RnnNonlinearity::relu});
  BOOST_TEST((dynamic_cast<const nn::RNN<double>&>(*relu).options().nonlinearity == nn::RnnNonlinearity::relu));
  const auto relu_cell = nn::make_recurrent_cell<double>(
      nn::CellKind::rnn, {.input_size = 1, .hidden_size = 1, .bias = false, .nonlinearity = nn::RnnNonlinearity::relu});
  relu_cell->parameters()[0].mutable_value().fill(1.0);
  const nn::RecurrentState<double> next = relu_cell->step(Tensor<double>::full({1, 1}, -2.0), {});
  BOOST_TEST(next.h.value()(0, 0) == 0.0);  // tanh would give tanh(-2)

  check_error<std::invalid_argument>([] { nn::make_recurrent_layer<float>(static_cast<nn::CellKind>(3), {}); },
                                     {"make_recurrent_layer: cell kind 3"});
  check_error<std::invalid_argument>([] { nn::make_recurrent_cell<float>(static_cast<nn::CellKind>(3), {}); },
                                     {"make_recurrent_cell: cell kind 3"});
}

// Through the interfaces alone, whatever the kind: a cell stepped from a given state over a
// sequence equals the one-layer sequence layer with the same weights run from that state, and
// a layer run over a sequence in two parts, the second from the first's final state, equals
// one run over all of it.
BOOST_AUTO_TEST_CASE(the_interfaces_carry_the_state_whatever_the_kind) {
  const std::size_t batch = 2, steps = 4, input = 3, hidden = 4;
  // Products of at most input + hidden + 2 terms of magnitude below 4, chained over the steps
  // (the cell multiplies by W_hh as stored, the layer packed: another summation order).
  const double tolerance = 2 * xgrad::testing::sum_error_bound<double>(steps * (input + hidden + 2), 4);
  const Tensor<double> x = random_tensor({batch, steps, input}, 80);
  for (const nn::CellKind kind : all_kinds) {
    BOOST_TEST_CONTEXT(nn::to_string(kind)) {
      const auto layer = nn::make_recurrent_layer<double>(kind, {.input_size = input, .hidden_size = hidden});
      const auto cell = nn::make_recurrent_cell<double>(kind, {.input_size = input, .hidden_size = hidden});
      for (auto& [name, parameter] : cell->named_parameters()) {
        for (const auto& [layer_name, layer_parameter] : layer->named_parameters()) {
          if (layer_name == name + "_l0") parameter.mutable_value() = layer_parameter.value();
        }
      }
      const bool lstm = kind == nn::CellKind::lstm;
      const nn::RecurrentState<double> initial{random_tensor({1, batch, hidden}, 81),
                                               lstm ? random_tensor({1, batch, hidden}, 82) : Tensor<double>()};
      const nn::RnnOutput<double> expected = layer->run(x, {}, initial);
      nn::RecurrentState<double> state{select(initial.h, 0, 0), lstm ? select(initial.c, 0, 0) : Tensor<double>()};
      for (std::int64_t t = 0; t < static_cast<std::int64_t>(steps); ++t) {
        state = cell->step(select(x, 1, t), state);
        check_close(state.h.value(), xt::view(expected.output.value(), xt::all(), t), tolerance);
        BOOST_TEST(state.c.defined() == lstm);
      }
      check_close(state.h.value(), xt::view(expected.h_n.value(), 0), tolerance);
      if (lstm) check_close(state.c.value(), xt::view(expected.c_n.value(), 0), tolerance);

      const auto deep = nn::make_recurrent_layer<double>(kind, {.input_size = input, .hidden_size = hidden, .num_layers = 2});
      const nn::RnnOutput<double> whole = deep->run(x);
      const nn::RnnOutput<double> first = deep->run(slice(x, 1, 0, 1));
      const nn::RnnOutput<double> rest = deep->run(slice(x, 1, 1, static_cast<std::int64_t>(steps)), {}, first.final_state());
      check_close(rest.output.value(), xt::view(whole.output.value(), xt::all(), xt::range(1, steps)), tolerance);
      check_close(rest.h_n.value(), whole.h_n.value(), tolerance);
      BOOST_TEST(rest.c_n.defined() == lstm);
      if (lstm) check_close(rest.c_n.value(), whole.c_n.value(), tolerance);
    }
  }
}

template <class T, template <class> class Layer>
void sequence_parity(const std::string& name, nn::RnnNonlinearity nonlinearity = nn::RnnNonlinearity::tanh) {
  const safetensors::File file = fixture(name);
  Layer<T> layer({.input_size = 2,
                  .hidden_size = 2,
                  .num_layers = 2,
                  .bidirectional = true,
                  .nonlinearity = nonlinearity});
  load_parameters(layer, file);
  const Tensor<T> x(file.floats<T>("input"), true);
  const Tensor<T> h0(file.floats<T>("h0"), true);
  const bool lstm = file.contains("c0");
  const Tensor<T> c0 = lstm ? Tensor<T>(file.floats<T>("c0"), true) : Tensor<T>();
  const nn::RnnOutput<T> result = run(layer, x, lengths_of(file), h0, c0);
  const double tolerance = parity_tolerance<T>;
  check_close(result.output.value(), file.floats<T>("output"), tolerance);
  check_close(result.h_n.value(), file.floats<T>("h_n"), tolerance);
  Tensor<T> objective = fixture_objective(result.output, file) +
                        sum(result.h_n * Tensor<T>(file.floats<T>("h_n_weights")));
  if (lstm) {
    check_close(result.c_n.value(), file.floats<T>("c_n"), tolerance);
    objective = objective + sum(result.c_n * Tensor<T>(file.floats<T>("c_n_weights")));
  }
  objective.backward();
  check_close(x.grad(), file.floats<T>("grad.input"), tolerance);
  check_close(h0.grad(), file.floats<T>("grad.h0"), tolerance);
  if (lstm) check_close(c0.grad(), file.floats<T>("grad.c0"), tolerance);
  for (const auto& [parameter_name, parameter] : layer.named_parameters()) {
    BOOST_TEST_CONTEXT(name << " " << parameter_name) {
      check_close(parameter.grad(), file.floats<T>("grad." + parameter_name), tolerance);
    }
  }
}

template <class T, class Cell>
void cell_parity(const std::string& name, nn::RnnNonlinearity nonlinearity = nn::RnnNonlinearity::tanh) {
  const safetensors::File file = fixture(name);
  Cell cell({.input_size = 2, .hidden_size = 2, .nonlinearity = nonlinearity});
  load_parameters(cell, file);
  const Tensor<T> x(file.floats<T>("input"), true);
  const Tensor<T> h0(file.floats<T>("h0"), true);
  Tensor<T> objective;
  const double tolerance = parity_tolerance<T>;
  if constexpr (std::is_same_v<Cell, nn::LSTMCell<T>>) {
    const Tensor<T> c0(file.floats<T>("c0"), true);
    const auto [h, c] = cell.forward(x, h0, c0);
    check_close(h.value(), file.floats<T>("output"), tolerance);
    check_close(c.value(), file.floats<T>("c_next"), tolerance);
    (fixture_objective(h, file) + sum(c * Tensor<T>(file.floats<T>("c_next_weights")))).backward();
    check_close(c0.grad(), file.floats<T>("grad.c0"), tolerance);
  } else {
    const Tensor<T> h = cell.forward(x, h0);
    check_close(h.value(), file.floats<T>("output"), tolerance);
    fixture_objective(h, file).backward();
  }
  check_close(x.grad(), file.floats<T>("grad.input"), tolerance);
  check_close(h0.grad(), file.floats<T>("grad.h0"), tolerance);
  for (const auto& [parameter_name, parameter] : cell.named_parameters()) {
    BOOST_TEST_CONTEXT(name << " " << parameter_name) {
      check_close(parameter.grad(), file.floats<T>("grad." + parameter_name), tolerance);
    }
  }
}

template <class T>
void pytorch_parity() {
  sequence_parity<T, nn::LSTM>("rnn_lstm");
  sequence_parity<T, nn::GRU>("rnn_gru");
  sequence_parity<T, nn::RNN>("rnn_relu", nn::RnnNonlinearity::relu);
  cell_parity<T, nn::LSTMCell<T>>("rnn_lstm_cell");
  cell_parity<T, nn::GRUCell<T>>("rnn_gru_cell");
  cell_parity<T, nn::RNNCell<T>>("rnn_tanh_cell");
}

BOOST_AUTO_TEST_CASE(pytorch_parity_in_double) { pytorch_parity<double>(); }

BOOST_AUTO_TEST_CASE(pytorch_parity_in_float) { pytorch_parity<float>(); }

BOOST_AUTO_TEST_CASE(dropout_between_layers_only_in_training) {
  nn::GRU<double> gru({.input_size = 3, .hidden_size = 4, .num_layers = 2, .dropout = 0.5});
  const Tensor<double> x = random_tensor({2, 5, 3}, 50);
  manual_seed(7);
  const Array<double> first = gru.forward(x).output.value();
  const Array<double> second = gru.forward(x).output.value();
  BOOST_TEST(xt::any(xt::not_equal(first, second)));  // the generator moved on: other masks
  // Nothing is dropped after the last layer: no output is exactly 0.
  BOOST_TEST(xt::all(xt::not_equal(first, 0.0)));
  manual_seed(7);
  check_close(gru.forward(x).output.value(), first, 0.0);  // the same seed, the same masks

  gru.eval();
  const Array<double> evaluated = gru.forward(x).output.value();
  check_close(gru.forward(x).output.value(), evaluated, 0.0);
  BOOST_TEST(xt::any(xt::not_equal(evaluated, first)));

  // With one layer nothing lies between layers: the option is accepted and has no effect.
  nn::LSTM<double> single({.input_size = 3, .hidden_size = 4, .dropout = 0.5});
  const Array<double> training = single.forward(x).output.value();
  single.eval();
  check_close(single.forward(x).output.value(), training, 0.0);
}

BOOST_AUTO_TEST_CASE(inference_without_a_graph_gives_the_same_values) {
  nn::LSTM<double> lstm({.input_size = 2, .hidden_size = 3, .num_layers = 2, .bidirectional = true});
  nn::GRU<double> gru({.input_size = 2, .hidden_size = 3, .bidirectional = true});
  const Tensor<double> x = random_tensor({3, 6, 2}, 60);
  const Lengths lengths{4, 6, 1};
  const Tensor<double> recorded_lstm = all_results(lstm.forward(x, lengths));
  const Tensor<double> recorded_gru = all_results(gru.forward(x, lengths));
  BOOST_TEST(recorded_lstm.requires_grad());
  NoGradGuard no_grad;
  const Tensor<double> inferred_lstm = all_results(lstm.forward(x, lengths));
  BOOST_TEST(!inferred_lstm.requires_grad());
  check_close(inferred_lstm.value(), recorded_lstm.value(), 0.0);
  check_close(all_results(gru.forward(x, lengths)).value(), recorded_gru.value(), 0.0);
}

BOOST_AUTO_TEST_CASE(one_node_per_layer_and_direction_whatever_the_length) {
  nn::LSTM<float> lstm({.input_size = 2, .hidden_size = 3});
  const std::size_t before = live_node_count();
  std::vector<std::size_t> nodes;
  for (const std::size_t steps : {3, 40}) {
    const nn::RnnOutput<float> result = lstm.forward(random_as<float>({2, steps, 2}, 70));
    nodes.push_back(live_node_count() - before);
  }
  // linear (the input projection), the fused recurrence, and stacking h_n and c_n.
  BOOST_TEST(nodes[0] == 4u);
  BOOST_TEST(nodes[1] == 4u);
}

BOOST_AUTO_TEST_CASE(errors_name_the_layer_and_shapes) {
  nn::LSTM<float> lstm({.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true});
  const Tensor<float> x = Tensor<float>::zeros({2, 5, 3});
  check_error<shape_error>([&] { lstm.forward(Tensor<float>::zeros({2, 5, 2})); },
                           {"LSTM: x has shape [2, 5, 2]", "input_size = 3"});
  check_error<shape_error>([&] { lstm.forward(Tensor<float>::zeros({5, 3})); }, {"LSTM: x has shape [5, 3]"});
  check_error<shape_error>([&] { lstm.forward(x, {5, 2, 1}); }, {"LSTM: 3 lengths", "[2, 5, 3]"});
  check_error<shape_error>([&] { lstm.forward(x, {5, 6}); }, {"LSTM: length 6 of sequence 1", "[2, 5, 3]"});
  check_error<shape_error>([&] { lstm.forward(x, {}, Tensor<float>::zeros({2, 2, 4})); },
                           {"LSTM: h0 has shape [2, 2, 4]", "= [4, 2, 4]"});
  check_error<shape_error>([&] { lstm.forward(x, {}, {}, Tensor<float>::zeros({4, 2, 3})); },
                           {"LSTM: c0 has shape [4, 2, 3]", "= [4, 2, 4]"});
  nn::GRU<float> gru({.input_size = 3, .hidden_size = 4});
  check_error<shape_error>([&] { gru.forward(Tensor<float>::zeros({2, 5, 4})); }, {"GRU: x has shape [2, 5, 4]"});
  // Sequence-first: x is [time, batch, input_size], so [5, 2, 3] holds 2 sequences of 5 steps.
  nn::RNN<float> time_major({.input_size = 3, .hidden_size = 4, .batch_first = false});
  check_error<shape_error>([&] { time_major.forward(Tensor<float>::zeros({5, 2, 4})); },
                           {"RNN: x has shape [5, 2, 4]", "[time, batch, input_size = 3]"});
  check_error<shape_error>([&] { time_major.forward(Tensor<float>::zeros({5, 2, 3}), {5, 2, 1}); },
                           {"RNN: 3 lengths", "[5, 2, 3]", "batch 2"});
  check_error<shape_error>([&] { time_major.forward(Tensor<float>::zeros({5, 2, 3}), {5, 6}); },
                           {"RNN: length 6 of sequence 1", "[5, 2, 3]"});
  check_error<shape_error>([&] { time_major.forward(Tensor<float>::zeros({5, 2, 3}), {}, Tensor<float>::zeros({1, 5, 4})); },
                           {"RNN: h0 has shape [1, 5, 4]", "= [1, 2, 4]"});

  check_error<std::invalid_argument>([] { nn::LSTM<float>({.input_size = 3, .hidden_size = 0}); },
                                     {"LSTM: input_size (3) and hidden_size (0)"});
  check_error<std::invalid_argument>([] { nn::RNN<float>({.input_size = 0, .hidden_size = 2}); },
                                     {"RNN: input_size (0)"});
  check_error<std::invalid_argument>([] { nn::GRU<float>({.input_size = 3, .hidden_size = 2, .num_layers = 0}); },
                                     {"GRU: num_layers"});
  check_error<std::invalid_argument>(
      [] { nn::GRU<float>({.input_size = 3, .hidden_size = 2, .num_layers = 2, .dropout = 1.5}); },
      {"GRU: dropout = 1.5"});
  check_error<std::invalid_argument>([] { nn::GRUCell<float>({.input_size = 3}); }, {"GRUCell: input_size (3)"});

  nn::LSTMCell<float> cell({.input_size = 3, .hidden_size = 4});
  check_error<shape_error>([&] { cell.forward(Tensor<float>::zeros({2, 4})); },
                           {"LSTMCell: x has shape [2, 4]", "input_size = 3"});
  check_error<shape_error>([&] { cell.forward(Tensor<float>::zeros({2, 3}), Tensor<float>::zeros({3, 4})); },
                           {"LSTMCell: h has shape [3, 4]", "= [2, 4]"});
  nn::RNNCell<float> rnn_cell({.input_size = 3, .hidden_size = 4});
  check_error<shape_error>([&] { rnn_cell.forward(Tensor<float>::zeros({2, 3}), Tensor<float>::zeros({2, 5})); },
                           {"RNNCell: h has shape [2, 5]"});
}

// The cell kernels split the batch over threads: outputs and every gradient agree with one
// thread and with two (to rounding: the matrix products may sum in another order).
template <template <class> class Layer>
void check_same_results_with_two_threads() {
  const std::size_t batch = 64, steps = 6, hidden = 64;  // several rows per range, several ranges
  Lengths lengths(batch);
  for (std::size_t b = 0; b < batch; ++b) lengths[b] = 1 + b % steps;
  auto run_with = [&](int threads) {
    const xgrad::testing::ScopedThreads scoped(threads);
    manual_seed(5);
    Layer<float> layer({.input_size = 8, .hidden_size = hidden, .bidirectional = true});
    const Tensor<float> x = random_as<float>({batch, steps, 8}, 40, true);
    const Tensor<float> results = all_results(run(layer, x, lengths, Tensor<float>(), Tensor<float>()));
    sum(results * results).backward();
    std::vector<Array<float>> values{results.value(), x.grad()};
    for (const Tensor<float>& parameter : layer.parameters()) values.push_back(parameter.grad());
    return values;
  };
  const std::vector<Array<float>> one = run_with(1);
  const std::vector<Array<float>> two = run_with(2);
  BOOST_TEST_REQUIRE(one.size() == two.size());
  for (std::size_t i = 0; i < one.size(); ++i) BOOST_TEST(xt::allclose(one[i], two[i], 1e-5, 1e-6), "value " << i);
}

BOOST_AUTO_TEST_CASE(same_results_with_one_and_two_threads) {
  check_same_results_with_two_threads<nn::LSTM>();
  check_same_results_with_two_threads<nn::GRU>();
}
