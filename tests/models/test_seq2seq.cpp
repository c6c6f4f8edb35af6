// The attention encoder-decoder: it learns a synthetic task (reversing token sequences) to
// near-perfect greedy and beam accuracy in seconds; beam size 1 equals greedy; save -> load
// gives identical translations; its loss has correct gradients for every parameter, with
// every attention variant and both cells; padding never changes the loss.
#define BOOST_TEST_MODULE seq2seq
#include "xgrad_test.h"

#include "xgrad/framework/blas.h"
#include "xgrad/framework/optim.h"
#include "xgrad/models/seq2seq.h"
#include "reversal_task.h"

using namespace xgrad;
using namespace xgrad::models;
using xgrad::nn::CellKind;
using namespace xgrad::testing::reversal;

namespace {

Seq2SeqOptions small_options(AttentionKind attention = AttentionKind::additive, CellKind cell = CellKind::gru) {
  return {.source_vocabulary = 14, .target_vocabulary = 14, .embedding_size = 16, .encoder_hidden = 32,
          .decoder_hidden = 64, .encoder_layers = 1, .cell = cell, .attention = attention, .dropout = 0.0};
}

// The reversal examples the model trains on (drawn first) and the held-out ones.
struct ReversalData {
  std::vector<Example> train, held_out;
};

ReversalData reversal_data() {
  Generator data(2);
  ReversalData drawn;
  drawn.train = reversal_examples(2000, 10, data);
  drawn.held_out = reversal_examples(200, 10, data);
  return drawn;
}

// Sixteen epochs: after eight, one initialisation in six (seeds 1-6, with either order of
// rounding in the recurrent products) still stood at 92-93%; after twelve, with oneDNN's
// products in place of OpenBLAS's (other rounding), this seed stood at 94% in the sanitizer
// build, so the margin is four more epochs. The model is left in eval mode.
void train_to_reverse(Seq2Seq<float>& model, const std::vector<Example>& train) {
  optim::Adam<float> adam(model.named_parameters(), {.lr = 0.01});
  for (int epoch = 0; epoch < 16; ++epoch) train_epoch(model, adam, train);
  model.eval();
}

}  // namespace

BOOST_AUTO_TEST_CASE(learns_to_reverse_sequences_with_greedy_and_beam_search) {
  manual_seed(1);
  const auto [train, held_out] = reversal_data();
  Seq2Seq<float> model(small_options());
  train_to_reverse(model, train);
  const PaddedBatch test = sources(held_out, 0, held_out.size());
  const double greedy = sequence_accuracy(model.translate(test), held_out);
  const double beam = sequence_accuracy(model.translate(test, {.beam_size = 4}), held_out);
  BOOST_TEST_MESSAGE("reversal accuracy: greedy " << greedy << ", beam " << beam);
  BOOST_TEST(greedy >= 0.95);
  BOOST_TEST(beam >= 0.95);
  // The loss on held-out data is small as well, and counts every target token (with <eos>).
  const auto [total, tokens] = model.evaluate_loss(test, targets(held_out, 0, held_out.size()));
  std::size_t expected_tokens = 0;
  for (const Example& e : held_out) expected_tokens += e.target.size() + 1;
  BOOST_TEST(tokens == expected_tokens);
  BOOST_TEST(total / double(tokens) < 0.2);
  // Rounded for inference, the model still reverses: int8 costs at most one sentence in a
  // hundred here, bf16 as much (CTranslate2 and Marian report int8 within half a BLEU point).
  // The values stay rounded, so int8 rounds the bf16 ones: the finer rounding first.
  for (const WeightFormat format : {WeightFormat::bf16, WeightFormat::int8}) {
    model.set_weight_format(format);
    const double rounded = sequence_accuracy(model.translate(test, {.beam_size = 4}), held_out);
    BOOST_TEST_MESSAGE(weight_format_name(format) << " accuracy: beam " << rounded);
    BOOST_TEST(rounded >= beam - 0.01, weight_format_name(format) << ": " << rounded << " against " << beam);
    model.set_weight_format(WeightFormat::float32);
  }
}

// Mixed-precision training: every product's operands rounded to bfloat16 (8 significant bits),
// the weights, gradients and Adam in float32. The model learns the task as well as in float32.
BOOST_AUTO_TEST_CASE(learns_to_reverse_sequences_with_bf16_products) {
  manual_seed(1);
  const auto [train, held_out] = reversal_data();
  Seq2Seq<float> model(small_options());
  blas::set_float_products(blas::FloatProducts::bf16);
  train_to_reverse(model, train);
  blas::set_float_products(blas::FloatProducts::float32);
  const PaddedBatch test = sources(held_out, 0, held_out.size());
  const double greedy = sequence_accuracy(model.translate(test), held_out);
  BOOST_TEST_MESSAGE("reversal accuracy after bf16 training: greedy " << greedy);
  BOOST_TEST(greedy >= 0.95);
}

BOOST_AUTO_TEST_CASE(beam_search_of_width_one_equals_greedy) {
  for (bool input_feeding : {false, true}) {
    manual_seed(3);
    Seq2SeqOptions options = small_options(AttentionKind::general, CellKind::lstm);
    options.input_feeding = input_feeding;
    Seq2Seq<float> model(options);
    model.eval();
    Generator data(4);
    const std::vector<Example> examples = reversal_examples(16, 10, data);
    const PaddedBatch batch = sources(examples, 0, examples.size());
    const std::vector<Translation> greedy = model.greedy(batch);
    const std::vector<Translation> beam = model.beam_search(batch, {.beam_size = 1, .length_penalty = 0.0});
    for (std::size_t i = 0; i < examples.size(); ++i) {
      BOOST_TEST(beam[i].tokens == greedy[i].tokens);
      BOOST_TEST(beam[i].score == greedy[i].score, boost::test_tools::tolerance(1e-9));
      BOOST_TEST(beam[i].attention == greedy[i].attention);
    }
  }
}

BOOST_AUTO_TEST_CASE(translations_carry_an_attention_row_per_step) {
  manual_seed(5);
  Seq2Seq<float> model(small_options());
  model.eval();
  Generator data(6);
  const std::vector<Example> examples = reversal_examples(3, 10, data);
  for (const Translation& t : model.translate(sources(examples, 0, 3), {.beam_size = 3, .max_length_extra = 4})) {
    BOOST_TEST(t.attention.shape()[0] >= t.tokens.size());
    BOOST_TEST(t.attention.shape()[0] <= t.tokens.size() + 1);
  }
  const std::vector<Translation> greedy = model.translate(sources(examples, 0, 3));
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(greedy[i].attention.shape()[1] == examples[i].source.size());  // padding is not drawn
    for (std::size_t r = 0; r < greedy[i].attention.shape()[0]; ++r) {
      // A sum of one weight per source word, each weight a few ulps off (exp, then a division).
      const double bound = xgrad::testing::sum_error_bound<float>(4 * examples[i].source.size(), 1.0);
      BOOST_TEST(xt::sum(xt::view(greedy[i].attention, r))() == 1.0f, boost::test_tools::tolerance(float(bound)));
    }
  }
}

// Beam search repeats each sentence's encoding for its hypotheses; multihead attention keeps
// several rows per sentence (one per head), which must move together.
BOOST_AUTO_TEST_CASE(beam_search_keeps_sentences_apart_with_every_attention) {
  Generator data(8);
  const std::vector<Example> examples = reversal_examples(3, 10, data);
  for (AttentionKind attention : {AttentionKind::additive, AttentionKind::multihead, AttentionKind::local_predictive}) {
    BOOST_TEST_CONTEXT("attention " << to_string(attention)) {
      manual_seed(9);
      Seq2Seq<float> model(small_options(attention));
      model.eval();
      const std::vector<Translation> together = model.translate(sources(examples, 0, 3), {.beam_size = 3});
      BOOST_TEST_REQUIRE(together.size() == 3u);
      for (std::size_t i = 0; i < 3; ++i) {
        BOOST_TEST(together[i].tokens == model.translate(sources(examples, i, i + 1), {.beam_size = 3})[0].tokens);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(save_and_load_give_identical_translations) {
  testing::TempDir dir;
  Generator data(7);
  const std::vector<Example> examples = reversal_examples(8, 10, data);
  const PaddedBatch batch = sources(examples, 0, examples.size());
  manual_seed(8);
  Seq2Seq<float> trained(small_options(AttentionKind::local_predictive));
  trained.eval();
  nn::save_state_dict(trained, dir.file("model.safetensors"));
  manual_seed(9);  // different initial weights, replaced by the loaded ones
  Seq2Seq<float> loaded(seq2seq_options_from_json(to_json(trained.options())));
  loaded.eval();
  nn::load_state_dict(loaded, dir.file("model.safetensors"));
  const auto a = trained.translate(batch, {.beam_size = 3});
  const auto b = loaded.translate(batch, {.beam_size = 3});
  for (std::size_t i = 0; i < a.size(); ++i) {
    BOOST_TEST(a[i].tokens == b[i].tokens);
    BOOST_TEST(a[i].score == b[i].score);
  }
}

BOOST_AUTO_TEST_CASE(loss_gradients_for_every_attention_and_cell) {
  Generator data(10);
  const std::vector<Example> examples = reversal_examples(2, 3, data);
  const PaddedBatch source = sources(examples, 0, 2);
  const TargetBatch target = targets(examples, 0, 2);
  struct Case {
    AttentionKind attention;
    CellKind cell;
    bool input_feeding;
  };
  for (const Case c : {Case{AttentionKind::additive, CellKind::gru, false}, Case{AttentionKind::general, CellKind::lstm, true},
                       Case{AttentionKind::dot, CellKind::gru, false}, Case{AttentionKind::multihead, CellKind::lstm, false},
                       Case{AttentionKind::local_predictive, CellKind::gru, true},
                       Case{AttentionKind::scaled_dot, CellKind::rnn, false}}) {
    BOOST_TEST_CONTEXT("attention " << to_string(c.attention) << ", cell " << to_string(c.cell)) {
      manual_seed(11);
      Seq2Seq<double> model({.source_vocabulary = 8, .target_vocabulary = 8, .embedding_size = 3, .encoder_hidden = 2,
                             .decoder_hidden = 4, .cell = c.cell, .attention = c.attention, .input_feeding = c.input_feeding,
                             .attention_heads = 2, .local_window = 2, .dropout = 0.0});
      const GradcheckResult result =
          gradcheck([&](const std::vector<Tensor<double>>&) { return model.loss(source, target, {.label_smoothing = 0.1}); }, {},
                    {.names = model.named_parameters()});
      BOOST_TEST(result.passed, result.report);
    }
  }
}

BOOST_AUTO_TEST_CASE(padding_changes_neither_the_loss_nor_the_translation) {
  manual_seed(12);
  Seq2Seq<double> model(
      {.source_vocabulary = 14, .target_vocabulary = 14, .embedding_size = 8, .encoder_hidden = 8, .decoder_hidden = 16, .dropout = 0.0});
  model.eval();
  Generator data(13);
  std::vector<Example> examples = reversal_examples(2, 10, data);
  examples[1].source.resize(std::max<std::size_t>(3, examples[0].source.size() + 2), first_symbol);
  examples[1].target.assign(examples[1].source.rbegin(), examples[1].source.rend());
  // The short sentence inside a padded batch, and alone.
  const double together = model.loss(sources(examples, 0, 2), targets(examples, 0, 2)).item();
  const double first_alone = model.loss(sources(examples, 0, 1), targets(examples, 0, 1)).item();
  const double second_alone = model.loss(sources(examples, 1, 2), targets(examples, 1, 2)).item();
  const double n0 = double(examples[0].target.size() + 1), n1 = double(examples[1].target.size() + 1);
  BOOST_TEST(together == (first_alone * n0 + second_alone * n1) / (n0 + n1), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(model.translate(sources(examples, 0, 2))[0].tokens == model.translate(sources(examples, 0, 1))[0].tokens);
}

BOOST_AUTO_TEST_CASE(partial_teacher_forcing_trains_on_its_own_predictions) {
  manual_seed(14);
  Seq2Seq<float> model(small_options());
  Generator data(15), coin(16);
  const std::vector<Example> examples = reversal_examples(8, 10, data);
  Tensor<float> loss = model.loss(sources(examples, 0, 8), targets(examples, 0, 8), {.teacher_forcing = 0.5, .generator = &coin});
  BOOST_TEST(std::isfinite(loss.item()));
  loss.backward();
  BOOST_TEST(xt::any(xt::not_equal(model.named_parameters().front().second.grad(), 0.0f)));
}

BOOST_AUTO_TEST_CASE(configuration_and_input_errors) {
  const Seq2SeqOptions options = small_options(AttentionKind::local_monotonic, CellKind::lstm);
  const Seq2SeqOptions round_trip = seq2seq_options_from_json(to_json(options));
  BOOST_TEST(to_json(round_trip) == to_json(options));
  BOOST_CHECK_THROW(seq2seq_options_from_json("{\"source_vocabulary\": 3}"), std::invalid_argument);
  BOOST_CHECK_THROW(seq2seq_options_from_json("not json"), std::invalid_argument);
  BOOST_CHECK_THROW(attention_kind_from_string("bilinear"), std::invalid_argument);
  // A configuration file cannot make the program allocate an absurd model.
  auto refused = [](Seq2SeqOptions options, const std::string& named) {
    try {
      seq2seq_options_from_json(to_json(options));
      BOOST_ERROR("the configuration was accepted; expected an error naming " << named);
    } catch (const std::invalid_argument& e) {
      BOOST_TEST(std::string(e.what()).find(named) != std::string::npos, e.what());
    }
  };
  Seq2SeqOptions huge = small_options();
  huge.embedding_size = 1 << 20;
  refused(huge, "embedding_size");
  huge = small_options();
  huge.target_vocabulary = 5000000;
  huge.decoder_hidden = 4096;
  refused(huge, "parameters");
  huge = small_options();
  huge.encoder_layers = 0;
  refused(huge, "encoder_layers");
  // Numbers that a whole-number field cannot hold, and keys the options do not have (the
  // first found by fuzz_model_files), are refused by name before any conversion.
  auto refused_text = [](const std::string& from, const std::string& to, const std::string& named) {
    std::string text = to_json(small_options());
    text.replace(text.find(from), from.size(), to);
    try {
      seq2seq_options_from_json(text);
      BOOST_ERROR("'" << to << "' was accepted; expected an error naming " << named);
    } catch (const std::invalid_argument& e) {
      BOOST_TEST(std::string(e.what()).find(named) != std::string::npos, e.what());
    }
  };
  refused_text("\"target_vocabulary\": 14", "\"target_vocabulary\": 5e21", "'target_vocabulary' is 5e+21");
  refused_text("\"embedding_size\": 16", "\"embedding_size\": -16", "'embedding_size' is -16; expected a whole number >= 0");
  refused_text("\"pad_id\": 0", "\"pad_id\": 0.5", "'pad_id' is 0.5");
  refused_text("\"attention\"", "\"attenvion\"", "unknown key 'attenvion'");
  try {
    Seq2Seq<float> mismatched(small_options(AttentionKind::dot));  // decoder 64 vs 2 x 32: fine
    Seq2SeqOptions bad = small_options(AttentionKind::dot);
    bad.decoder_hidden = 50;
    Seq2Seq<float> model(bad);
    BOOST_FAIL("dot attention with unequal sizes must be refused");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()).find("decoder_hidden (50)") != std::string::npos, e.what());
  }
  Seq2Seq<float> model(small_options());
  PaddedBatch source{Indices{{4, 5}}, {3}};
  BOOST_CHECK_THROW(model.translate(source), shape_error);
  source.lengths = {2};
  BOOST_CHECK_THROW(model.loss(source, TargetBatch{Indices{{2, 4}}, testing::shaped({1, 1}, {4})}), shape_error);
  BOOST_CHECK_THROW(model.translate(source, {.beam_size = 100}), std::invalid_argument);
}
