// Greedy and beam search over a hand-written decoder: a fixed table of probabilities where the
// beam's best hypothesis is not greedy's, worked out by hand.
#define BOOST_TEST_MODULE search
#include "xgrad_test.h"

#include <array>
#include <cmath>

#include "xgrad/models/search.h"

using namespace xgrad;
using namespace xgrad::models;

namespace {

constexpr std::int64_t pad = 0, sos = 1, eos = 2, a = 3, b = 4;
constexpr std::size_t vocabulary = 5;

// The next token's probabilities (by id) given the tokens so far, <sos> first:
//   <sos>            a .5    b .4    <eos> .08
//   <sos> a          a .45   b .43   <eos> .1
//   <sos> b          a .9    b .01   <eos> .08
//   <sos> a x        a .2    b .2    <eos> .5
//   <sos> b x        a .04   b .04   <eos> .9
// Greedy takes a, a, <eos>: p = .5 * .45 * .5 = .1125. A beam of two keeps "a" and "b", then
// "b a" (.36) and "a a" (.225), which swaps the rows, then ends "b a" at p = .36 * .9 = .324.
std::array<double, vocabulary> next_token_probabilities(const std::vector<std::int64_t>& tokens) {
  if (tokens == std::vector<std::int64_t>{sos}) return {.01, .01, .08, .5, .4};
  if (tokens == std::vector<std::int64_t>{sos, a}) return {.01, .01, .1, .45, .43};
  if (tokens == std::vector<std::int64_t>{sos, b}) return {.005, .005, .08, .9, .01};
  if (tokens.size() == 3 && tokens[1] == a) return {.05, .05, .5, .2, .2};
  if (tokens.size() == 3 && tokens[1] == b) return {.01, .01, .9, .04, .04};
  return {.2, .2, .2, .2, .2};
}

// Sentence 1 reads the table with a and b swapped, so that its rows must not mix with
// sentence 0's.
std::int64_t as_seen_by(std::size_t sentence, std::int64_t token) {
  if (sentence == 0 || (token != a && token != b)) return token;
  return token == a ? b : a;
}

// The ids of every hand-written decoder here.
class SmallVocabularyDecoder : public StepDecoder<double> {
 public:
  std::int64_t sos_id() const override { return sos; }
  std::int64_t eos_id() const override { return eos; }
  std::size_t vocabulary_size() const override { return vocabulary; }
};

// The probabilities come from the tokens the state holds, not from `previous` alone: a select
// that moved the wrong rows would change them.
class TableDecoder final : public SmallVocabularyDecoder {
 public:
  std::unique_ptr<State> begin(const PaddedBatch& source, std::size_t copies) const override {
    auto state = std::make_unique<Rows>();
    state->source_width = source.ids.shape()[1];
    for (std::size_t row = 0; row < source.lengths.size() * copies; ++row) state->rows.push_back({row / copies, {}});
    return state;
  }

  DecoderStep<double> step(const Indices& previous, State& state, std::size_t position) const override {
    Rows& rows = static_cast<Rows&>(state);
    const std::size_t count = rows.rows.size();
    Array<double> log_probs = Array<double>::from_shape({count, vocabulary});
    Array<double> weights(Shape{count, rows.source_width}, 0.0);  // attends to source position `position`
    for (std::size_t r = 0; r < count; ++r) {
      Row& row = rows.rows[r];
      row.tokens.push_back(as_seen_by(row.sentence, previous(r)));
      const std::array<double, vocabulary> p = next_token_probabilities(row.tokens);
      for (std::size_t v = 0; v < vocabulary; ++v) {
        log_probs(r, v) = std::log(p[static_cast<std::size_t>(as_seen_by(row.sentence, std::int64_t(v)))]);
      }
      weights(r, std::min(position, rows.source_width - 1)) = 1;
    }
    return {Tensor<double>(std::move(log_probs)), Tensor<double>(std::move(weights))};
  }

  void select(State& state, const Indices& rows) const override {
    std::vector<Row>& current = static_cast<Rows&>(state).rows;
    std::vector<Row> selected;
    for (std::size_t r = 0; r < rows.size(); ++r) selected.push_back(current[static_cast<std::size_t>(rows(r))]);
    current = std::move(selected);
  }

 private:
  struct Row {
    std::size_t sentence;
    std::vector<std::int64_t> tokens;  // as sentence 0 would see them
  };
  struct Rows final : State {
    std::size_t source_width = 0;
    std::vector<Row> rows;
  };
};

// The decoder never reads the ids, only their shape and the lengths.
PaddedBatch two_sentences() { return {Indices(Shape{2, 4}, pad), {4, 3}}; }

// The decoder attends to source position t at step t.
Array<float> attention_moving_along(std::size_t steps, std::size_t length) {
  Array<float> attention(Shape{steps, length}, 0.0f);
  for (std::size_t t = 0; t < steps; ++t) attention(t, t) = 1;
  return attention;
}

}  // namespace

BOOST_AUTO_TEST_CASE(beam_search_finds_the_hypothesis_greedy_misses) {
  const TableDecoder decoder;
  const PaddedBatch source = two_sentences();
  const std::vector<Translation> greedy = greedy_search(decoder, source);
  const std::vector<Translation> beam = beam_search(decoder, source, {.beam_size = 2});
  BOOST_TEST_REQUIRE(greedy.size() == 2u);
  BOOST_TEST_REQUIRE(beam.size() == 2u);
  BOOST_TEST(greedy[0].tokens == (std::vector<std::int64_t>{a, a}));
  BOOST_TEST(greedy[1].tokens == (std::vector<std::int64_t>{b, b}));
  BOOST_TEST(beam[0].tokens == (std::vector<std::int64_t>{b, a}));
  BOOST_TEST(beam[1].tokens == (std::vector<std::int64_t>{a, b}));
  const auto tolerance = boost::test_tools::tolerance(1e-12);
  for (std::size_t sentence = 0; sentence < 2; ++sentence) {
    BOOST_TEST(greedy[sentence].score == std::log(.5) + std::log(.45) + std::log(.5), tolerance);
    // Three steps with <eos>, ranked by log p / 3 (length_penalty 1).
    BOOST_TEST(beam[sentence].score == (std::log(.4) + std::log(.9) + std::log(.9)) / 3, tolerance);
    const std::size_t length = source.lengths[sentence];
    BOOST_TEST(greedy[sentence].attention == attention_moving_along(3, length));
    BOOST_TEST(beam[sentence].attention == attention_moving_along(3, length));
  }
}

BOOST_AUTO_TEST_CASE(a_beam_of_one_is_greedy_and_a_beam_wider_than_the_vocabulary_is_refused) {
  const TableDecoder decoder;
  const PaddedBatch source = two_sentences();
  const std::vector<Translation> greedy = greedy_search(decoder, source);
  const std::vector<Translation> beam = beam_search(decoder, source, {.beam_size = 1, .length_penalty = 0.0});
  for (std::size_t sentence = 0; sentence < 2; ++sentence) {
    BOOST_TEST(beam[sentence].tokens == greedy[sentence].tokens);
    BOOST_TEST(beam[sentence].score == greedy[sentence].score, boost::test_tools::tolerance(1e-12));
  }
  const std::string message =
      xgrad::testing::error_message<std::invalid_argument>([&] { beam_search(decoder, source, {.beam_size = 6}); });
  BOOST_TEST(message.find("beam size 6 must lie in [1, 5]") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(decoding_stops_at_the_length_limit) {
  const TableDecoder decoder;  // after one token <eos> is never the most likely
  const PaddedBatch source = two_sentences();
  const SearchOptions limit{.beam_size = 2, .max_length_ratio = 0.0, .max_length_extra = 2};
  const std::vector<Translation> beam = beam_search(decoder, source, limit);
  BOOST_TEST(beam[0].tokens == (std::vector<std::int64_t>{b, a}));  // .36 against .225 for "a a"
  BOOST_TEST(beam[0].score == (std::log(.4) + std::log(.9)) / 3, boost::test_tools::tolerance(1e-12));
  const std::vector<Translation> greedy = greedy_search(decoder, source, limit);
  BOOST_TEST(greedy[0].tokens == (std::vector<std::int64_t>{a, a}));
  BOOST_TEST(greedy[0].attention == attention_moving_along(2, source.lengths[0]));
}

// Sampling draws each token from the table: over many copies of one sentence the first tokens
// come as often as their probabilities say; top-k 1 and temperature 0 are greedy, and the same
// seed gives the same tokens.
BOOST_AUTO_TEST_CASE(sampling_follows_the_probabilities_and_is_greedy_at_temperature_zero) {
  const std::size_t copies = 4000;
  PaddedBatch source{Indices(Shape{copies, 2}, a), std::vector<std::size_t>(copies, 2)};
  TableDecoder decoder;
  Generator generator(11);
  const std::vector<Translation> sampled = sample_search(decoder, source, {.temperature = 1.0}, generator);
  std::array<std::size_t, vocabulary> first{};
  for (const Translation& t : sampled) ++first[static_cast<std::size_t>(t.tokens.empty() ? eos : t.tokens[0])];
  // Every sentence but the first reads the table with a and b swapped.
  std::array<double, vocabulary> expected{};
  for (std::size_t v = 0; v < vocabulary; ++v) {
    expected[v] = (next_token_probabilities({sos})[v] +
                   double(copies - 1) * next_token_probabilities({sos})[std::size_t(as_seen_by(1, std::int64_t(v)))]) /
                  double(copies);
  }
  for (std::size_t v = 0; v < vocabulary; ++v) {
    // Five binomial standard deviations.
    const double mean = expected[v] * copies, bound = 5 * std::sqrt(copies * expected[v] * (1 - expected[v])) + 1;
    BOOST_TEST(std::abs(double(first[v]) - mean) <= bound, "token " << v << ": " << first[v] << " vs " << mean);
  }
  // The score is the drawn tokens' log-probability under the table.
  const Translation& one = sampled[0];
  std::vector<std::int64_t> so_far{sos};
  double log_p = 0;
  const std::size_t limit = 2 * 2 + 10;  // SearchOptions' default for a source of 2 tokens
  for (std::size_t i = 0; i < std::min(one.tokens.size() + 1, limit); ++i) {
    const std::int64_t token = i < one.tokens.size() ? one.tokens[i] : eos;
    log_p += std::log(next_token_probabilities(so_far)[std::size_t(token)]);
    so_far.push_back(token);
  }
  BOOST_TEST(one.score == log_p, boost::test_tools::tolerance(1e-12));

  Generator again(11);
  const std::vector<Translation> repeated = sample_search(decoder, source, {.temperature = 1.0}, again);
  for (std::size_t i = 0; i < copies; ++i) BOOST_TEST(repeated[i].tokens == sampled[i].tokens);

  PaddedBatch two{Indices(Shape{2, 2}, a), {2, 2}};
  const std::vector<Translation> greedy = greedy_search(decoder, two);
  for (const SamplingOptions& options : {SamplingOptions{.temperature = 0}, SamplingOptions{.temperature = 1, .top_k = 1}}) {
    const std::vector<Translation> picked = sample_search(decoder, two, options, generator);
    for (std::size_t i = 0; i < 2; ++i) {
      BOOST_TEST(picked[i].tokens == greedy[i].tokens);
      BOOST_TEST(picked[i].score == greedy[i].score);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_minimum_output_length_forbids_an_early_end) {
  const TableDecoder decoder;  // greedy ends "a a" with <eos> at step 2
  const PaddedBatch source = two_sentences();
  for (const std::size_t min_length : {std::size_t{0}, std::size_t{2}}) {
    const std::vector<Translation> greedy = greedy_search(decoder, source, {.min_output_length = min_length});
    BOOST_TEST(greedy[0].tokens == (std::vector<std::int64_t>{a, a}));
    BOOST_TEST(greedy[0].score == std::log(.5) + std::log(.45) + std::log(.5), boost::test_tools::tolerance(1e-12));
  }
  // Three tokens at least: at step 2 <eos> (.5) is out, and a (.2, the first of the most likely) follows.
  const std::vector<Translation> longer = greedy_search(decoder, source, {.min_output_length = 3});
  BOOST_TEST_REQUIRE(longer[0].tokens.size() >= 3u);
  BOOST_TEST((std::vector<std::int64_t>(longer[0].tokens.begin(), longer[0].tokens.begin() + 3) ==
              std::vector<std::int64_t>{a, a, a}));
  // The beam's best, "b a" with <eos> at step 2, cannot end there either.
  const std::vector<Translation> beam = beam_search(decoder, source, {.beam_size = 2, .min_output_length = 3});
  BOOST_TEST(beam[0].tokens.size() >= 3u);
  BOOST_TEST(beam_search(decoder, source, {.beam_size = 2, .min_output_length = 2})[0].tokens ==
             (std::vector<std::int64_t>{b, a}));
}

BOOST_AUTO_TEST_CASE(a_maximum_output_length_caps_every_search) {
  const TableDecoder decoder;
  const PaddedBatch source = two_sentences();  // the default limit is 2 * 4 + 10 steps
  const std::vector<Translation> greedy = greedy_search(decoder, source, {.max_output_length = 1});
  BOOST_TEST(greedy[0].tokens == (std::vector<std::int64_t>{a}));
  BOOST_TEST(greedy[0].attention == attention_moving_along(1, source.lengths[0]));
  const std::vector<Translation> beam = beam_search(decoder, source, {.beam_size = 2, .max_output_length = 2});
  BOOST_TEST(beam[0].tokens == (std::vector<std::int64_t>{b, a}));  // cut before its <eos>
  BOOST_TEST(beam[0].attention == attention_moving_along(2, source.lengths[0]));
  BOOST_TEST(beam[0].log_probability == std::log(.4) + std::log(.9), boost::test_tools::tolerance(1e-12));
}

// The beam of two finishes "b a" (p = .324) and "a a" (.1125), both with <eos> at step 2
// (see the table): the n-best list holds both, best first.
BOOST_AUTO_TEST_CASE(the_n_best_list_is_ordered_and_distinct) {
  const TableDecoder decoder;
  const PaddedBatch source = two_sentences();
  const std::vector<std::vector<Translation>> lists =
      beam_search_n_best(decoder, source, {.beam_size = 2, .n_best = 2});
  BOOST_TEST_REQUIRE(lists.size() == 2u);
  const auto tolerance = boost::test_tools::tolerance(1e-12);
  BOOST_TEST_REQUIRE(lists[0].size() == 2u);
  BOOST_TEST(lists[0][0].tokens == (std::vector<std::int64_t>{b, a}));
  BOOST_TEST(lists[0][1].tokens == (std::vector<std::int64_t>{a, a}));
  BOOST_TEST(lists[0][0].log_probability == std::log(.324), tolerance);
  BOOST_TEST(lists[0][1].log_probability == std::log(.1125), tolerance);
  BOOST_TEST(lists[0][0].score == std::log(.324) / 3, tolerance);
  BOOST_TEST(lists[0][1].score == std::log(.1125) / 3, tolerance);
  BOOST_TEST(lists[1][0].tokens == (std::vector<std::int64_t>{a, b}));  // sentence 1 sees a and b swapped
  BOOST_TEST(lists[1][1].tokens == (std::vector<std::int64_t>{b, b}));
  // A list of one is the beam's best.
  const std::vector<std::vector<Translation>> one = beam_search_n_best(decoder, source, {.beam_size = 2});
  BOOST_TEST(one[0].size() == 1u);
  BOOST_TEST(one[0][0].tokens == beam_search(decoder, source, {.beam_size = 2})[0].tokens);
  const std::string message = xgrad::testing::error_message<std::invalid_argument>(
      [&] { beam_search_n_best(decoder, source, {.beam_size = 2, .n_best = 3}); });
  BOOST_TEST(message.find("n-best 3 must lie in [1, 2] (the beam size)") != std::string::npos, message);
}

BOOST_AUTO_TEST_CASE(hypothesis_scores_follow_the_length_and_coverage_penalties) {
  const auto tolerance = boost::test_tools::tolerance(1e-12);
  Array<float> attention(Shape{3, 2}, 0.0f);  // three steps (two tokens and <eos>) over two source words
  attention(0, 0) = .5f, attention(1, 0) = .25f, attention(2, 0) = .125f;  // 0.875 in all
  attention(0, 1) = .5f, attention(1, 1) = .75f, attention(2, 1) = .875f;  // 2.125: counts as 1
  const double log_p = -3;
  BOOST_TEST(hypothesis_score(log_p, 2, attention, {.length_normalization = LengthNormalization::none}) == -3.0, tolerance);
  BOOST_TEST(hypothesis_score(log_p, 2, attention, {.length_penalty = 1}) == -1.0, tolerance);
  BOOST_TEST(hypothesis_score(log_p, 2, attention, {.length_penalty = 0.5}) == -3 / std::sqrt(3.0), tolerance);
  // GNMT: (5 + 3)^alpha / (5 + 1)^alpha.
  BOOST_TEST(hypothesis_score(log_p, 2, attention, {.length_penalty = 1, .length_normalization = LengthNormalization::gnmt}) ==
                 -3 / (8.0 / 6.0),
             tolerance);
  BOOST_TEST(hypothesis_score(log_p, 2, attention,
                              {.length_penalty = 0.6, .length_normalization = LengthNormalization::gnmt}) ==
                 -3 / std::pow(8.0 / 6.0, 0.6),
             tolerance);
  BOOST_TEST(hypothesis_score(log_p, 2, attention,
                              {.length_normalization = LengthNormalization::none, .coverage_penalty = 0.5}) ==
                 -3 + 0.5 * std::log(0.875),
             tolerance);
  // A word no step attended to counts as min_coverage covered, not as an infinite penalty.
  Array<float> one_word(Shape{1, 2}, 0.0f);
  one_word(0, 0) = 1;
  BOOST_TEST(hypothesis_score(0, 0, one_word, {.length_normalization = LengthNormalization::none, .coverage_penalty = 1}) ==
                 std::log(min_coverage),
             tolerance);
  BOOST_TEST((length_normalization_from_string("gnmt") == LengthNormalization::gnmt));
  BOOST_TEST(to_string(LengthNormalization::average) == "avg");
  const std::string message =
      xgrad::testing::error_message<std::invalid_argument>([] { length_normalization_from_string("gmnt"); });
  BOOST_TEST(message.find("'gmnt' is not one of: none, avg, gnmt") != std::string::npos, message);
}

namespace {

// Two source words. The first step attends word 0 and prefers a (.6) to b (.38); then every
// hypothesis ends (<eos> .9), attending word 0 again after a and word 1 after b. So "a" is the
// more likely, but only "b" attends to both words.
class LookingDecoder final : public SmallVocabularyDecoder {
 public:
  std::unique_ptr<State> begin(const PaddedBatch& source, std::size_t copies) const override {
    auto state = std::make_unique<Rows>();
    state->rows = source.lengths.size() * copies;
    state->width = source.ids.shape()[1];
    return state;
  }

  DecoderStep<double> step(const Indices& previous, State& state, std::size_t) const override {
    const Rows& rows = static_cast<const Rows&>(state);
    Array<double> log_probs = Array<double>::from_shape({rows.rows, vocabulary});
    Array<double> weights(Shape{rows.rows, rows.width}, 0.0);
    for (std::size_t r = 0; r < rows.rows; ++r) {
      const std::array<double, vocabulary> p = previous(r) == sos ? std::array<double, vocabulary>{.005, .005, .01, .6, .38}
                                                                  : std::array<double, vocabulary>{.01, .01, .9, .04, .04};
      for (std::size_t v = 0; v < vocabulary; ++v) log_probs(r, v) = std::log(p[v]);
      weights(r, previous(r) == b ? 1 : 0) = 1;
    }
    return {Tensor<double>(std::move(log_probs)), Tensor<double>(std::move(weights))};
  }

  void select(State&, const Indices&) const override {}  // the rows carry nothing but their count

 private:
  struct Rows final : State {
    std::size_t rows = 0, width = 0;
  };
};

}  // namespace

BOOST_AUTO_TEST_CASE(the_coverage_penalty_prefers_the_hypothesis_that_reads_every_word) {
  const LookingDecoder decoder;
  const PaddedBatch source{Indices(Shape{1, 2}, pad), {2}};
  const std::vector<Translation> plain = beam_search(decoder, source, {.beam_size = 2});
  BOOST_TEST(plain[0].tokens == (std::vector<std::int64_t>{a}));
  BOOST_TEST(plain[0].score == std::log(.6 * .9) / 2, boost::test_tools::tolerance(1e-12));
  const std::vector<Translation> covering = beam_search(decoder, source, {.beam_size = 2, .coverage_penalty = 0.2});
  BOOST_TEST(covering[0].tokens == (std::vector<std::int64_t>{b}));
  BOOST_TEST(covering[0].score == std::log(.38 * .9) / 2, boost::test_tools::tolerance(1e-12));  // no penalty: both read
}
