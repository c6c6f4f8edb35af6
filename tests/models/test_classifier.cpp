// The attention-pooling classifier: it learns a task whose label is the presence of one
// token anywhere, to >= 99% in seconds, with the attention peaking on that token; a sequence
// gets the same prediction alone and inside a padded batch; save -> load gives identical
// predictions; gradients are correct for both poolings and cells.
#define BOOST_TEST_MODULE classifier
#include "xgrad_test.h"

#include "presence_task.h"
#include "xgrad/models/classifier.h"

using namespace xgrad;
using namespace xgrad::models;
using xgrad::nn::CellKind;
using namespace xgrad::testing::presence;

namespace {

ClassifierOptions small_options(PoolingKind pooling = PoolingKind::additive, CellKind cell = CellKind::lstm) {
  return {.vocabulary = vocabulary, .classes = 2, .embedding_size = 16, .hidden_size = 16, .cell = cell, .pooling = pooling,
          .attention_size = 16, .attention_heads = 2, .dropout = 0.1};
}

}  // namespace

BOOST_AUTO_TEST_CASE(learns_token_presence_and_attends_to_the_token) {
  manual_seed(1);
  SequenceClassifier<float> model(small_options());
  const Learned learned = learn_presence(model, 0.01, 2);
  BOOST_TEST_MESSAGE("accuracy " << learned.accuracy << ", attention peaks on the token in " << learned.peaks
                                 << " of positives");
  BOOST_TEST(learned.accuracy >= 0.99);
  BOOST_TEST(learned.peaks >= 0.95);
}

BOOST_AUTO_TEST_CASE(same_prediction_alone_and_in_a_padded_batch) {
  for (PoolingKind pooling : {PoolingKind::additive, PoolingKind::multihead}) {
    manual_seed(3);
    SequenceClassifier<double> model(small_options(pooling, CellKind::gru));
    model.eval();
    Generator data(4);
    const std::vector<Example> examples = presence_examples(6, data);
    const Classification<double> together = model.forward(batch_of(examples, 0, examples.size()));
    for (std::size_t i = 0; i < examples.size(); ++i) {
      const Classification<double> alone = model.forward(batch_of(examples, i, i + 1));
      testing::check_close(xt::view(together.logits.value(), i), xt::view(alone.logits.value(), 0), 1e-12);
      // Padding positions receive no attention.
      for (std::size_t t = examples[i].tokens.size(); t < together.attention.shape()[1]; ++t) {
        BOOST_TEST(together.attention.value()(i, t) == 0.0);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(save_and_load_give_identical_predictions) {
  testing::TempDir dir;
  Generator data(5);
  const std::vector<Example> examples = presence_examples(10, data);
  manual_seed(6);
  SequenceClassifier<float> saved(small_options(PoolingKind::multihead));
  saved.eval();
  nn::save_state_dict(saved, dir.file("classifier.safetensors"));
  manual_seed(7);
  SequenceClassifier<float> loaded(classifier_options_from_json(to_json(saved.options())));
  loaded.eval();
  nn::load_state_dict(loaded, dir.file("classifier.safetensors"));
  const PaddedBatch batch = batch_of(examples, 0, examples.size());
  BOOST_TEST(saved.forward(batch).logits.value() == loaded.forward(batch).logits.value());
}

BOOST_AUTO_TEST_CASE(gradients_for_both_poolings_and_cells) {
  Generator data(8);
  const std::vector<Example> examples = presence_examples(3, data);
  for (PoolingKind pooling : {PoolingKind::additive, PoolingKind::multihead}) {
    for (CellKind cell : {CellKind::lstm, CellKind::gru}) {
      BOOST_TEST_CONTEXT(to_string(pooling) << " pooling, " << to_string(cell)) {
        manual_seed(9);
        SequenceClassifier<double> model({.vocabulary = 22, .classes = 3, .embedding_size = 3, .hidden_size = 2,
                                          .cell = cell, .pooling = pooling, .attention_size = 3, .attention_heads = 2,
                                          .dropout = 0.0});
        Indices labels{0, 2, 1};
        const GradcheckResult result = gradcheck(
            [&](const std::vector<Tensor<double>>&) { return model.loss(batch_of(examples, 0, 3), labels, 0.1); }, {},
            {.names = model.named_parameters()});
        BOOST_TEST(result.passed, result.report);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(configuration_and_input_errors) {
  const ClassifierOptions options = small_options(PoolingKind::multihead, CellKind::gru);
  BOOST_TEST(to_json(classifier_options_from_json(to_json(options))) == to_json(options));
  BOOST_CHECK_THROW(classifier_options_from_json("{}"), std::invalid_argument);
  BOOST_CHECK_THROW(pooling_kind_from_string("max"), std::invalid_argument);
  ClassifierOptions huge = small_options();
  huge.vocabulary = 9000000;
  huge.embedding_size = 60000;
  try {
    classifier_options_from_json(to_json(huge));
    BOOST_FAIL("a configuration asking for 5e11 parameters must be refused");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("parameters") != std::string::npos, e.what());
  }
  huge = small_options();
  huge.classes = 0;
  BOOST_CHECK_THROW(classifier_options_from_json(to_json(huge)), std::invalid_argument);
  ClassifierOptions bad = options;
  bad.attention_heads = 5;  // does not divide 2 x 16
  BOOST_CHECK_THROW(SequenceClassifier<float>{bad}, std::invalid_argument);
  SequenceClassifier<float> model(small_options());
  BOOST_CHECK_THROW(model.forward(PaddedBatch{Indices{{2, 3}}, {0}}), shape_error);
  BOOST_CHECK_THROW(model.loss(PaddedBatch{Indices{{2, 3}}, {2}}, Indices{5}), index_error);
}
