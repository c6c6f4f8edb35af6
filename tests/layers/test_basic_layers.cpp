// Linear, Embedding, Dropout and LayerNorm: PyTorch defaults, gradients of inputs and
// parameters, and parity with PyTorch fixtures in double and float.
#define BOOST_TEST_MODULE basic_layers
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::fixture;
using xgrad::testing::fixture_objective;
using xgrad::testing::load_parameters;
using xgrad::testing::parity_tolerance;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

BOOST_AUTO_TEST_CASE(defaults_follow_pytorch) {
  manual_seed(1);
  nn::Linear<double> linear({.in_features = 400, .out_features = 300});
  const double bound = 1.0 / std::sqrt(400.0);
  BOOST_TEST(xt::amax(xt::abs(linear.weight.value()))() <= bound);
  BOOST_TEST(xt::amax(xt::abs(linear.weight.value()))() > 0.99 * bound);
  BOOST_TEST(xt::amax(xt::abs(linear.bias.value()))() <= bound);
  nn::Embedding<double> embedding({.num_embeddings = 500, .embedding_dim = 200, .padding_idx = -1});
  BOOST_TEST(embedding.options().padding_idx.value() == 499);
  BOOST_TEST(xt::all(xt::equal(xt::view(embedding.weight.value(), 499), 0.0)));
  BOOST_TEST(xt::mean(xt::square(embedding.weight.value()))() == 1.0, boost::test_tools::tolerance(0.02));
  nn::LayerNorm<double> norm({.normalized_shape = {6}});
  BOOST_TEST(xt::all(xt::equal(norm.weight.value(), 1.0)));
  BOOST_TEST(xt::all(xt::equal(norm.bias.value(), 0.0)));
  BOOST_CHECK_THROW(nn::Linear<float>({.in_features = 0, .out_features = 3}), std::invalid_argument);
  BOOST_CHECK_THROW(nn::Embedding<float>({.num_embeddings = 3, .embedding_dim = 2, .padding_idx = 3}),
                    std::invalid_argument);
  BOOST_CHECK_THROW(nn::Dropout<float>(1.5), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(gradients_of_inputs_and_parameters) {
  nn::Linear<double> linear({.in_features = 4, .out_features = 3});
  Tensor<double> x = random_tensor({2, 5, 4}, 1);
  GradcheckResult result = gradcheck([&](const Inputs& v) { return xgrad::testing::weighted_sum(linear(v[0])); }, {x},
                                     {.names = linear.named_parameters()});
  BOOST_TEST(result.passed, result.report);
  BOOST_TEST(result.checked == x.size() + 12 + 3);  // the input, the weight and the bias

  nn::LayerNorm<double> norm({.normalized_shape = {4}});
  xgrad::init::uniform(norm.weight, 0.5, 1.5);
  result = gradcheck([&](const Inputs& v) { return xgrad::testing::weighted_sum(norm(v[0])); }, {x},
                     {.names = norm.named_parameters()});
  BOOST_TEST(result.passed, result.report);

  // The padding row shapes the output but by design receives no gradient, so the finite
  // differences are taken over ids without it; the padding row is checked on its own.
  nn::Embedding<double> embedding({.num_embeddings = 6, .embedding_dim = 3, .padding_idx = 2});
  const Indices ids{{0, 3, 5}, {4, 4, 1}};
  result = gradcheck([&](const Inputs&) { return xgrad::testing::weighted_sum(embedding(ids)); }, {},
                     {.names = embedding.named_parameters()});
  BOOST_TEST(result.passed, result.report);
  sum(embedding(Indices{{0, 2, 5}, {2, 2, 1}})).backward();
  BOOST_TEST(xt::all(xt::equal(xt::view(embedding.weight.grad(), 2), 0.0)));
  BOOST_TEST(xt::all(xt::equal(xt::view(embedding.weight.grad(), 0), 1.0)));
}

BOOST_AUTO_TEST_CASE(embedding_from_a_matrix_frozen_or_not) {
  const Array<float> matrix{{1, 2}, {3, 4}, {5, 6}};
  nn::Embedding<float> frozen = nn::Embedding<float>::from_pretrained(matrix);
  check_close(frozen(Indices{2, 0}).value(), Array<float>{{5, 6}, {1, 2}});
  BOOST_TEST(!frozen.weight.requires_grad());
  BOOST_TEST(!frozen(Indices{1}).requires_grad());
  nn::Embedding<float> trainable = nn::Embedding<float>::from_pretrained(matrix, false);
  sum(trainable(Indices{1, 1})).backward();
  check_close(trainable.weight.grad(), Array<float>{{0, 0}, {2, 2}, {0, 0}});
  BOOST_CHECK_THROW(trainable(Indices{3}), index_error);
}

template <class T>
void linear_parity() {
  const safetensors::File file = fixture("linear");
  nn::Linear<T> layer({.in_features = 5, .out_features = 3});
  load_parameters(layer, file);
  Tensor<T> x(file.floats<T>("input"), true);
  Tensor<T> y = layer(x);
  const double tol = parity_tolerance<T>;
  check_close(y.value(), file.floats<T>("output"), tol);
  fixture_objective(y, file).backward();
  check_close(x.grad(), file.floats<T>("grad.input"), tol);
  check_close(layer.weight.grad(), file.floats<T>("grad.weight"), tol);
  check_close(layer.bias.grad(), file.floats<T>("grad.bias"), tol);
}

template <class T>
void embedding_parity() {
  const safetensors::File file = fixture("embedding");
  nn::Embedding<T> layer({.num_embeddings = 7, .embedding_dim = 4, .padding_idx = 0});
  load_parameters(layer, file);
  Tensor<T> y = layer(file.integers("ids"));
  check_close(y.value(), file.floats<T>("output"), parity_tolerance<T>);
  fixture_objective(y, file).backward();
  check_close(layer.weight.grad(), file.floats<T>("grad.weight"), parity_tolerance<T>);
}

template <class T>
void layer_norm_parity() {
  const safetensors::File file = fixture("layer_norm");
  nn::LayerNorm<T> layer({.normalized_shape = {6}});
  load_parameters(layer, file);
  Tensor<T> x(file.floats<T>("input"), true);
  Tensor<T> y = layer(x);
  const double tol = parity_tolerance<T>;
  check_close(y.value(), file.floats<T>("output"), tol);
  fixture_objective(y, file).backward();
  check_close(x.grad(), file.floats<T>("grad.input"), tol);
  check_close(layer.weight.grad(), file.floats<T>("grad.weight"), tol);
  check_close(layer.bias.grad(), file.floats<T>("grad.bias"), tol);
}

template <class T>
void cross_entropy_parity() {
  const safetensors::File file = fixture("cross_entropy");
  Tensor<T> logits(file.floats<T>("logits"), true);
  Tensor<T> loss = cross_entropy(logits, file.integers("targets"), {.ignore_index = -100, .label_smoothing = 0.1});
  check_close(loss.value(), file.floats<T>("loss"), parity_tolerance<T>);
  loss.backward();
  check_close(logits.grad(), file.floats<T>("grad.logits"), parity_tolerance<T>);
}

BOOST_AUTO_TEST_CASE(pytorch_parity_in_double) {
  linear_parity<double>();
  embedding_parity<double>();
  layer_norm_parity<double>();
  cross_entropy_parity<double>();
}

BOOST_AUTO_TEST_CASE(pytorch_parity_in_float) {
  linear_parity<float>();
  embedding_parity<float>();
  layer_norm_parity<float>();
  cross_entropy_parity<float>();
}
