// The Transformer translator: it learns the reversal task to near-perfect greedy and beam
// accuracy in seconds; decoding over the decoder's key/value cache gives the tokens that
// re-running the whole decoder on each prefix gives, for greedy and beam search; its loss has
// correct gradients for every parameter (tied, shared and learned-position variants); the
// architecture survives a save and load; options that cannot work are refused.
#define BOOST_TEST_MODULE transformer_translator
#include "xgrad_test.h"

#include "reversal_task.h"
#include "xgrad/framework/optim.h"
#include "xgrad/framework/schedulers.h"
#include "xgrad/framework/softmax.h"
#include "xgrad/models/model_directory.h"
#include "xgrad/models/transformer_translator.h"

using namespace xgrad;
using namespace xgrad::models;
using namespace xgrad::testing::reversal;

namespace {

TransformerTranslatorOptions small_options() {
  return {.source_vocabulary = 14, .target_vocabulary = 14, .model_size = 32, .heads = 4, .feedforward_size = 64,
          .encoder_layers = 2, .decoder_layers = 2, .dropout = 0.0};
}

// A StepDecoder without the cache: every step re-runs the whole decoder on the prefix decoded
// so far (what a PyTorch user of nn.Transformer does) and reads the last position.
template <class T>
class RecomputingDecoder final : public StepDecoder<T> {
 public:
  explicit RecomputingDecoder(const TransformerTranslator<T>& model) : model_(model) {}
  std::int64_t sos_id() const override { return model_.options().sos_id; }
  std::int64_t eos_id() const override { return model_.options().eos_id; }
  std::size_t vocabulary_size() const override { return model_.options().target_vocabulary; }

  std::unique_ptr<typename StepDecoder<T>::State> begin(const PaddedBatch& source, std::size_t copies) const override {
    auto state = std::make_unique<Prefixes>();
    std::vector<std::vector<std::int64_t>> rows;
    Batch order;
    for (std::size_t r = 0; r < source.lengths.size() * copies; ++r) {
      const std::size_t b = r / copies;
      rows.emplace_back(source.ids.data() + b * source.ids.shape()[1], source.ids.data() + (b + 1) * source.ids.shape()[1]);
      rows.back().resize(source.lengths[b]);
      order.push_back(r);
    }
    state->source = pad_batch(rows, order, model_.options().pad_id);
    state->prefixes.assign(rows.size(), {});
    return state;
  }

  DecoderStep<T> step(const Indices& previous, typename StepDecoder<T>::State& state, std::size_t position) const override {
    auto& prefixes = static_cast<Prefixes&>(state);
    Indices inputs = Indices::from_shape({previous.size(), position + 1});
    for (std::size_t r = 0; r < previous.size(); ++r) {
      prefixes.prefixes[r].push_back(previous(r));
      std::copy(prefixes.prefixes[r].begin(), prefixes.prefixes[r].end(), inputs.data() + r * (position + 1));
    }
    const Tensor<T> logits = model_.forward(prefixes.source, inputs);  // [N, t + 1, V]
    const Tensor<T> last = xgrad::select(logits, 1, static_cast<std::int64_t>(position));
    return {log_softmax(last, -1), Tensor<T>::zeros({previous.size(), prefixes.source.ids.shape()[1]})};
  }

  void select(typename StepDecoder<T>::State& state, const Indices& rows) const override {
    auto& prefixes = static_cast<Prefixes&>(state);
    std::vector<std::vector<std::int64_t>> moved;
    for (std::size_t r = 0; r < rows.size(); ++r) moved.push_back(prefixes.prefixes[static_cast<std::size_t>(rows(r))]);
    prefixes.prefixes = std::move(moved);
  }

 private:
  struct Prefixes final : StepDecoder<T>::State {
    PaddedBatch source;
    std::vector<std::vector<std::int64_t>> prefixes;
  };
  const TransformerTranslator<T>& model_;
};

// Trains on the reversal task; every Transformer test starts from the same model.
void train_on_reversal(TransformerTranslator<float>& model, std::size_t epochs) {
  Generator data(2);
  const std::vector<Example> train = reversal_examples(2000, 10, data);
  optim::Adam<float> adam(model.named_parameters(), {.lr = 3e-3, .beta2 = 0.98});
  // At a constant rate the model wandered between 92% and 97% (seeds 1-2); decayed, seeds 1-4
  // reach 99-100%.
  optim::WarmupCosineLR schedule(adam, {.warmup_steps = 50, .total_steps = static_cast<std::int64_t>(epochs * 40)});
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) train_epoch(model, adam, train, [&] { schedule.step(); });
  model.eval();
}

}  // namespace

BOOST_AUTO_TEST_CASE(learns_to_reverse_sequences_and_the_cache_decodes_as_recomputation_does) {
  manual_seed(1);
  TransformerTranslator<float> model(small_options());
  train_on_reversal(model, 12);
  Generator data(7);
  const std::vector<Example> held_out = reversal_examples(200, 10, data);
  const PaddedBatch test = sources(held_out, 0, held_out.size());
  const std::vector<Translation> greedy = model.translate(test);
  const std::vector<Translation> beam = model.translate(test, {.beam_size = 4});
  BOOST_TEST_MESSAGE("reversal accuracy: greedy " << sequence_accuracy(greedy, held_out) << ", beam "
                                                  << sequence_accuracy(beam, held_out));
  BOOST_TEST(sequence_accuracy(greedy, held_out) >= 0.95);
  BOOST_TEST(sequence_accuracy(beam, held_out) >= 0.95);
  const auto [total, tokens] = model.evaluate_loss(test, targets(held_out, 0, held_out.size()));
  BOOST_TEST(total / double(tokens) < 0.2);

  // The cache against recomputing the prefix, on the first 40 sentences (a partly trained
  // model would agree as well; this one makes long, confident hypotheses).
  const PaddedBatch few = sources(held_out, 0, 40);
  const RecomputingDecoder<float> recomputing(model);
  const std::vector<Translation> cached_greedy = model.greedy(few), cached_beam = model.beam_search(few, {.beam_size = 3});
  const std::vector<Translation> recomputed_greedy = greedy_search(recomputing, few);
  const std::vector<Translation> recomputed_beam = beam_search(recomputing, few, {.beam_size = 3});
  for (std::size_t i = 0; i < 40; ++i) {
    BOOST_TEST(cached_greedy[i].tokens == recomputed_greedy[i].tokens, "sentence " << i);
    BOOST_TEST(cached_beam[i].tokens == recomputed_beam[i].tokens, "sentence " << i);
    BOOST_TEST(std::abs(cached_beam[i].score - recomputed_beam[i].score) <= 1e-4, "sentence " << i);
  }
  // The n-best lists of the same search start with its best.
  const std::vector<std::vector<Translation>> lists = model.translate_n_best(few, {.beam_size = 3, .n_best = 3});
  for (std::size_t i = 0; i < 40; ++i) {
    BOOST_TEST_REQUIRE(lists[i].size() == 3u, "sentence " << i);
    BOOST_TEST(lists[i][0].tokens == cached_beam[i].tokens, "sentence " << i);
    BOOST_TEST(lists[i][1].score <= lists[i][0].score, "sentence " << i);
  }
}

// One head's cross-attention, as a translation reports it: the heads' reports average to the
// report of the whole layer, over the same tokens.
BOOST_AUTO_TEST_CASE(the_reported_attention_is_a_layers_average_or_one_heads) {
  manual_seed(12);
  TransformerTranslator<double> model(small_options());
  model.eval();
  Generator data(13);
  const std::vector<Example> examples = reversal_examples(3, 10, data);
  const PaddedBatch source = sources(examples, 0, 3);
  model.report_attention({.layer = 0});
  const std::vector<Translation> averaged = model.translate(source);
  std::vector<std::vector<double>> sums(3);
  for (std::size_t head = 0; head < 4; ++head) {
    model.report_attention({.layer = 0, .head = head});
    const std::vector<Translation> one_head = model.translate(source);
    for (std::size_t i = 0; i < 3; ++i) {
      BOOST_TEST_REQUIRE(one_head[i].tokens == averaged[i].tokens);
      BOOST_TEST_REQUIRE(one_head[i].attention.size() == averaged[i].attention.size());
      sums[i].resize(one_head[i].attention.size());
      for (std::size_t j = 0; j < sums[i].size(); ++j) sums[i][j] += one_head[i].attention.data()[j];
    }
  }
  // Weights of at most 1, each rounded to float once: the mean of four is within 2 ε.
  const double tolerance = xgrad::testing::sum_error_bound<float>(2, 1.0);
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < sums[i].size(); ++j) {
      BOOST_TEST(std::abs(sums[i][j] / 4 - averaged[i].attention.data()[j]) <= tolerance, "sentence " << i << ", weight " << j);
    }
  }
}

// Untrained, the distributions are flat and near ties abound: the cache must still give the
// same log-probabilities as recomputation, to float rounding.
BOOST_AUTO_TEST_CASE(cached_steps_give_the_log_probabilities_of_the_whole_decoder) {
  manual_seed(4);
  TransformerTranslator<double> model(small_options());
  model.eval();
  Generator data(5);
  const std::vector<Example> examples = reversal_examples(6, 10, data);
  const PaddedBatch source = sources(examples, 0, 6);
  const TargetBatch target = targets(examples, 0, 6);
  const Tensor<double> whole = log_softmax(model.forward(source, target.inputs), -1);  // [B, T, V]
  const std::unique_ptr<StepDecoder<double>> decoder = model.step_decoder();
  const auto state = decoder->begin(source, 1);
  for (std::size_t t = 0; t < target.inputs.shape()[1]; ++t) {
    Indices previous = Indices::from_shape({6});
    for (std::size_t b = 0; b < 6; ++b) previous(b) = target.inputs(b, t);
    const DecoderStep<double> step = decoder->step(previous, *state, t);
    for (std::size_t b = 0; b < 6; ++b) {
      for (std::size_t v = 0; v < 14; ++v) {
        BOOST_TEST(std::abs(step.log_probs.value()(b, v) - whole.value()(b, t, v)) <= 1e-12, "b " << b << " t " << t);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_of_the_loss_for_every_parameter) {
  for (const auto& [tie, share, positions] : {std::tuple{true, false, PositionKind::sinusoidal},
                                              std::tuple{false, true, PositionKind::learned}}) {
    manual_seed(6);
    TransformerTranslatorOptions options{.source_vocabulary = 9, .target_vocabulary = 9, .model_size = 8, .heads = 2,
                                         .feedforward_size = 12, .encoder_layers = 1, .decoder_layers = 1,
                                         .dropout = 0.0, .positions = positions, .max_positions = 8,
                                         .share_embeddings = share, .tie_output = tie};
    TransformerTranslator<double> model(options);
    Generator data(8);
    const std::vector<Example> examples = reversal_examples(3, 5, data);
    const PaddedBatch source = sources(examples, 0, 3);
    const TargetBatch target = targets(examples, 0, 3);
    const GradcheckResult result = gradcheck(
        [&](const std::vector<Tensor<double>>&) { return model.loss(source, target, {.label_smoothing = 0.1}); }, {},
        {.names = model.named_parameters()});
    BOOST_TEST(result.passed, "tie " << tie << ", share " << share << ": " << result.report);
  }
}

BOOST_AUTO_TEST_CASE(the_model_directory_records_the_architecture) {
  manual_seed(9);
  TransformerTranslator<float> model(small_options());
  model.eval();
  safetensors::Writer weights;
  nn::write_state_dict(model, weights);
  Tokens ten_words;
  for (int i = 0; i < 10; ++i) ten_words.push_back("w" + std::to_string(i));
  const Vocabulary fourteen = Vocabulary::build({ten_words}, {.specials = translation_specials(), .min_frequency = 1});
  BOOST_TEST(fourteen.size() == 14u);
  const ModelFilesInMemory files("m", {{model_file::config, translation_configuration(model)},
                                       {model_file::source_vocabulary, fourteen.to_json()},
                                       {model_file::target_vocabulary, fourteen.to_json()},
                                       {model_file::weights, weights.serialize()}});
  const std::unique_ptr<TranslationModel> loaded = load_translation_model(files, true);
  BOOST_TEST(loaded->model->architecture() == "transformer");
  loaded->model->eval();
  Generator data(10);
  const std::vector<Example> examples = reversal_examples(5, 10, data);
  const PaddedBatch source = sources(examples, 0, 5);
  const std::vector<Translation> before = model.translate(source, {.beam_size = 2});
  const std::vector<Translation> after = loaded->model->translate(source, {.beam_size = 2});
  for (std::size_t i = 0; i < 5; ++i) BOOST_TEST(before[i].tokens == after[i].tokens);
}

BOOST_AUTO_TEST_CASE(options_and_batches_that_cannot_work_are_refused) {
  auto message = [](auto&& f) { return xgrad::testing::error_message<std::exception>(f); };
  TransformerTranslatorOptions odd_heads = small_options();
  odd_heads.heads = 3;
  BOOST_TEST(message([&] { TransformerTranslator<float> m(odd_heads); }) ==
             "TransformerTranslator: heads 3 does not divide model_size 32");
  TransformerTranslatorOptions unequal = small_options();
  unequal.share_embeddings = true;
  unequal.target_vocabulary = 15;
  BOOST_TEST(message([&] { TransformerTranslator<float> m(unequal); }).find("share_embeddings needs one joint vocabulary") !=
             std::string::npos);
  TransformerTranslatorOptions short_positions = small_options();
  short_positions.max_positions = 4;
  TransformerTranslator<float> model(short_positions);
  Generator data(11);
  const std::vector<Example> examples = reversal_examples(4, 10, data);
  const std::string too_long = message([&] { model.loss(sources(examples, 0, 4), targets(examples, 0, 4)); });
  BOOST_TEST(too_long.find("the model reads at most 4 (max_positions)") != std::string::npos, too_long);
  const std::string forcing =
      message([&] { model.loss(sources(examples, 0, 4), targets(examples, 0, 4), {.teacher_forcing = 0.5}); });
  BOOST_TEST(forcing.find("teacher_forcing 0.5") != std::string::npos, forcing);
  BOOST_TEST(message([&] { model.report_attention({.layer = 2}); }).find("the decoder has 2 layers") != std::string::npos);
  BOOST_TEST(message([&] { model.report_attention({.head = 4}); }).find("the layers have 4 heads") != std::string::npos);
  // A hypothesis that reaches max_positions ends there.
  model.eval();
  TransformerTranslator<float> short_model(short_positions);
  short_model.eval();
  const PaddedBatch one = pad_batch({{4, 5}}, {0}, 0);
  for (const Translation& t : short_model.translate(one, {.max_length_extra = 20})) BOOST_TEST(t.tokens.size() <= 4u);
  // Even when a minimum output length forbids <eos> until later: there it is the only token left.
  for (const std::size_t beam : {1, 2}) {
    const SearchOptions longer{.beam_size = beam, .max_length_extra = 20, .min_output_length = 10};
    for (const Translation& t : short_model.translate(one, longer)) BOOST_TEST(t.tokens.size() == 4u, "beam " << beam);
  }
}
