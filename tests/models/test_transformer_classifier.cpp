// The Transformer-encoder classifier: it learns the presence task in seconds with either
// pooling, attention pooling peaking on the trigger token; padding changes neither the
// logits nor the pooling weights; gradients are correct for every parameter with both
// poolings and both kinds of positions; save -> load gives identical predictions; options
// and inputs that cannot work are refused.
#define BOOST_TEST_MODULE transformer_classifier
#include "xgrad_test.h"

#include "presence_task.h"
#include "xgrad/models/transformer_classifier.h"

using namespace xgrad;
using namespace xgrad::models;
using namespace xgrad::testing::presence;

namespace {

TransformerClassifierOptions small_options(TransformerPooling pooling) {
  return {.vocabulary = vocabulary, .classes = 2, .model_size = 16, .heads = 2, .feedforward_size = 32,
          .encoder_layers = 1, .dropout = 0.1, .max_positions = 16, .pooling = pooling};
}

// Tiny sizes for the gradient checks: every parameter, no dropout.
TransformerClassifierOptions tiny_options(TransformerPooling pooling, PositionKind positions) {
  return {.vocabulary = vocabulary, .classes = 3, .model_size = 4, .heads = 2, .feedforward_size = 3,
          .encoder_layers = 2, .dropout = 0.0, .activation = nn::TransformerActivation::gelu,
          .positions = positions, .max_positions = 12, .pooling = pooling};
}

}  // namespace

BOOST_AUTO_TEST_CASE(learns_token_presence_with_either_pooling) {
  for (TransformerPooling pooling : {TransformerPooling::attention, TransformerPooling::mean}) {
    BOOST_TEST_CONTEXT(to_string(pooling) << " pooling") {
      manual_seed(1);
      TransformerClassifier<float> model(small_options(pooling));
      const Learned learned = learn_presence(model, 0.005, 2);
      BOOST_TEST_MESSAGE(to_string(pooling) << " pooling: accuracy " << learned.accuracy << ", weights peak on the token in "
                                            << learned.peaks << " of positives");
      BOOST_TEST(learned.accuracy >= 0.99);
      if (pooling == TransformerPooling::attention) BOOST_TEST(learned.peaks >= 0.95);
    }
  }
}

// A text's logits and weights are the same alone and beside longer texts (padded). The two
// differ only in the order of sums of at most model_size + feedforward_size terms of
// magnitude about 1 per layer, so by a few K·ε: 1e-12 in double.
BOOST_AUTO_TEST_CASE(padding_changes_neither_logits_nor_weights) {
  for (TransformerPooling pooling : {TransformerPooling::mean, TransformerPooling::attention}) {
    BOOST_TEST_CONTEXT(to_string(pooling) << " pooling") {
      manual_seed(3);
      TransformerClassifier<double> model(small_options(pooling));
      model.eval();
      Generator data(4);
      const std::vector<Example> examples = presence_examples(6, data);
      const Classification<double> together = model.forward(batch_of(examples, 0, examples.size()));
      const std::size_t width = together.attention.shape()[1];
      for (std::size_t i = 0; i < examples.size(); ++i) {
        const std::size_t length = examples[i].tokens.size();
        const Classification<double> alone = model.forward(batch_of(examples, i, i + 1));
        testing::check_close(xt::view(together.logits.value(), i), xt::view(alone.logits.value(), 0), 1e-12);
        testing::check_close(xt::view(together.attention.value(), i, xt::range(0, length)),
                             xt::view(alone.attention.value(), 0), 1e-12);
        for (std::size_t t = length; t < width; ++t) BOOST_TEST(together.attention.value()(i, t) == 0.0);
        if (pooling == TransformerPooling::mean) {
          for (std::size_t t = 0; t < length; ++t) BOOST_TEST(alone.attention.value()(0, t) == 1.0 / double(length));
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_for_every_parameter_with_both_poolings) {
  Generator data(8);
  const std::vector<Example> examples = presence_examples(3, data);
  for (TransformerPooling pooling : {TransformerPooling::attention, TransformerPooling::mean}) {
    for (PositionKind positions : {PositionKind::sinusoidal, PositionKind::learned}) {
      BOOST_TEST_CONTEXT(to_string(pooling) << " pooling, " << to_string(positions) << " positions") {
        manual_seed(9);
        TransformerClassifier<double> model(tiny_options(pooling, positions));
        const Indices labels{0, 2, 1};
        const GradcheckResult result = gradcheck(
            [&](const std::vector<Tensor<double>>&) { return model.loss(batch_of(examples, 0, 3), labels, 0.1); }, {},
            {.names = model.named_parameters()});
        BOOST_TEST(result.passed, result.report);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(save_and_load_give_identical_predictions) {
  testing::TempDir dir;
  Generator data(5);
  const std::vector<Example> examples = presence_examples(10, data);
  const PaddedBatch batch = batch_of(examples, 0, examples.size());
  for (TransformerPooling pooling : {TransformerPooling::attention, TransformerPooling::mean}) {
    manual_seed(6);
    TransformerClassifierOptions options = small_options(pooling);
    options.positions = PositionKind::learned;
    TransformerClassifier<float> saved(options);
    saved.eval();
    nn::save_state_dict(saved, dir.file("classifier.safetensors"));
    manual_seed(7);
    TransformerClassifier<float> loaded(transformer_classifier_options_from_json(to_json(saved.options())));
    loaded.eval();
    nn::load_state_dict(loaded, dir.file("classifier.safetensors"));
    BOOST_TEST(saved.forward(batch).logits.value() == loaded.forward(batch).logits.value());
    BOOST_TEST(saved.forward(batch).attention.value() == loaded.forward(batch).attention.value());
  }
}

BOOST_AUTO_TEST_CASE(parameter_names_and_count) {
  TransformerClassifier<float> attention(small_options(TransformerPooling::attention));
  TransformerClassifier<float> mean(small_options(TransformerPooling::mean));
  std::vector<std::string> names;
  for (const auto& [name, p] : attention.named_parameters()) names.push_back(name);
  for (const char* expected : {"embedding.weight", "encoder.layers.0.self_attn.in_proj_weight", "encoder.norm.weight",
                               "query", "pooling.in_proj_weight", "pooling.out_proj.weight", "output.weight", "output.bias"}) {
    BOOST_TEST((std::find(names.begin(), names.end(), expected) != names.end()), expected);
  }
  for (auto* model : {&attention, &mean}) {
    std::size_t parameters = 0;
    for (const Tensor<float>& p : model->parameters()) parameters += p.size();
    BOOST_TEST(double(parameters) == estimated_parameters(model->options()));
  }
  TransformerClassifierOptions learned = small_options(TransformerPooling::mean);
  learned.positions = PositionKind::learned;
  TransformerClassifier<float> with_positions(learned);
  std::size_t parameters = 0;
  for (const Tensor<float>& p : with_positions.parameters()) parameters += p.size();
  BOOST_TEST(double(parameters) == estimated_parameters(learned));
}

BOOST_AUTO_TEST_CASE(configuration_and_input_errors) {
  const TransformerClassifierOptions options = small_options(TransformerPooling::mean);
  BOOST_TEST(to_json(transformer_classifier_options_from_json(to_json(options))) == to_json(options));
  BOOST_CHECK_THROW(transformer_classifier_options_from_json("{}"), std::invalid_argument);
  BOOST_CHECK_THROW(transformer_pooling_from_string("max"), std::invalid_argument);
  const auto refused = [](TransformerClassifierOptions bad, const std::string& expected) {
    const std::string message = testing::error_message<std::invalid_argument>([&] { TransformerClassifier<float>{bad}; });
    BOOST_TEST(message.find(expected) != std::string::npos, message);
  };
  TransformerClassifierOptions bad = options;
  bad.heads = 3;
  refused(bad, "TransformerClassifier: heads 3 does not divide model_size 16");
  bad = options;
  bad.pad_id = 22;
  refused(bad, "TransformerClassifier: pad_id 22 is outside the vocabulary");
  bad = options;
  bad.encoder_layers = 0;
  refused(bad, "TransformerClassifier: encoder_layers is 0");
  bad = options;
  bad.vocabulary = 9000000;
  bad.model_size = 60000;
  refused(bad, "parameters");
  TransformerClassifier<float> model(options);
  BOOST_CHECK_THROW(model.forward(PaddedBatch{Indices{{2, 3}}, {0}}), shape_error);
  const std::string too_long =
      testing::error_message<shape_error>([&] { model.forward(PaddedBatch{Indices(Shape{1, 17}, 2), {17}}); });
  BOOST_TEST(too_long.find("TransformerClassifier: a batch of 17 positions; the model reads at most 16") != std::string::npos,
             too_long);
  BOOST_CHECK_THROW(model.loss(PaddedBatch{Indices{{2, 3}}, {2}}, Indices{5}), index_error);
}
