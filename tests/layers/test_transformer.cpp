// Transformer layers and positional encodings: PyTorch parity of the encoder layer, the
// decoder layer and nn.Transformer (state_dicts loaded with the strict loader), gradients of
// inputs and parameters, masks that leave no NaN, dropout only in training, cached
// incremental decoding against the whole decoder (and after selecting rows), the
// sequence-first layout, and error messages.
#define BOOST_TEST_MODULE transformer
#include "xgrad_test.h"

#include <functional>

#include "xgrad/layers/positional_encoding.h"
#include "xgrad/layers/transformer.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::error_message;
using xgrad::testing::fixture;
using xgrad::testing::fixture_objective;
using xgrad::testing::random_tensor;
using xgrad::testing::sum_error_bound;
using xgrad::testing::weighted_sum;
using Inputs = std::vector<Tensor<double>>;

namespace {

// The float tolerance against PyTorch's float64. The longest sums in these fixtures are the
// weight gradients of the 2+2-layer Transformer: each entry of a [12, 8] weight's gradient
// sums B * T = 10 rows, each row a product of the output gradient through up to 8 residual
// blocks (attention: a 12-term dot product of 4-term head rows, softmax over 5 keys; LayerNorm
// over 8 features; feed-forward over 12), so at most 10 * (12 + 5 + 8 + 12) < 512 rounded
// terms in one chain; with |terms| summing to at most 1 + |value| (inputs, weights and output
// weights are O(1)): sum_error_bound<float>(512, 2), 1.2e-4 relative to 1 + |expected|. It is
// also the "1e-4 in float" of issue 20.
template <class T>
constexpr double transformer_tolerance = std::is_same_v<T, double> ? 1e-6 : sum_error_bound<float>(512, 2);

Mask fixture_mask(const safetensors::File& file, const std::string& name) {
  return xt::not_equal(file.integers(name), 0);
}

bool metadata_flag(const safetensors::File& file, const std::string& key) { return file.metadata().at(key) == "True"; }

nn::TransformerLayerOptions fixture_options(const safetensors::File& file) {
  const auto& metadata = file.metadata();
  return {.d_model = std::stoul(metadata.at("d_model")),
          .nhead = std::stoul(metadata.at("nhead")),
          .dim_feedforward = std::stoul(metadata.at("dim_feedforward")),
          .dropout = 0.0,
          .activation = metadata.at("activation") == "gelu" ? nn::TransformerActivation::gelu
                                                             : nn::TransformerActivation::relu,
          .layer_norm_eps = 1e-5,
          .batch_first = metadata_flag(file, "batch_first"),
          .norm_first = metadata_flag(file, "norm_first")};
}

// Compares the output and, after backward of sum(output * w), the gradients of every input
// and parameter with the fixture's.
template <class T, class Module>
void check_against_fixture(const Module& module, const safetensors::File& file, const Tensor<T>& output,
                           const std::vector<std::pair<std::string, Tensor<T>>>& inputs) {
  const double tolerance = transformer_tolerance<T>;
  check_close(output.value(), file.floats<T>("output"), tolerance);
  fixture_objective(output, file).backward();
  for (const auto& [name, input] : inputs) {
    BOOST_TEST_CONTEXT("gradient of " << name) { check_close(input.grad(), file.floats<T>("grad." + name), tolerance); }
  }
  for (const auto& [name, parameter] : module.named_parameters()) {
    BOOST_TEST_CONTEXT("gradient of " << name) { check_close(parameter.grad(), file.floats<T>("grad." + name), tolerance); }
  }
}

template <class T>
Tensor<T> fixture_input(const safetensors::File& file, const std::string& name) {
  return Tensor<T>(file.floats<T>(name), true);
}

template <class T>
void encoder_layer_parity(const std::string& name) {
  BOOST_TEST_CONTEXT(name) {
    const safetensors::File file = fixture(name);
    nn::TransformerEncoderLayer<T> layer(fixture_options(file));
    nn::load_state_dict(layer, file, "param.");  // strict: every name and shape is PyTorch's
    const Tensor<T> src = fixture_input<T>(file, "src");
    const Tensor<T> output = layer(src, {.key_padding = fixture_mask(file, "src_key_padding_mask")});
    check_against_fixture<T>(layer, file, output, {{"src", src}});
  }
}

template <class T>
void decoder_layer_parity(const std::string& name) {
  BOOST_TEST_CONTEXT(name) {
    const safetensors::File file = fixture(name);
    nn::TransformerDecoderLayer<T> layer(fixture_options(file));
    nn::load_state_dict(layer, file, "param.");
    const Tensor<T> tgt = fixture_input<T>(file, "tgt"), memory = fixture_input<T>(file, "memory");
    const Tensor<T> output = layer(tgt, memory, {.key_padding = fixture_mask(file, "tgt_key_padding_mask"), .causal = true},
                                   {.key_padding = fixture_mask(file, "memory_key_padding_mask")});
    check_against_fixture<T>(layer, file, output, {{"tgt", tgt}, {"memory", memory}});
  }
}

template <class T>
void transformer_parity(const std::string& name) {
  BOOST_TEST_CONTEXT(name) {
    const safetensors::File file = fixture(name);
    nn::Transformer<T> model({.layer = fixture_options(file),
                              .num_encoder_layers = std::stoul(file.metadata().at("num_encoder_layers")),
                              .num_decoder_layers = std::stoul(file.metadata().at("num_decoder_layers"))});
    nn::load_state_dict(model, file, "param.");
    const Tensor<T> src = fixture_input<T>(file, "src"), tgt = fixture_input<T>(file, "tgt");
    const Tensor<T> output =
        model(src, tgt,
              {.source = {.key_padding = fixture_mask(file, "src_key_padding_mask")},
               .target = {.key_padding = fixture_mask(file, "tgt_key_padding_mask"), .causal = true},
               .memory = {.key_padding = fixture_mask(file, "memory_key_padding_mask")}});
    check_against_fixture<T>(model, file, output, {{"src", src}, {"tgt", tgt}});
  }
}

template <class T>
void every_parity_fixture() {
  encoder_layer_parity<T>("transformer_encoder_layer_post_relu");
  encoder_layer_parity<T>("transformer_encoder_layer_pre_gelu");
  decoder_layer_parity<T>("transformer_decoder_layer_post_gelu");
  decoder_layer_parity<T>("transformer_decoder_layer_pre_relu");
  transformer_parity<T>("transformer_post_relu");  // sequence-first
  transformer_parity<T>("transformer_pre_gelu");   // batch-first
}

// Small layers for gradcheck and the cache: E = 4, two heads, feed-forward 6.
nn::TransformerLayerOptions small_options(bool norm_first, nn::TransformerActivation activation, bool batch_first = true) {
  return {.d_model = 4,
          .nhead = 2,
          .dim_feedforward = 6,
          .dropout = 0.0,
          .activation = activation,
          .layer_norm_eps = 1e-5,
          .batch_first = batch_first,
          .norm_first = norm_first};
}

// Moves every bias and LayerNorm weight off its initial value, as the fixtures do.
template <class T>
void perturb(nn::Module<T>& module, std::uint64_t seed) {
  Generator generator(seed);
  for (auto& [name, parameter] : module.named_parameters()) {
    const bool is_bias = name.ends_with("bias");
    if (!is_bias && name.find("norm") == std::string::npos) continue;
    for (T& v : parameter.mutable_value()) v = static_cast<T>(is_bias ? generator.uniform(-0.5, 0.5) : generator.uniform(0.5, 1.5));
  }
}

template <class Check>
void for_both_norms_and_activations(Check check) {
  for (const bool norm_first : {false, true}) {
    for (const auto activation : {nn::TransformerActivation::relu, nn::TransformerActivation::gelu}) {
      BOOST_TEST_CONTEXT((norm_first ? "pre-norm" : "post-norm")
                         << (activation == nn::TransformerActivation::gelu ? ", gelu" : ", relu")) {
        check(norm_first, activation);
      }
    }
  }
}

// [B, T] padding with the last `padded[b]` positions of entry b padded.
Mask trailing_padding(std::size_t steps, const std::vector<std::size_t>& padded) {
  Mask mask = xt::zeros<bool>({padded.size(), steps});
  for (std::size_t b = 0; b < padded.size(); ++b) {
    for (std::size_t t = steps - padded[b]; t < steps; ++t) mask(b, t) = true;
  }
  return mask;
}

// Gives `to` the parameter values of `from`, an identically built module.
template <class T>
void copy_parameters(const nn::Module<T>& from, nn::Module<T>& to) {
  const std::vector<Tensor<T>> source = from.parameters();
  std::vector<Tensor<T>> target = to.parameters();
  BOOST_TEST_REQUIRE(source.size() == target.size());
  for (std::size_t i = 0; i < source.size(); ++i) target[i].mutable_value() = source[i].value();
}

bool all_finite(const Array<double>& values) { return xt::all(xt::isfinite(values)); }

// Rows `rows` of x along axis 0.
Tensor<double> rows_of(const Tensor<double>& x, const Indices& rows) { return index_select(x.detach(), 0, rows); }

}  // namespace

BOOST_AUTO_TEST_CASE(pytorch_parity_in_double) { every_parity_fixture<double>(); }

BOOST_AUTO_TEST_CASE(pytorch_parity_in_float) { every_parity_fixture<float>(); }

BOOST_AUTO_TEST_CASE(parameter_names_are_pytorchs) {
  nn::TransformerDecoder<float> decoder({.layer = small_options(false, nn::TransformerActivation::relu),
                                         .num_layers = 2,
                                         .final_norm = true});
  std::vector<std::string> names;
  for (const auto& [name, parameter] : decoder.named_parameters()) names.push_back(name);
  const std::vector<std::string> layer0 = {"layers.0.self_attn.in_proj_weight", "layers.0.self_attn.in_proj_bias",
                                           "layers.0.self_attn.out_proj.weight", "layers.0.self_attn.out_proj.bias",
                                           "layers.0.multihead_attn.in_proj_weight",
                                           "layers.0.multihead_attn.in_proj_bias",
                                           "layers.0.multihead_attn.out_proj.weight",
                                           "layers.0.multihead_attn.out_proj.bias", "layers.0.linear1.weight",
                                           "layers.0.linear1.bias", "layers.0.linear2.weight", "layers.0.linear2.bias",
                                           "layers.0.norm1.weight", "layers.0.norm1.bias", "layers.0.norm2.weight",
                                           "layers.0.norm2.bias", "layers.0.norm3.weight", "layers.0.norm3.bias"};
  BOOST_TEST_REQUIRE(names.size() == 2 * layer0.size() + 2);
  BOOST_TEST(std::vector<std::string>(names.begin(), names.begin() + 18) == layer0, boost::test_tools::per_element());
  BOOST_TEST(names[18] == "layers.1.self_attn.in_proj_weight");
  BOOST_TEST(names[36] == "norm.weight");
  BOOST_TEST(names[37] == "norm.bias");
  nn::TransformerEncoder<float> without_norm({.layer = small_options(false, nn::TransformerActivation::relu), .num_layers = 1});
  BOOST_TEST(!without_norm.norm.has_value());
  BOOST_TEST(without_norm.named_parameters().back().first == "layers.0.norm2.bias");
}

BOOST_AUTO_TEST_CASE(encoder_layer_gradients) {
  for_both_norms_and_activations([](bool norm_first, nn::TransformerActivation activation) {
    manual_seed(3);
    nn::TransformerEncoderLayer<double> layer(small_options(norm_first, activation));
    perturb(layer, 4);
    const Tensor<double> src = random_tensor({2, 3, 4}, 5, -1.5, 1.5);
    const nn::AttendOptions masks{.key_padding = trailing_padding(3, {0, 1}), .causal = true};
    const GradcheckResult result =
        gradcheck([&](const Inputs& x) { return weighted_sum(layer(x[0], masks)); }, {src},
                  {.names = layer.named_parameters()});
    BOOST_TEST(result.passed, result.report);
  });
}

BOOST_AUTO_TEST_CASE(decoder_layer_gradients) {
  for_both_norms_and_activations([](bool norm_first, nn::TransformerActivation activation) {
    manual_seed(6);
    nn::TransformerDecoderLayer<double> layer(small_options(norm_first, activation));
    perturb(layer, 7);
    const Tensor<double> tgt = random_tensor({2, 3, 4}, 8, -1.5, 1.5);
    const Tensor<double> memory = random_tensor({2, 4, 4}, 9, -1.5, 1.5);
    const nn::AttendOptions self_attention{.key_padding = trailing_padding(3, {1, 0}), .causal = true};
    const nn::AttendOptions cross_attention{.key_padding = trailing_padding(4, {0, 2})};
    const GradcheckResult result = gradcheck(
        [&](const Inputs& x) { return weighted_sum(layer(x[0], x[1], self_attention, cross_attention)); },
        {tgt, memory}, {.names = layer.named_parameters()});
    BOOST_TEST(result.passed, result.report);
  });
}

// PyTorch gives NaN for a query that sees no key; here attention gives zeros and the rest of
// the layer stays finite, values and gradients.
BOOST_AUTO_TEST_CASE(fully_padded_rows_give_no_nan) {
  manual_seed(10);
  nn::Transformer<double> model({.layer = small_options(false, nn::TransformerActivation::gelu),
                                 .num_encoder_layers = 1,
                                 .num_decoder_layers = 1});
  const Tensor<double> src = random_tensor({2, 3, 4}, 11), tgt = random_tensor({2, 2, 4}, 12);
  const Mask source_padding = trailing_padding(3, {0, 3});  // entry 1: nothing but padding
  const Mask target_padding = trailing_padding(2, {2, 0});  // entry 0: nothing but padding
  const Tensor<double> output = model(src, tgt,
                                      {.source = {.key_padding = source_padding},
                                       .target = {.key_padding = target_padding, .causal = true},
                                       .memory = {.key_padding = source_padding}});
  BOOST_TEST(all_finite(output.value()));
  weighted_sum(output).backward();
  BOOST_TEST(all_finite(src.grad()));
  BOOST_TEST(all_finite(tgt.grad()));
  for (const auto& [name, parameter] : model.named_parameters()) BOOST_TEST(all_finite(parameter.grad()), name);
  // A decoder stepping over an all-padding memory stays finite too.
  nn::TransformerDecoderCache<double> cache = model.decoder.begin(src, source_padding);
  BOOST_TEST(all_finite(model.decoder.step(cache, slice(tgt, 1, 0, 1)).output.value()));
}

BOOST_AUTO_TEST_CASE(dropout_only_in_training_mode) {
  manual_seed(13);
  nn::TransformerLayerOptions options = small_options(true, nn::TransformerActivation::relu);
  options.dropout = 0.5;
  nn::TransformerDecoderLayer<double> layer(options);
  const Tensor<double> tgt = random_tensor({2, 3, 4}, 14, -1, 1, false), memory = random_tensor({2, 4, 4}, 15, -1, 1, false);
  layer.eval();
  const Array<double> evaluated = layer(tgt, memory).value();
  check_close(layer(tgt, memory).value(), evaluated);
  // The same layer without dropout gives what evaluation mode gives.
  options.dropout = 0.0;
  nn::TransformerDecoderLayer<double> without_dropout(options);
  copy_parameters(layer, without_dropout);
  check_close(without_dropout(tgt, memory).value(), evaluated);
  layer.train();
  const Array<double> trained = layer(tgt, memory).value();
  BOOST_TEST(xt::amax(xt::abs(trained - evaluated))() > 1e-3);
}

// The same inputs in [T, B, E] give the batch-first outputs transposed, through the stacks,
// the layers and the cache.
BOOST_AUTO_TEST_CASE(sequence_first_layout_matches_batch_first) {
  manual_seed(16);
  const nn::TransformerStackOptions options{.layer = small_options(true, nn::TransformerActivation::gelu),
                                            .num_layers = 2,
                                            .final_norm = true};
  nn::TransformerStackOptions sequence_options = options;
  sequence_options.layer.batch_first = false;
  nn::TransformerDecoder<double> decoder(options), sequence_decoder(sequence_options);
  perturb(decoder, 17);
  copy_parameters(decoder, sequence_decoder);
  const Tensor<double> tgt = random_tensor({2, 3, 4}, 18, -1, 1, false), memory = random_tensor({2, 5, 4}, 19, -1, 1, false);
  const nn::AttendOptions causal{.causal = true};
  const nn::AttendOptions cross{.key_padding = trailing_padding(5, {0, 2})};
  const Array<double> expected = decoder(tgt, memory, causal, cross).value();
  const Tensor<double> sequence_output =
      sequence_decoder(transpose(tgt, 0, 1), transpose(memory, 0, 1), causal, cross);
  check_close(transpose(sequence_output, 0, 1).value(), expected);
  check_close(transpose(sequence_decoder.layers[0](transpose(tgt, 0, 1), transpose(memory, 0, 1), causal, cross), 0, 1).value(),
              decoder.layers[0](tgt, memory, causal, cross).value());
  nn::TransformerDecoderCache<double> cache = sequence_decoder.begin(transpose(memory, 0, 1), cross.key_padding);
  const Tensor<double> first = sequence_decoder.step(cache, transpose(slice(tgt, 1, 0, 2), 0, 1)).output;
  check_close(transpose(first, 0, 1).value(), xt::view(expected, xt::all(), xt::range(0, 2), xt::all()));

  nn::TransformerEncoderLayer<double> encoder_layer(options.layer);
  nn::TransformerEncoderLayer<double> sequence_encoder_layer(sequence_options.layer);
  copy_parameters(encoder_layer, sequence_encoder_layer);
  check_close(transpose(sequence_encoder_layer(transpose(memory, 0, 1), cross), 0, 1).value(),
              encoder_layer(memory, cross).value());
}

// Decoding one position at a time (and two at once) over the cache gives what the whole
// decoder gives with a causal mask, to rounding; the cross-attention weights are the layers'.
BOOST_AUTO_TEST_CASE(cached_decoding_equals_the_whole_decoder) {
  for_both_norms_and_activations([](bool norm_first, nn::TransformerActivation activation) {
    manual_seed(20);
    nn::TransformerDecoder<double> decoder(
        {.layer = small_options(norm_first, activation), .num_layers = 2, .final_norm = true});
    perturb(decoder, 21);
    const std::size_t steps = 5;
    const Tensor<double> tgt = random_tensor({2, steps, 4}, 22, -1.5, 1.5, false);
    const Tensor<double> memory = random_tensor({2, 3, 4}, 23, -1.5, 1.5, false);
    const Mask memory_padding = trailing_padding(3, {1, 0});
    const Array<double> expected =
        decoder(tgt, memory, {.causal = true}, {.key_padding = memory_padding}).value();
    NoGradGuard no_grad;
    nn::TransformerDecoderCache<double> cache = decoder.begin(memory, memory_padding);
    std::vector<Tensor<double>> outputs;
    for (std::size_t t = 0; t < steps; ++t) {
      // Steps 1 and 2 go in one call: several new positions attend causally among themselves.
      const std::size_t count = t == 1 ? 2 : 1;
      BOOST_TEST(cache.length() == t);
      const auto step = decoder.step(cache, slice(tgt, 1, std::int64_t(t), std::int64_t(t + count)));
      BOOST_TEST_REQUIRE(step.cross_attention.size() == 2u);
      BOOST_TEST((step.cross_attention[1].shape() == Shape{2, count, 3}));
      // Padded memory keys get no weight.
      BOOST_TEST(xt::amax(xt::view(step.cross_attention[0].value(), 0, xt::all(), 2))() == 0.0);
      outputs.push_back(step.output);
      t += count - 1;
    }
    BOOST_TEST(cache.length() == steps);
    check_close(concat(outputs, 1).value(), expected, 1e-12);
  });
}

// Without averaging, a step reports each head's cross-attention, [B, H, n, S]: rows that sum
// to one, whose mean over the heads is the averaged report, with the same output.
BOOST_AUTO_TEST_CASE(a_step_reports_each_heads_cross_attention) {
  manual_seed(24);
  nn::TransformerDecoder<double> decoder({.layer = small_options(true, nn::TransformerActivation::relu), .num_layers = 2});
  perturb(decoder, 25);
  const Tensor<double> tgt = random_tensor({2, 2, 4}, 26, -1.5, 1.5, false);
  const Tensor<double> memory = random_tensor({2, 3, 4}, 27, -1.5, 1.5, false);
  const Mask memory_padding = trailing_padding(3, {1, 0});
  NoGradGuard no_grad;
  nn::TransformerDecoderCache<double> averaging = decoder.begin(memory, memory_padding);
  nn::TransformerDecoderCache<double> per_head = decoder.begin(memory, memory_padding);
  const auto averaged = decoder.step(averaging, tgt);
  const auto heads = decoder.step(per_head, tgt, {.average_attn_weights = false});
  check_close(heads.output.value(), averaged.output.value(), 0.0);
  for (std::size_t layer = 0; layer < 2; ++layer) {
    const Array<double>& weights = heads.cross_attention[layer].value();  // [B, H, n, S]
    const Array<double>& average = averaged.cross_attention[layer].value();  // [B, n, S]
    BOOST_TEST_REQUIRE((heads.cross_attention[layer].shape() == Shape{2, 2, 2, 3}));
    for (std::size_t b = 0; b < 2; ++b) {
      for (std::size_t t = 0; t < 2; ++t) {
        for (std::size_t h = 0; h < 2; ++h) {
          BOOST_TEST(std::abs(weights(b, h, t, 0) + weights(b, h, t, 1) + weights(b, h, t, 2) - 1.0) <= 1e-12);
        }
        for (std::size_t s = 0; s < 3; ++s) {
          BOOST_TEST(std::abs((weights(b, 0, t, s) + weights(b, 1, t, s)) / 2 - average(b, t, s)) <= 1e-12);
        }
      }
    }
  }
}

// select(rows): row r continues as row rows[r] did, rows may be dropped or repeated and their
// number may change; select_target moves only the target side, as beam search over copies
// of one source needs.
BOOST_AUTO_TEST_CASE(selected_cache_rows_follow_their_source_rows) {
  manual_seed(24);
  nn::TransformerDecoder<double> decoder(
      {.layer = small_options(false, nn::TransformerActivation::relu), .num_layers = 2, .final_norm = false});
  perturb(decoder, 25);
  const Tensor<double> tgt = random_tensor({3, 4, 4}, 26, -1.5, 1.5, false);
  const Tensor<double> memory = random_tensor({3, 3, 4}, 27, -1.5, 1.5, false);
  const Mask memory_padding = trailing_padding(3, {0, 1, 2});
  NoGradGuard no_grad;
  nn::TransformerDecoderCache<double> cache = decoder.begin(memory, memory_padding);
  decoder.step(cache, slice(tgt, 1, 0, 2));
  const Indices rows = indices_from({2, 0, 2, 1});
  cache.select(rows);
  BOOST_TEST(cache.batch_size() == 4u);
  BOOST_TEST(cache.length() == 2u);
  // The selected rows' own next positions.
  const Tensor<double> selected_tgt = rows_of(tgt, rows);
  const Tensor<double> output = decoder.step(cache, slice(selected_tgt, 1, 2, 4)).output;
  Mask selected_padding = Mask::from_shape({4, 3});
  for (std::size_t r = 0; r < 4; ++r) xt::view(selected_padding, r) = xt::view(memory_padding, rows(r));
  const Array<double> expected =
      decoder(selected_tgt, rows_of(memory, rows), {.causal = true}, {.key_padding = selected_padding}).value();
  check_close(output.value(), xt::view(expected, xt::all(), xt::range(2, 4), xt::all()), 1e-12);

  // Three copies of one source: select_target reorders the hypotheses, the memory stays.
  const Tensor<double> copies = rows_of(memory, indices_from({1, 1, 1}));
  nn::TransformerDecoderCache<double> beam = decoder.begin(copies);
  decoder.step(beam, slice(tgt, 1, 0, 3));
  const Indices beam_rows = indices_from({1, 1, 0});
  beam.select_target(beam_rows);
  const Tensor<double> beam_tgt = rows_of(tgt, beam_rows);
  const Tensor<double> beam_output = decoder.step(beam, slice(beam_tgt, 1, 3, 4)).output;
  const Array<double> beam_expected = decoder(beam_tgt, copies, {.causal = true}).value();
  check_close(beam_output.value(), xt::view(beam_expected, xt::all(), xt::range(3, 4), xt::all()), 1e-12);
}

BOOST_AUTO_TEST_CASE(sinusoidal_encoding_values) {
  nn::SinusoidalPositionalEncoding<double> encoding({.d_model = 5, .max_len = 4});
  // pe[pos, 2i] = sin(pos / 10000^(2i / 5)), pe[pos, 2i + 1] = cos(the same); d odd ends on a sine.
  const Array<double> rows = encoding.encoding(2, 1);  // positions 1 and 2
  for (std::size_t r = 0; r < 2; ++r) {
    const double pos = double(r + 1);
    const Array<double> expected{std::sin(pos), std::cos(pos), std::sin(pos / std::pow(10000.0, 0.4)),
                                 std::cos(pos / std::pow(10000.0, 0.4)), std::sin(pos / std::pow(10000.0, 0.8))};
    check_close(xt::view(rows, r), expected);
  }
  check_close(xt::view(encoding.encoding(1), 0), Array<double>{0, 1, 0, 1, 0});
  // Past max_len the rows are computed as the table would hold them.
  nn::SinusoidalPositionalEncoding<double> longer({.d_model = 5, .max_len = 10});
  check_close(encoding.encoding(4, 3), longer.encoding(4, 3));
  // forward adds the rows at offset .. offset + T to every batch entry, in either layout.
  const Tensor<double> x = random_tensor({2, 3, 5}, 28);
  const Array<double> added = encoding(x, 2).value();
  for (std::size_t b = 0; b < 2; ++b) check_close(xt::view(added, b) - xt::view(x.value(), b), longer.encoding(3, 2));
  nn::SinusoidalPositionalEncoding<double> sequence_first({.d_model = 5, .max_len = 4, .batch_first = false});
  check_close(transpose(sequence_first(transpose(x, 0, 1), 2), 0, 1).value(), added);
  BOOST_TEST(encoding.parameters().empty());
}

BOOST_AUTO_TEST_CASE(positional_encoding_gradients) {
  const Tensor<double> x = random_tensor({2, 3, 4}, 29);
  nn::SinusoidalPositionalEncoding<double> sinusoidal({.d_model = 4, .max_len = 8});
  xgrad::testing::check_gradients([&](const Inputs& v) { return sinusoidal(v[0], 3); }, {x});
  manual_seed(30);
  nn::LearnedPositionalEncoding<double> learned({.d_model = 4, .max_len = 6});
  const GradcheckResult result = gradcheck([&](const Inputs& v) { return weighted_sum(learned(v[0], 2)); }, {x},
                                           {.names = learned.named_parameters()});
  BOOST_TEST(result.passed, result.report);
  // Only rows 2 .. 4 were used: the others get no gradient.
  learned.zero_grad();
  weighted_sum(learned(x.detach(), 2)).backward();
  BOOST_TEST(xt::amax(xt::abs(xt::view(learned.weight.grad(), xt::keep(0, 1, 5))))() == 0.0);
  nn::LearnedPositionalEncoding<double> sequence_first({.d_model = 4, .max_len = 6, .batch_first = false});
  copy_parameters(learned, sequence_first);
  check_close(transpose(sequence_first(transpose(x, 0, 1), 2), 0, 1).value(), learned(x, 2).value());
}

BOOST_AUTO_TEST_CASE(option_errors_name_the_option) {
  using Change = std::function<void(nn::TransformerLayerOptions&)>;
  const std::vector<std::pair<Change, std::string>> cases = {
      {[](auto& o) { o.nhead = 3; }, "nhead = 3 must be positive and divide d_model = 4"},
      {[](auto& o) { o.nhead = 0; }, "nhead = 0 must be positive and divide d_model = 4"},
      {[](auto& o) { o.d_model = 0; }, "d_model = 0 must be positive"},
      {[](auto& o) { o.dim_feedforward = 0; }, "dim_feedforward = 0 must be positive"},
      {[](auto& o) { o.dropout = 1.5; }, "dropout = 1.5 must lie in [0, 1]"},
      {[](auto& o) { o.layer_norm_eps = 0; }, "layer_norm_eps = 0 must be positive"},
  };
  for (const auto& [change, message] : cases) {
    nn::TransformerLayerOptions options = small_options(false, nn::TransformerActivation::relu);
    change(options);
    BOOST_TEST(error_message<std::invalid_argument>([&] { nn::TransformerEncoderLayer<float> layer(options); }) ==
               "TransformerEncoderLayer: " + message);
    BOOST_TEST(error_message<std::invalid_argument>([&] { nn::TransformerDecoderLayer<float> layer(options); }) ==
               "TransformerDecoderLayer: " + message);
  }
  const nn::TransformerStackOptions no_layers{.layer = small_options(false, nn::TransformerActivation::relu), .num_layers = 0};
  BOOST_TEST(error_message<std::invalid_argument>([&] { nn::TransformerEncoder<float> stack(no_layers); }) ==
             "TransformerEncoder: num_layers = 0 must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([&] { nn::TransformerDecoder<float> stack(no_layers); }) ==
             "TransformerDecoder: num_layers = 0 must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([&] {
               nn::Transformer<float> model({.layer = small_options(false, nn::TransformerActivation::relu),
                                             .num_encoder_layers = 0});
             }) == "TransformerEncoder: num_layers = 0 must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([] { nn::SinusoidalPositionalEncoding<float> pe({.d_model = 0}); }) ==
             "SinusoidalPositionalEncoding: d_model = 0 must be positive");
  BOOST_TEST(error_message<std::invalid_argument>([] {
               nn::LearnedPositionalEncoding<float> pe({.d_model = 2, .max_len = 0});
             }) == "LearnedPositionalEncoding: max_len = 0 must be positive");
}

BOOST_AUTO_TEST_CASE(shape_errors_name_the_layer_and_every_shape) {
  manual_seed(31);
  const nn::TransformerLayerOptions options = small_options(false, nn::TransformerActivation::relu);
  nn::TransformerEncoderLayer<double> encoder_layer(options);
  BOOST_TEST(error_message<shape_error>([&] { encoder_layer(random_tensor({2, 3, 5}, 1)); }) ==
             "TransformerEncoderLayer: src [2, 3, 5]: expected [B, T, d_model] with one batch size B and d_model = 4");
  nn::TransformerDecoder<double> decoder({.layer = options, .num_layers = 1});
  BOOST_TEST(error_message<shape_error>([&] { decoder(random_tensor({2, 3, 4}, 1), random_tensor({3, 5, 4}, 2)); }) ==
             "TransformerDecoder: tgt [2, 3, 4], memory [3, 5, 4]: expected [B, T, d_model] with one batch size B and "
             "d_model = 4");
  nn::TransformerLayerOptions sequence_first = options;
  sequence_first.batch_first = false;
  nn::Transformer<double> model({.layer = sequence_first, .num_encoder_layers = 1, .num_decoder_layers = 1});
  BOOST_TEST(error_message<shape_error>([&] { model(random_tensor({5, 2, 4}, 1), random_tensor({3, 4}, 2)); }) ==
             "Transformer: src [5, 2, 4], tgt [3, 4]: expected [T, B, d_model] with one batch size B and d_model = 4");
  // The cache: its memory padding, its rows and the positions a step adds.
  const Tensor<double> memory = random_tensor({2, 5, 4}, 3);
  BOOST_TEST(error_message<shape_error>([&] { decoder.begin(memory, Mask(xt::zeros<bool>({2, 4}))); }) ==
             "TransformerDecoder::begin: memory [2, 5, 4], memory_key_padding [2, 4]: memory_key_padding must be "
             "[B, S] = [2, 5]");
  nn::TransformerDecoderCache<double> cache = decoder.begin(memory);
  BOOST_TEST(error_message<shape_error>([&] { decoder.step(cache, random_tensor({3, 1, 4}, 4)); }) ==
             "TransformerDecoder::step: tgt [3, 1, 4] must be [B, n, d_model] with B = 2 (the cache's rows), n >= 1 "
             "and d_model = 4");
  nn::TransformerDecoder<double> deeper({.layer = options, .num_layers = 2});
  BOOST_TEST(error_message<std::invalid_argument>([&] { deeper.step(cache, random_tensor({2, 1, 4}, 4)); }) ==
             "TransformerDecoder::step: the cache holds 1 layers of 2 heads, this decoder has 2 of 2: pass a cache "
             "from this decoder's begin()");
  BOOST_TEST(error_message<index_error>([&] { cache.select(indices_from({0, 2})); }) ==
             "TransformerDecoderCache::select: rows[1] = 2 is outside the cache's 2 rows");
  BOOST_TEST(error_message<shape_error>([&] { cache.select_target(indices_from({0, 1, 1})); }) ==
             "TransformerDecoderCache::select_target: rows [3] must hold one row for each of the cache's 2 rows (the "
             "memory's rows stay); select() changes their number");
  nn::SinusoidalPositionalEncoding<double> sinusoidal({.d_model = 4});
  BOOST_TEST(error_message<shape_error>([&] { sinusoidal(random_tensor({2, 3}, 5)); }) ==
             "SinusoidalPositionalEncoding: x [2, 3] must be [B, T, d_model] with d_model = 4");
  nn::LearnedPositionalEncoding<double> learned({.d_model = 4, .max_len = 6});
  BOOST_TEST(error_message<index_error>([&] { learned(random_tensor({2, 3, 4}, 6), 4); }) ==
             "LearnedPositionalEncoding: position 6 (offset 4 + length 3 - 1) is outside the table of max_len = 6 "
             "positions");
}
