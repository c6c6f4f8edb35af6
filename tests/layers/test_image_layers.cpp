// Conv2d, the pooling layers, BatchNorm2d, PatchEmbedding and the 2-D positional encodings:
// PyTorch's names and defaults, gradients of inputs and parameters, and parity with PyTorch
// fixtures loaded through the strict state-dict loader, in double and float.
#define BOOST_TEST_MODULE image_layers
#include <boost/mpl/list.hpp>

#include "xgrad/layers/image_regions.h"
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::error_message;
using xgrad::testing::fixture;
using xgrad::testing::fixture_objective;
using xgrad::testing::parity_tolerance;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;
using Precisions = boost::mpl::list<float, double>;

namespace {

std::vector<std::string> names_of(const NamedTensors<double>& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : tensors) names.push_back(name);
  return names;
}

void check_layer_gradients(const nn::Module<double>& layer, const std::function<Tensor<double>(const Tensor<double>&)>& f,
                           const Tensor<double>& x) {
  const GradcheckResult result = gradcheck([&](const Inputs& v) { return xgrad::testing::weighted_sum(f(v[0])); }, {x},
                                           {.names = layer.named_parameters()});
  BOOST_TEST(result.passed, result.report);
}

// Compares `actual` with the float64 fixture's `expected`, where each element is a sum of at
// most `terms` products whose magnitudes add up to the same element of `magnitudes`: in float
// it may be off by terms * eps * magnitude from the sum's rounding and by 2 * eps * magnitude
// from rounding the operands to float (sum_error_bound); in double by 1e-6 relative.
template <class T>
void check_within_rounding(const Array<T>& actual, const Array<double>& expected, const Array<double>& magnitudes,
                           std::size_t terms) {
  BOOST_TEST_REQUIRE(to_string(Shape(actual.shape().begin(), actual.shape().end())) ==
                     to_string(Shape(expected.shape().begin(), expected.shape().end())));
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(double(actual.data()[i]) - expected.data()[i]);
    const double bound = std::is_same_v<T, double>
                             ? parity_tolerance<double> * (1 + std::abs(expected.data()[i]))
                             : xgrad::testing::sum_error_bound<float>(terms + 2, magnitudes.data()[i]);
    BOOST_TEST(error <= bound, "element " << i << ": " << actual.data()[i] << " != expected " << expected.data()[i]
                                          << " (bound " << bound << ")");
    if (error > bound) return;
  }
}

// The magnitudes of the terms each value of a convolution's fixture sums: the same convolution
// of |input|, |weight| and |bias| (the output's), backpropagated from |output weights|, whose
// gradients sum |w| |dy| (the input's), |x| |dy| (the weight's) and |dy| (the bias's).
struct ConvolutionMagnitudes {
  Array<double> output, input, weight, bias;
};
ConvolutionMagnitudes convolution_magnitudes(const safetensors::File& file, const std::string& prefix,
                                             const std::function<Tensor<double>(const Tensor<double>&, const Tensor<double>&,
                                                                                const Tensor<double>&)>& f) {
  const auto absolute = [&](const std::string& name) {
    return Tensor<double>(xt::abs(file.floats<double>(name)), true);
  };
  Tensor<double> x = absolute("input"), w = absolute(prefix + "weight");
  Tensor<double> b = file.contains(prefix + "bias") ? absolute(prefix + "bias") : Tensor<double>();
  Tensor<double> y = f(x, w, b);
  y.backward(xt::abs(file.floats<double>("output_weights")));
  return {y.value(), x.grad(), w.grad(), b.defined() ? b.grad() : Array<double>()};
}

}  // namespace

BOOST_AUTO_TEST_CASE(names_and_defaults_follow_pytorch) {
  manual_seed(3);
  nn::Conv2d<double> conv({.in_channels = 16, .out_channels = 64, .kernel_size = {3, 5}});
  const double bound = 1.0 / std::sqrt(16.0 * 3 * 5);  // kaiming_uniform(a = sqrt(5)) is U(+-1/sqrt(fan_in))
  BOOST_TEST(xt::amax(xt::abs(conv.weight.value()))() <= bound);
  BOOST_TEST(xt::amax(xt::abs(conv.weight.value()))() > 0.99 * bound);
  BOOST_TEST(xt::amax(xt::abs(conv.bias.value()))() <= bound);
  BOOST_TEST(names_of(conv.state_dict()) == (std::vector<std::string>{"weight", "bias"}));
  BOOST_TEST(conv.weight.shape() == (Shape{64, 16, 3, 5}));
  BOOST_TEST(!nn::Conv2d<double>({.in_channels = 1, .out_channels = 1, .bias = false}).bias.defined());

  nn::BatchNorm2d<double> norm({.num_features = 3});
  BOOST_TEST(names_of(norm.named_parameters()) == (std::vector<std::string>{"weight", "bias"}));
  BOOST_TEST(names_of(norm.named_buffers()) ==
             (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  BOOST_TEST(names_of(norm.state_dict()).size() == 5u);
  BOOST_TEST(xt::all(xt::equal(norm.running_var.value(), 1.0)));
  BOOST_TEST(names_of(nn::BatchNorm2d<double>({.num_features = 3, .affine = false, .track_running_stats = false})
                          .state_dict())
                 .empty());

  nn::PatchEmbedding<double> patches({.in_channels = 3, .embed_dim = 8, .patch_size = 4});
  BOOST_TEST(names_of(patches.state_dict()) == (std::vector<std::string>{"proj.weight", "proj.bias"}));
  BOOST_TEST((patches.grid_size(28, 12) == Size2d{7, 3}));
  nn::LearnedPositionalEncoding2d<double> table({.height = 2, .width = 3, .dim = 4});
  BOOST_TEST(names_of(table.state_dict()) == (std::vector<std::string>{"pos_embed"}));
  nn::LearnedPositionalEncoding2d<double> per_axis({.height = 2, .width = 3, .dim = 4, .per_axis = true});
  BOOST_TEST(names_of(per_axis.state_dict()) == (std::vector<std::string>{"row_embed", "col_embed"}));
  BOOST_TEST(xt::amax(xt::abs(table.pos_embed.value()))() < 0.02 * 6);
}

BOOST_AUTO_TEST_CASE(options_are_checked) {
  BOOST_TEST(error_message<std::invalid_argument>([] { nn::Conv2d<float>({.in_channels = 0, .out_channels = 2}); }) ==
             "Conv2d: in_channels (0), out_channels (2) and kernel_size (3, 3) must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([] { nn::BatchNorm2d<float>({.num_features = 0}); }) ==
             "BatchNorm2d: num_features must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([] { nn::BatchNorm2d<float>({.num_features = 2, .momentum = 1.5}); }) ==
             "BatchNorm2d: momentum = 1.5 must lie in [0, 1]");
  BOOST_TEST(error_message<std::invalid_argument>([] { nn::BatchNorm2d<float>({.num_features = 2, .eps = 0}); }) ==
             "BatchNorm2d: eps = 0 must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([] { nn::SinusoidalPositionalEncoding2d<float>({.height = 2, .width = 2, .dim = 6}); }) ==
             "sinusoidal_positions_2d: dim = 6 must be a positive multiple of 4 (a sine and a cosine per frequency, "
             "for the row and for the column)");
  BOOST_TEST(error_message<std::invalid_argument>([] { nn::LearnedPositionalEncoding2d<float>({.height = 0, .width = 2, .dim = 4}); }) ==
             "LearnedPositionalEncoding2d: height (0), width (2) and dim (4) must be positive");
}

BOOST_AUTO_TEST_CASE(shape_errors_name_the_layer_and_the_shapes) {
  nn::PatchEmbedding<float> patches({.in_channels = 1, .embed_dim = 4, .patch_size = {2, 3}});
  BOOST_TEST(error_message<shape_error>([&] { patches(Tensor<float>::zeros({1, 1, 4, 4})); }) ==
             "PatchEmbedding: images of shape [1, 1, 4, 4] are not [B, C, H, W] with H and W multiples of the patch "
             "size (2, 3)");
  nn::BatchNorm2d<float> norm({.num_features = 2});
  BOOST_TEST(error_message<shape_error>([&] { norm(Tensor<float>::zeros({4, 2, 3})); }) ==
             "BatchNorm2d: input of shape [4, 2, 3] is not [B, C, H, W]");
  nn::SinusoidalPositionalEncoding2d<float> positions({.height = 2, .width = 3, .dim = 4});
  BOOST_TEST(error_message<shape_error>([&] { positions(Tensor<float>::zeros({1, 5, 4})); }) ==
             "SinusoidalPositionalEncoding2d: input of shape [1, 5, 4] does not fit encodings of shape [6, 4] "
             "(expected [B, height * width, dim])");
  nn::LearnedPositionalEncoding2d<float> learned({.height = 2, .width = 3, .dim = 4});
  BOOST_CHECK_THROW(learned(Tensor<float>::zeros({6, 4})), shape_error);
}

BOOST_AUTO_TEST_CASE(sinusoidal_encodings_follow_the_stated_convention) {
  // dim 8: each half has frequencies 1 and 10000^(-2/4) = 1/100. Cell (row 1, column 2) of a 2 x 3 grid is region 5.
  const Array<double> table = nn::sinusoidal_positions_2d<double>(2, 3, 8);
  BOOST_TEST(table.shape() == (Shape{6, 8}), boost::test_tools::per_element());
  check_close(xt::view(table, 5),
              Array<double>{std::sin(1.0), std::cos(1.0), std::sin(0.01), std::cos(0.01), std::sin(2.0),
                            std::cos(2.0), std::sin(0.02), std::cos(0.02)});
  check_close(xt::view(table, 0), Array<double>{0, 1, 0, 1, 0, 1, 0, 1});
  nn::SinusoidalPositionalEncoding2d<double> layer({.height = 2, .width = 3, .dim = 8});
  BOOST_TEST(layer.state_dict().empty());
  const Tensor<double> x = random_tensor({2, 6, 8}, 1);
  check_close(layer(x).value(), x.value() + table);
}

BOOST_AUTO_TEST_CASE(gradients_of_inputs_and_parameters) {
  nn::Conv2d<double> conv({.in_channels = 2, .out_channels = 3, .kernel_size = {2, 3}, .stride = {2, 1},
                           .padding = {1, 2}, .dilation = {1, 2}});
  const Tensor<double> images = random_tensor({2, 2, 5, 4}, 2);
  check_layer_gradients(conv, [&](const Tensor<double>& x) { return conv(x); }, images);

  nn::BatchNorm2d<double> norm({.num_features = 2});
  xgrad::init::uniform(norm.weight, 0.5, 1.5);
  xgrad::init::uniform(norm.bias, -0.5, 0.5);
  check_layer_gradients(norm, [&](const Tensor<double>& x) { return norm(x); }, images);
  norm.eval();
  check_layer_gradients(norm, [&](const Tensor<double>& x) { return norm(x); }, images);

  nn::PatchEmbedding<double> patches({.in_channels = 2, .embed_dim = 3, .patch_size = {1, 2}});
  check_layer_gradients(patches, [&](const Tensor<double>& x) { return patches(x); }, images);

  const Tensor<double> regions = random_tensor({2, 6, 4}, 3);
  nn::LearnedPositionalEncoding2d<double> table({.height = 2, .width = 3, .dim = 4});
  check_layer_gradients(table, [&](const Tensor<double>& x) { return table(x); }, regions);
  nn::LearnedPositionalEncoding2d<double> per_axis({.height = 2, .width = 3, .dim = 4, .per_axis = true});
  check_layer_gradients(per_axis, [&](const Tensor<double>& x) { return per_axis(x); }, regions);
  nn::SinusoidalPositionalEncoding2d<double> fixed({.height = 2, .width = 3, .dim = 4});
  check_layer_gradients(fixed, [&](const Tensor<double>& x) { return fixed(x); }, regions);

  nn::MaxPool2d<double> max_pool({.kernel_size = 2, .stride = Size2d{1}});
  check_layer_gradients(max_pool, [&](const Tensor<double>& x) { return max_pool(x); }, images);
  nn::AvgPool2d<double> avg_pool({.kernel_size = 3, .padding = 1});
  check_layer_gradients(avg_pool, [&](const Tensor<double>& x) { return avg_pool(x); }, images);
}

BOOST_AUTO_TEST_CASE(per_axis_tables_sum_a_row_and_a_column) {
  nn::LearnedPositionalEncoding2d<double> per_axis({.height = 2, .width = 3, .dim = 4, .per_axis = true});
  const Array<double> encodings = per_axis.encodings().value();
  // Region 4 is row 1, column 1.
  check_close(xt::view(encodings, 4),
              xt::view(per_axis.row_embed.value(), 1) + xt::view(per_axis.col_embed.value(), 1));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(conv2d_matches_pytorch, T, Precisions) {
  struct Case {
    std::string name;
    nn::Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {"conv2d_plain", {.in_channels = 2, .out_channels = 3, .kernel_size = 3}},
      {"conv2d_strided", {.in_channels = 3, .out_channels = 4, .kernel_size = {3, 2}, .stride = {2, 1},
                          .padding = {1, 2}, .dilation = {1, 2}}},
      {"conv2d_pointwise", {.in_channels = 3, .out_channels = 2, .kernel_size = 1, .bias = false}},
  };
  for (const Case& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      const safetensors::File file = fixture(c.name);
      nn::Conv2d<T> layer(c.options);
      nn::load_state_dict(layer, file, "state.");
      Tensor<T> x(file.floats<T>("input"), true);
      Tensor<T> y = layer(x);
      fixture_objective(y, file).backward();
      const nn::Conv2d<double> reference(c.options);
      const ConvolutionMagnitudes magnitudes =
          convolution_magnitudes(file, "state.", [&](const Tensor<double>& a, const Tensor<double>& w, const Tensor<double>& b) {
            return conv2d(a, w, b, {.stride = c.options.stride, .padding = c.options.padding, .dilation = c.options.dilation});
          });
      // The longest sum: the weight gradient's, over the batch and the output positions.
      const std::size_t terms = std::max<std::size_t>(y.size() / y.shape()[1], x.shape()[1] * layer.weight.size());
      check_within_rounding<T>(y.value(), file.floats<double>("output"), magnitudes.output, terms);
      check_within_rounding<T>(x.grad(), file.floats<double>("grad.input"), magnitudes.input, terms);
      check_within_rounding<T>(layer.weight.grad(), file.floats<double>("grad.weight"), magnitudes.weight, terms);
      if (c.options.bias) {
        check_within_rounding<T>(layer.bias.grad(), file.floats<double>("grad.bias"), magnitudes.bias, terms);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(patch_embedding_matches_pytorch, T, Precisions) {
  const safetensors::File file = fixture("patch_embedding");
  nn::PatchEmbedding<T> layer({.in_channels = 2, .embed_dim = 5, .patch_size = {2, 3}});
  nn::load_state_dict(layer, file, "state.");
  Tensor<T> x(file.floats<T>("input"), true);
  Tensor<T> y = layer(x);
  BOOST_TEST(y.shape() == (Shape{2, 9, 5}), boost::test_tools::per_element());
  fixture_objective(y, file).backward();
  const ConvolutionMagnitudes magnitudes =
      convolution_magnitudes(file, "state.proj.", [](const Tensor<double>& a, const Tensor<double>& w, const Tensor<double>& b) {
        return transpose(reshape(conv2d(a, w, b, {.stride = Size2d{2, 3}}), {2, 5, 9}), 1, 2);
      });
  const std::size_t terms = 2 * 9;  // the weight gradient's sum, over the batch and the regions
  check_within_rounding<T>(y.value(), file.floats<double>("output"), magnitudes.output, terms);
  check_within_rounding<T>(x.grad(), file.floats<double>("grad.input"), magnitudes.input, terms);
  check_within_rounding<T>(layer.proj.weight.grad(), file.floats<double>("grad.proj.weight"), magnitudes.weight, terms);
  check_within_rounding<T>(layer.proj.bias.grad(), file.floats<double>("grad.proj.bias"), magnitudes.bias, terms);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(batch_norm_matches_pytorch_in_training_and_evaluation, T, Precisions) {
  // xgrad sums the statistics and the gradients' channel sums in double, so the float results
  // carry only the rounding of a few operations on values below 10 (the inputs, normalised
  // values times weights below 1.5) and of the inputs themselves: well inside parity_tolerance.
  const double tolerance = parity_tolerance<T>;
  const safetensors::File file = fixture("batch_norm2d");
  nn::BatchNorm2d<T> layer({.num_features = 3});
  nn::load_state_dict(layer, file, "state.");
  BOOST_TEST(layer.num_batches_tracked.value()() == T(4));

  Tensor<T> x(file.floats<T>("train.input"), true);
  Tensor<T> y = layer(x);
  check_close(y.value(), file.floats<T>("train.output"), tolerance);
  sum(y * Tensor<T>(file.floats<T>("train.output_weights"))).backward();
  check_close(x.grad(), file.floats<T>("train.grad.input"), tolerance);
  check_close(layer.weight.grad(), file.floats<T>("train.grad.weight"), tolerance);
  check_close(layer.bias.grad(), file.floats<T>("train.grad.bias"), tolerance);
  check_close(layer.running_mean.value(), file.floats<T>("train.after.running_mean"), tolerance);
  check_close(layer.running_var.value(), file.floats<T>("train.after.running_var"), tolerance);
  BOOST_TEST(layer.num_batches_tracked.value()() == T(5));

  layer.eval();
  layer.zero_grad();
  Tensor<T> x_eval(file.floats<T>("eval.input"), true);
  Tensor<T> y_eval = layer(x_eval);
  check_close(y_eval.value(), file.floats<T>("eval.output"), tolerance);
  sum(y_eval * Tensor<T>(file.floats<T>("eval.output_weights"))).backward();
  check_close(x_eval.grad(), file.floats<T>("eval.grad.input"), tolerance);
  check_close(layer.weight.grad(), file.floats<T>("eval.grad.weight"), tolerance);
  check_close(layer.bias.grad(), file.floats<T>("eval.grad.bias"), tolerance);
  // Evaluation leaves the running statistics as training left them.
  check_close(layer.running_mean.value(), file.floats<T>("train.after.running_mean"), tolerance);
  BOOST_TEST(layer.num_batches_tracked.value()() == T(5));
}

BOOST_AUTO_TEST_CASE(batch_norm_without_momentum_averages_every_batch) {
  // PyTorch's momentum=None: the running mean is the plain average of the batch means so far.
  nn::BatchNorm2d<double> norm({.num_features = 1, .momentum = std::nullopt, .affine = false});
  norm(Tensor<double>::from({1, 3}, {2, 1, 1, 1}));  // mean 2
  norm(Tensor<double>::from({5, 7, 9, 11}, {1, 1, 2, 2}));  // mean 8
  norm(Tensor<double>::from({-1, -3}, {1, 1, 1, 2}));  // mean -2
  check_close(norm.running_mean.value(), Array<double>{(2.0 + 8.0 - 2.0) / 3});
  BOOST_TEST(norm.num_batches_tracked.value()() == 3.0);
  // Without running statistics, evaluation normalises with the batch's own.
  nn::BatchNorm2d<double> untracked({.num_features = 1, .affine = false, .track_running_stats = false});
  untracked.eval();
  const Tensor<double> y = untracked(Tensor<double>::from({1, 3}, {2, 1, 1, 1}));
  check_close(y.value(), xgrad::testing::shaped<Array<double>>({2, 1, 1, 1}, {-1 / std::sqrt(1 + 1e-5), 1 / std::sqrt(1 + 1e-5)}));
}

BOOST_AUTO_TEST_CASE(state_dict_round_trip_keeps_the_running_statistics) {
  xgrad::testing::TempDir dir;
  nn::BatchNorm2d<float> trained({.num_features = 2});
  trained(Tensor<float>(random_tensor({4, 2, 3, 3}, 4, -1.0, 1.0, false).value() * 3.0 + 1.0).to<float>());
  nn::save_state_dict(trained, dir.file("norm.safetensors"));
  nn::BatchNorm2d<float> loaded({.num_features = 2});
  nn::load_state_dict(loaded, dir.file("norm.safetensors"));
  BOOST_TEST(loaded.running_mean.value() == trained.running_mean.value());
  BOOST_TEST(loaded.running_var.value() == trained.running_var.value());
  BOOST_TEST(loaded.num_batches_tracked.value()() == 1.0f);
  trained.eval();
  loaded.eval();
  const Tensor<float> x = random_tensor({2, 2, 3, 3}, 5, -1.0, 1.0, false).to<float>();
  BOOST_TEST(loaded(x).value() == trained(x).value());
}

BOOST_AUTO_TEST_CASE(regions_of_a_grid_are_row_major) {
  // grid[b, d, r, c] = 1000 b + 100 d + 10 r + c, so that every value says where it came from.
  Array<double> grid = Array<double>::from_shape({2, 3, 2, 4});
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t d = 0; d < 3; ++d)
      for (std::size_t r = 0; r < 2; ++r)
        for (std::size_t c = 0; c < 4; ++c) grid(b, d, r, c) = 1000.0 * b + 100.0 * d + 10.0 * r + c;
  const Tensor<double> regions = nn::regions_of_grid(Tensor<double>(grid));
  BOOST_TEST_REQUIRE((regions.shape() == Shape{2, 8, 3}));
  BOOST_TEST(regions.value()(1, 6, 2) == 1000.0 + 200.0 + 10.0 + 2.0);  // region 6 is row 1, column 2
  BOOST_TEST(regions.value()(0, 3, 1) == 100.0 + 3.0);
  const std::string refused = error_message<shape_error>([] { nn::regions_of_grid(Tensor<double>::zeros({2, 3, 4})); });
  BOOST_TEST(refused.find("a grid of shape [2, 3, 4]; expected [B, D, rows, columns]") != std::string::npos, refused);
}
