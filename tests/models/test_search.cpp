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

// The probabilities come from the tokens the state holds, not from `previous` alone: a select
// that moved the wrong rows would change them.
class TableDecoder final : public StepDecoder<double> {
 public:
  std::int64_t sos_id() const override { return sos; }
  std::int64_t eos_id() const override { return eos; }
  std::size_t vocabulary_size() const override { return vocabulary; }

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
