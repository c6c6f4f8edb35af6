// Module: hierarchical names, registration rules, train/eval, zero_grad, and strict
// safetensors state dicts.
#define BOOST_TEST_MODULE module
#include "xgrad_test.h"

#include <limits>
#include <set>

#include <filesystem>

using namespace xgrad;

namespace {

// A two-level model: encoder (embedding + linear) and a head with a buffer.
struct Encoder : nn::Module<float> {
  nn::Embedding<float> embed{{.num_embeddings = 10, .embedding_dim = 4}};
  nn::Linear<float> proj{{.in_features = 4, .out_features = 3}};
  Encoder() {
    register_module("embed", embed);
    register_module("proj", proj);
  }
};

struct Model : nn::Module<float> {
  Encoder encoder;
  nn::Linear<float> head{{.in_features = 3, .out_features = 2, .bias = false}};
  nn::Dropout<float> dropout{0.5};
  Tensor<float> scale;
  Model() {
    register_module("encoder", encoder);
    register_module("head", head);
    register_module("dropout", dropout);
    scale = register_buffer("scale", Tensor<float>::ones({2}));
  }
};

std::vector<std::string> names(const NamedTensors<float>& tensors) {
  std::vector<std::string> result;
  for (const auto& [name, tensor] : tensors) result.push_back(name);
  return result;
}

}  // namespace

BOOST_AUTO_TEST_CASE(names_are_dotted_and_hierarchical) {
  Model model;
  BOOST_TEST(names(model.named_parameters()) ==
             (std::vector<std::string>{"encoder.embed.weight", "encoder.proj.weight", "encoder.proj.bias", "head.weight"}));
  BOOST_TEST(names(model.named_buffers()) == (std::vector<std::string>{"scale"}));
  BOOST_TEST(names(model.state_dict()).size() == 5u);
  BOOST_TEST(model.parameters().size() == 4u);
  for (const Tensor<float>& p : model.parameters()) BOOST_TEST(p.requires_grad());
  BOOST_TEST(!model.scale.requires_grad());
  BOOST_TEST(model.named_children().size() == 3u);
}

BOOST_AUTO_TEST_CASE(registration_rejects_bad_and_duplicate_names) {
  struct Bad : nn::Module<float> {
    void add(const std::string& name) { register_parameter(name, Tensor<float>::zeros({1})); }
  } bad;
  bad.add("w");
  BOOST_CHECK_THROW(bad.add("w"), std::invalid_argument);
  BOOST_CHECK_THROW(bad.add("a.b"), std::invalid_argument);
  BOOST_CHECK_THROW(bad.add(""), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(train_and_eval_reach_every_child) {
  Model model;
  Tensor<float> x = Tensor<float>::ones({1000});
  BOOST_TEST(model.dropout.is_training());
  BOOST_TEST(xt::any(xt::equal(model.dropout(x).value(), 0.0f)));
  model.eval();
  BOOST_TEST(!model.encoder.proj.is_training());
  BOOST_TEST(model.dropout(x).same(x));
  model.train();
  BOOST_TEST(model.encoder.embed.is_training());
}

BOOST_AUTO_TEST_CASE(zero_grad_clears_every_parameter) {
  Model model;
  Tensor<float> out = model.head(model.encoder.proj(model.encoder.embed(Indices{1, 2})));
  sum(out).backward();
  BOOST_TEST(xt::any(xt::not_equal(model.head.weight.grad(), 0.0f)));
  model.zero_grad();
  for (const Tensor<float>& p : model.parameters()) {
    if (p.has_grad()) BOOST_TEST(xt::all(xt::equal(p.grad(), 0.0f)));
  }
}

BOOST_AUTO_TEST_CASE(state_dict_round_trip_restores_values_in_place) {
  xgrad::testing::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  Model saved;
  saved.scale.mutable_value() = Array<float>{2.0f, 3.0f};
  nn::save_state_dict(saved, path, {{"note", "test"}});
  Model loaded;
  const Tensor<float> handle = loaded.encoder.proj.weight;  // optimizers hold handles like this
  nn::load_state_dict(loaded, path);
  for (const auto& [name, tensor] : saved.state_dict()) {
    const auto state = loaded.state_dict();
    const auto it = std::find_if(state.begin(), state.end(), [&](const auto& e) { return e.first == name; });
    BOOST_TEST_REQUIRE((it != state.end()));
    BOOST_TEST(it->second.value() == tensor.value(), name);
  }
  BOOST_TEST(handle.value() == saved.encoder.proj.weight.value());
  BOOST_TEST(safetensors::File::read(path).metadata().at("note") == "test");
  // A double model loads the float file (converted), as PyTorch's load_state_dict does.
  struct DoubleHead : nn::Module<double> {
    nn::Linear<double> head{{.in_features = 3, .out_features = 2, .bias = false}};
    DoubleHead() { register_module("head", head); }
  };
  safetensors::Writer writer;
  writer.add("head.weight", saved.head.weight.value());
  writer.write(path);
  DoubleHead widened;
  nn::load_state_dict(widened, path);
  xgrad::testing::check_close(widened.head.weight.value(), saved.head.weight.value(), 0.0);
}

BOOST_AUTO_TEST_CASE(strict_loading_names_every_mismatch_and_changes_nothing) {
  xgrad::testing::TempDir dir;
  const std::string path = dir.file("model.safetensors");
  Model model;
  safetensors::Writer writer;
  for (const auto& [name, tensor] : model.state_dict()) {
    if (name == "head.weight") continue;                                   // missing
    if (name == "encoder.proj.bias") {
      writer.add(name, Array<float>::from_shape({4}));                     // wrong shape
      continue;
    }
    writer.add(name, tensor.value());
  }
  writer.add("decoder.weight", Array<float>::from_shape({1}));             // unexpected
  writer.write(path);
  const Array<float> before = model.encoder.embed.weight.value();
  try {
    nn::load_state_dict(model, path);
    BOOST_FAIL("a mismatched file must be refused");
  } catch (const file_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("missing key 'head.weight' (shape [2, 3])") != std::string::npos, message);
    BOOST_TEST(message.find("unexpected key 'decoder.weight'") != std::string::npos, message);
    BOOST_TEST(message.find("'encoder.proj.bias': the file has shape [4] but the module expects [3]") != std::string::npos,
               message);
  }
  BOOST_TEST(model.encoder.embed.weight.value() == before);
  BOOST_CHECK_THROW(nn::load_state_dict(model, path + ".absent"), file_error);
}

// A NaN or infinity anywhere in the weights is refused by name, before any value is copied.
BOOST_AUTO_TEST_CASE(non_finite_weights_are_refused_and_change_nothing) {
  xgrad::testing::TempDir dir;
  Model source;
  Model model;
  const Array<float> before = model.encoder.embed.weight.value();
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    source.head.weight.mutable_value()(1, 2) = bad;
    const std::string path = dir.file("model.safetensors");
    nn::save_state_dict(source, path);
    try {
      nn::load_state_dict(model, path);
      BOOST_FAIL("non-finite weights must be refused");
    } catch (const file_error& e) {
      const std::string message = e.what();
      BOOST_TEST(message.find(path) != std::string::npos, message);
      BOOST_TEST(message.find("tensor 'head.weight' holds a NaN or infinite value (element 5 of shape [2, 3])") !=
                     std::string::npos,
                 message);
    }
    BOOST_TEST(model.encoder.embed.weight.value() == before);
  }
}

BOOST_AUTO_TEST_CASE(a_pytorch_state_dict_loads_directly) {
  // The same model as fixtures_basic.py's Tagger; its state_dict was saved by PyTorch as is.
  struct Tagger : nn::Module<double> {
    nn::Embedding<double> embed{{.num_embeddings = 10, .embedding_dim = 4, .padding_idx = 0}};
    nn::LSTM<double> rnn{{.input_size = 4, .hidden_size = 3, .num_layers = 2, .bidirectional = true}};
    nn::Linear<double> proj{{.in_features = 6, .out_features = 5}};
    Tagger() {
      register_module("embed", embed);
      register_module("rnn", rnn);
      register_module("proj", proj);
    }
  } tagger;
  nn::load_state_dict(tagger, xgrad::testing::fixture("tagger_state_dict"));  // strict: every key by name
  const safetensors::File io = xgrad::testing::fixture("tagger_io");
  const Tensor<double> output = tagger.proj(tagger.rnn.forward(tagger.embed(io.integers("ids"))).output);
  xgrad::testing::check_close(output.value(), io.floats<double>("output"), 1e-12);
}

// A bf16 or f16 PyTorch checkpoint loads into a float (or double) module, converted exactly as
// PyTorch's load_state_dict converts it (fixtures_dtypes.py); integer weights are refused.
BOOST_AUTO_TEST_CASE(a_bf16_or_f16_checkpoint_loads_converted) {
  const safetensors::File file = xgrad::testing::fixture("dtypes");
  nn::Linear<float> from_bf16({.in_features = 5, .out_features = 3}), from_f16({.in_features = 5, .out_features = 3});
  nn::load_state_dict(from_bf16, file, "linear_bf16.");
  BOOST_TEST(from_bf16.weight.value() == file.floats<float>("linear_loaded.weight"));
  BOOST_TEST(from_bf16.bias.value() == file.floats<float>("linear_loaded.bias"));
  nn::load_state_dict(from_f16, file, "linear_f16.");
  BOOST_TEST(from_f16.weight.value() == file.floats<float>("linear_f16.weight"));
  nn::Linear<double> in_double({.in_features = 5, .out_features = 3});
  nn::load_state_dict(in_double, file, "linear_bf16.");
  BOOST_TEST(in_double.weight.value() == xt::cast<double>(file.floats<float>("linear_loaded.weight")));

  safetensors::Writer writer;
  writer.add("weight", Array<std::int8_t>::from_shape({3, 5}));
  writer.add("bias", file.floats<float>("linear_loaded.bias"), safetensors::Dtype::bf16);
  try {
    nn::load_state_dict(from_bf16, safetensors::File::parse(writer.serialize(), "int8.safetensors"));
    BOOST_FAIL("int8 weights were loaded into a float module");
  } catch (const file_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("int8.safetensors") != std::string::npos, message);
    BOOST_TEST(message.find("key 'weight' is stored as I8, not as floating point (F32, F64, BF16 or F16)") !=
                   std::string::npos,
               message);
    BOOST_TEST(message.find("'bias'") == std::string::npos, message);  // BF16 fits a float parameter
  }
  BOOST_TEST(from_bf16.weight.value() == file.floats<float>("linear_loaded.weight"));  // unchanged
}

BOOST_AUTO_TEST_CASE(a_checkpoint_holds_a_model_under_a_prefix) {
  xgrad::testing::TempDir dir;
  Model saved, loaded;
  safetensors::Writer writer;
  nn::write_state_dict(saved, writer, "model.");
  writer.add("optimizer.step", Array<float>{3.0f});  // another component's entry in the same file
  writer.write(dir.file("checkpoint.safetensors"));
  const safetensors::File file = safetensors::File::read(dir.file("checkpoint.safetensors"));
  nn::load_state_dict(loaded, file, "model.");
  BOOST_TEST(loaded.head.weight.value() == saved.head.weight.value());
  BOOST_CHECK_THROW(nn::load_state_dict(loaded, file), file_error);  // without the prefix nothing matches
}

// A strict load whose missing keys are all in the file under another prefix, or without the
// module's leading part, says what to load instead.
BOOST_AUTO_TEST_CASE(a_mismatch_names_the_prefix_the_keys_are_under) {
  Model model;
  auto load_error = [&](nn::Module<float>& into, const safetensors::Writer& writer, const std::string& prefix) {
    const safetensors::File file = safetensors::File::parse(writer.serialize(), "checkpoint.safetensors");
    return xgrad::testing::error_message<file_error>([&] { nn::load_state_dict(into, file, prefix); });
  };
  safetensors::Writer checkpoint;
  nn::write_state_dict(model, checkpoint, "model.");
  checkpoint.add("optimizer.step", Array<float>{3.0f});
  const std::string unprefixed = load_error(model, checkpoint, "");
  BOOST_TEST(unprefixed.find("all 5 missing keys are in the file under the prefix \"model.\": load with prefix \"model.\"") !=
                 std::string::npos,
             unprefixed);
  BOOST_TEST(unprefixed.find("unexpected key 'optimizer.step'") != std::string::npos, unprefixed);

  safetensors::Writer bare;
  nn::write_state_dict(model, bare);
  const std::string prefixed = load_error(model, bare, "model.");
  BOOST_TEST(prefixed.find("all 5 missing keys are in the file without a prefix: load with prefix \"\"") != std::string::npos,
             prefixed);

  struct Wrapper : nn::Module<float> {
    Encoder encoder;
    Wrapper() { register_module("encoder", encoder); }
  } wrapper;
  safetensors::Writer encoder_only;
  nn::write_state_dict(wrapper.encoder, encoder_only);
  const std::string part = load_error(wrapper, encoder_only, "");
  BOOST_TEST(part.find("all 3 missing keys are in the file without their leading \"encoder.\"") != std::string::npos, part);

  // Keys missing for another reason get no hint.
  safetensors::Writer partial;
  nn::write_state_dict(model.encoder, partial, "model.encoder.");
  const std::string unrelated = load_error(model, partial, "");
  BOOST_TEST(unrelated.find("missing key 'head.weight'") != std::string::npos, unrelated);
  BOOST_TEST(unrelated.find("load with prefix") == std::string::npos, unrelated);
  // A stray copy of the one missing key under another prefix is no prefix to load with.
  safetensors::Writer stray;
  for (const auto& [name, tensor] : model.state_dict()) {
    if (name != "head.weight") stray.add(name, tensor.value());
  }
  stray.add("old.head.weight", model.head.weight.value());
  const std::string lone = load_error(model, stray, "");
  BOOST_TEST(lone.find("missing key 'head.weight'") != std::string::npos, lone);
  BOOST_TEST(lone.find("load with prefix") == std::string::npos, lone);
}

BOOST_AUTO_TEST_CASE(a_sub_layer_that_was_never_registered_is_reported) {
  struct Forgetful : nn::Module<float> {
    nn::Linear<float> registered{{.in_features = 4, .out_features = 3}};
    nn::Linear<float> forgotten{{.in_features = 3, .out_features = 2}};
    Forgetful() { register_module("registered", registered); }
    Tensor<float> loss(const Tensor<float>& x) const { return sum(forgotten(registered(x))); }
  } forgetful;
  const Tensor<float> input = Tensor<float>::ones({5, 4});  // requires no grad: never reported
  const auto found = nn::unregistered_parameters(forgetful, forgetful.loss(input));
  BOOST_TEST_REQUIRE(found.size() == 2u);  // the forgotten layer's weight and bias
  std::set<std::string> descriptions;
  for (const auto& parameter : found) {
    descriptions.insert(parameter.description);
    BOOST_TEST((parameter.tensor.same(forgetful.forgotten.weight) || parameter.tensor.same(forgetful.forgotten.bias)));
  }
  BOOST_TEST(descriptions.count("tensor of shape [2, 3] read by linear") == 1u, *descriptions.begin());
  BOOST_TEST(descriptions.count("tensor of shape [2] read by linear") == 1u, *descriptions.rbegin());

  Model model;
  const Tensor<float> encoded = model.encoder.proj(model.encoder.embed(Indices{1, 2, 3}));
  BOOST_TEST(nn::unregistered_parameters(model, sum(model.head(encoded))).empty());
}
