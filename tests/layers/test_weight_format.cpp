// Module::set_weight_format: the weight matrices take the rounded values, Linear and the
// recurrent cells multiply in the format (and the float products of those values are what
// float32 gives back), training is refused, and the products refuse to record a graph.
#define BOOST_TEST_MODULE weight_format
#include "xgrad_test.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace xgrad;

namespace {

// A layer and a cell of each kind, as a decoder uses them.
struct Decoder : nn::Module<float> {
  nn::Linear<float> output{{.in_features = 70, .out_features = 33}};
  std::unique_ptr<nn::RecurrentCell<float>> cell;
  nn::Embedding<float> embedding{{.num_embeddings = 12, .embedding_dim = 70}};
  explicit Decoder(nn::CellKind kind) : cell(nn::make_recurrent_cell<float>(kind, {.input_size = 70, .hidden_size = 40})) {
    register_module("output", output);
    register_module("cell", *cell);
    register_module("embedding", embedding);
  }
};

Tensor<float> values(Shape shape, std::uint64_t seed) {
  Generator generator(seed);
  Array<float> result = Array<float>::from_shape(shape);
  for (float& v : result) v = static_cast<float>(generator.uniform(-1.0, 1.0));
  return Tensor<float>(result);
}

double largest_difference(const Tensor<float>& a, const Tensor<float>& b) {
  return xt::amax(xt::abs(a.value() - b.value()))();
}

// How far a product row sum_l x_l w_l, with w already in the format, may move when x is
// rounded as the format rounds it: int8 moves each x_l by at most half its row's step
// max|x| / 127, bf16 by at most 2^-8 |x_l|; both sides' float sums and the int8 scaling add
// at most 4 (K + 2) eps sum |x_l w_l|.
double product_error(const float* x, const float* w, std::size_t k, WeightFormat format) {
  double largest = 0, weights = 0, magnitude = 0;
  for (std::size_t l = 0; l < k; ++l) {
    largest = std::max(largest, double(std::abs(x[l])));
    weights += std::abs(w[l]);
    magnitude += std::abs(double(x[l]) * w[l]);
  }
  const double rounding = format == WeightFormat::int8 ? weights * largest / 127 / 2 : std::ldexp(magnitude, -8);
  return rounding + 4 * double(k + 2) * std::numeric_limits<float>::epsilon() * magnitude;
}

// The largest amount by which |y_format - y_float| of a product exceeds product_error (at
// most 0 when every element is within its bound): y [m, n] = x [m, k] W^T [k, n].
double beyond_product_bound(const Tensor<float>& in_format, const Tensor<float>& in_float, const Tensor<float>& x,
                            const Tensor<float>& weight, WeightFormat format) {
  const std::size_t m = x.shape()[0], k = x.shape()[1], n = weight.shape()[0];
  double worst = -1;
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const double bound = product_error(x.data() + i * k, weight.data() + j * k, k, format);
      worst = std::max(worst, std::abs(double(in_format.data()[i * n + j]) - in_float.data()[i * n + j]) - bound);
    }
  }
  return worst;
}

// The same for a cell step's h' from x and h: with delta the largest error of a gate's
// pre-activation (its input product's and its hidden product's bounds together), every
// cell's h' moves by at most (3 + A / 4) delta, A bounding |W_hn h + b_hn|: the RNN's
// tanh by delta; the LSTM's o tanh(f c + i g) by (1/4 + (|c| + |g|) / 4 + 1) delta <= 1.75
// delta for |c| <= 1; the GRU's (1 - z) n + z h by |n - h| / 4 delta (<= delta / 2) for z
// plus, for n = tanh(a_in + r a_hn), delta (a_in) + delta (a_hn) + |a_hn| / 4 delta (r).
double beyond_cell_bound(const Tensor<float>& in_format, const Tensor<float>& in_float, const Tensor<float>& x,
                         const Tensor<float>& h, const nn::Module<float>& cell, WeightFormat format) {
  Tensor<float> w_ih, w_hh, b_hh;
  for (const auto& [name, parameter] : cell.named_parameters()) {
    if (name == "weight_ih") w_ih = parameter;
    if (name == "weight_hh") w_hh = parameter;
    if (name == "bias_hh") b_hh = parameter;
  }
  const std::size_t m = x.shape()[0], k = x.shape()[1], hidden = h.shape()[1], rows = w_ih.shape()[0];
  double worst = -1;
  for (std::size_t i = 0; i < m; ++i) {
    const float* hi = h.data() + i * hidden;
    const double largest_h = xt::amax(xt::abs(xt::view(h.value(), i)))();
    double delta = 0, a = 0;
    for (std::size_t g = 0; g < rows; ++g) {
      const float* wg = w_hh.data() + g * hidden;
      delta = std::max(delta, product_error(x.data() + i * k, w_ih.data() + g * k, k, format) +
                                  product_error(hi, wg, hidden, format));
      double row = 0;
      for (std::size_t l = 0; l < hidden; ++l) row += std::abs(wg[l]);
      a = std::max(a, row * largest_h + std::abs(b_hh.data()[g]));
    }
    for (std::size_t j = 0; j < hidden; ++j) {
      const double difference = std::abs(double(in_format.data()[i * hidden + j]) - in_float.data()[i * hidden + j]);
      worst = std::max(worst, difference - (3 + a / 4) * delta);
    }
  }
  return worst;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_weights_take_the_formats_values_and_the_products_run_in_the_format) {
  for (const WeightFormat format : {WeightFormat::int8, WeightFormat::bf16}) {
    for (const nn::CellKind kind : {nn::CellKind::gru, nn::CellKind::lstm, nn::CellKind::rnn}) {
      BOOST_TEST_CONTEXT(weight_format_name(format) << ", " << nn::to_string(kind)) {
        manual_seed(3);
        Decoder decoder(kind);
        const Array<float> float_weight = decoder.output.weight.value();
        const Array<float> float_bias = decoder.output.bias.value();
        decoder.set_weight_format(format);
        BOOST_TEST(!decoder.is_training());
        BOOST_TEST(weight_format_name(decoder.cell->weight_format()) == weight_format_name(format));
        // Every matrix holds its rounded values; vectors (biases) are left alone.
        for (const auto& [name, parameter] : decoder.named_parameters()) {
          BOOST_TEST_CONTEXT(name) {
            if (parameter.dim() == 2) BOOST_TEST((QuantizedMatrix(parameter.value(), format).dequantized() == parameter.value()));
          }
        }
        BOOST_TEST((decoder.output.bias.value() == float_bias));
        BOOST_TEST(largest_difference(decoder.output.weight, Tensor<float>(float_weight)) > 0.0);

        const NoGradGuard no_grad;
        const Tensor<float> x = values({3, 70}, 5), h = values({3, 40}, 6);
        const Tensor<float> in_format = decoder.output(x);
        BOOST_TEST((in_format.value() == linear(x, QuantizedMatrix(float_weight, format), decoder.output.bias).value()));
        const Tensor<float> state = decoder.cell->step(x, {.h = h, .c = h}).h;

        decoder.set_weight_format(WeightFormat::float32);
        const Tensor<float> in_float = decoder.output(x);
        BOOST_TEST((in_float.value() == linear(x, decoder.output.weight, decoder.output.bias).value()));
        const Tensor<float> float_state = decoder.cell->step(x, {.h = h, .c = h}).h;
        // The format's products round x too: within the bounds that rounding allows of the float
        // products of the same weights, but not equal (they did run in the format).
        BOOST_TEST(largest_difference(in_format, in_float) > 0.0);
        BOOST_TEST(beyond_product_bound(in_format, in_float, x, decoder.output.weight, format) <= 0.0);
        BOOST_TEST(largest_difference(state, float_state) > 0.0);
        BOOST_TEST(beyond_cell_bound(state, float_state, x, h, *decoder.cell, format) <= 0.0);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_module_in_another_format_refuses_training_and_its_products_refuse_to_record) {
  manual_seed(4);
  Decoder decoder(nn::CellKind::gru);
  decoder.set_weight_format(WeightFormat::int8);
  BOOST_CHECK_THROW(decoder.train(), std::logic_error);
  const Tensor<float> x(values({2, 70}, 7).value(), true);
  BOOST_CHECK_THROW(decoder.output(x), std::logic_error);
  BOOST_CHECK_THROW(decoder.cell->step(x, {}), std::logic_error);
  decoder.set_weight_format(WeightFormat::float32);
  decoder.train();
  BOOST_TEST(decoder.is_training());
  nn::Linear<double> in_double({.in_features = 2, .out_features = 2});
  BOOST_CHECK_THROW(in_double.set_weight_format(WeightFormat::int8), std::invalid_argument);
}
