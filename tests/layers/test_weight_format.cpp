// Module::set_weight_format: the weight matrices take the rounded values, Linear and the
// recurrent cells multiply in the format (and the float products of those values are what
// float32 gives back), training is refused, and the products refuse to record a graph.
#define BOOST_TEST_MODULE weight_format
#include "xgrad_test.h"

#include <cmath>

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
        // The format's products round x too: close to the float products of the same weights,
        // but not equal (they did run in the format). int8 rounds x to 1/254 of its largest value.
        const double tolerance = format == WeightFormat::int8 ? 0.05 : 0.02;
        BOOST_TEST(largest_difference(in_format, in_float) > 0.0);
        BOOST_TEST(largest_difference(in_format, in_float) < tolerance);
        BOOST_TEST(largest_difference(state, float_state) > 0.0);
        BOOST_TEST(largest_difference(state, float_state) < tolerance);
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
