#define BOOST_TEST_MODULE bleu
#include "xgrad_test.h"

#include <cmath>

#include "xgrad/models/bleu.h"

using namespace xgrad::models;

namespace {

std::vector<Tokens> tokenised(const std::vector<std::string>& lines) {
  std::vector<Tokens> result;
  for (const std::string& line : lines) result.push_back(split_tokens(line));
  return result;
}

BleuScore bleu(const std::vector<std::string>& hypotheses, const std::vector<std::string>& references) {
  return corpus_bleu(tokenised(hypotheses), tokenised(references));
}

void check_near(double actual, double expected, double tolerance = 1e-12) {
  BOOST_TEST(std::abs(actual - expected) <= tolerance * (1.0 + std::abs(expected)), actual << " != expected " << expected);
}

// What sacreBLEU reports for one corpus (repr() of its doubles).
struct SacrebleuResult {
  double score;
  std::array<double, 4> precisions;
  double brevity_penalty;
  double ratio;
  std::size_t hypothesis_length;
  std::size_t reference_length;
  std::string line;
};

void check_against_sacrebleu(const BleuScore& ours, const SacrebleuResult& expected) {
  check_near(ours.score, expected.score);
  for (std::size_t n = 0; n < 4; ++n) check_near(ours.precisions[n], expected.precisions[n]);
  check_near(ours.brevity_penalty, expected.brevity_penalty);
  check_near(ours.length_ratio, expected.ratio);
  BOOST_TEST(ours.hypothesis_length == expected.hypothesis_length);
  BOOST_TEST(ours.reference_length == expected.reference_length);
  BOOST_TEST(ours.to_string() == expected.line);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hand_worked)

BOOST_AUTO_TEST_CASE(a_perfect_match_scores_100) {
  const BleuScore score = bleu({"a man sleeps in a green room .", "two dogs play"}, {"a man sleeps in a green room .", "two dogs play"});
  check_near(score.score, 100.0);
  for (const double precision : score.precisions) check_near(precision, 100.0);
  BOOST_TEST(score.brevity_penalty == 1.0);
  BOOST_TEST(score.length_ratio == 1.0);
  BOOST_TEST(score.hypothesis_length == 11u);
  // 4-grams: 5 from the first sentence, none from the three-token second one.
  BOOST_TEST(score.totals == (std::array<std::size_t, 4>{11, 9, 7, 5}));
  BOOST_TEST(score.matches == score.totals);
}

BOOST_AUTO_TEST_CASE(a_missing_4gram_match_is_smoothed_as_100_over_2_total) {
  // 1-grams 3/4, 2-grams 2/3, 3-grams 1/2, 4-grams 0/1 -> 100 / (2 * 1) = 50.
  const BleuScore score = bleu({"a b c x"}, {"a b c d"});
  check_near(score.precisions[0], 75.0);
  check_near(score.precisions[1], 200.0 / 3.0);
  check_near(score.precisions[2], 50.0);
  check_near(score.precisions[3], 50.0);
  BOOST_TEST(score.matches == (std::array<std::size_t, 4>{3, 2, 1, 0}));
  // (75 * 66.67 * 50 * 50)^(1/4) = 12500000^(1/4)
  check_near(score.score, std::pow(12500000.0, 0.25));
  BOOST_TEST(score.to_string() == "BLEU = 59.46 75.0/66.7/50.0/50.0 (BP = 1.000 ratio = 1.000 hyp_len = 4 ref_len = 4)");
}

BOOST_AUTO_TEST_CASE(successive_unmatched_orders_double_the_smoothing) {
  // 1-grams 3/5; no longer match: 2-grams 100 / (2 * 3), 3-grams 100 / (4 * 2), 4-grams 100 / (8 * 1).
  const BleuScore score = bleu({"b a c d", "x"}, {"a b c e", "y"});
  BOOST_TEST(score.matches == (std::array<std::size_t, 4>{3, 0, 0, 0}));
  BOOST_TEST(score.totals == (std::array<std::size_t, 4>{5, 3, 2, 1}));
  check_near(score.precisions[0], 60.0);
  check_near(score.precisions[1], 100.0 / 6.0);
  check_near(score.precisions[2], 12.5);
  check_near(score.precisions[3], 12.5);
  check_near(score.score, std::pow(60.0 * (100.0 / 6.0) * 12.5 * 12.5, 0.25));
}

BOOST_AUTO_TEST_CASE(a_short_corpus_has_a_brevity_penalty) {
  // Every n-gram matches; 6 hypothesis tokens against 8 reference tokens.
  const BleuScore score = bleu({"a b c d e f"}, {"a b c d e f g h"});
  check_near(score.brevity_penalty, std::exp(1.0 - 8.0 / 6.0));
  check_near(score.length_ratio, 0.75);
  check_near(score.score, 100.0 * std::exp(-1.0 / 3.0));
  BOOST_TEST(score.to_string() == "BLEU = 71.65 100.0/100.0/100.0/100.0 (BP = 0.717 ratio = 0.750 hyp_len = 6 ref_len = 8)");
}

BOOST_AUTO_TEST_CASE(matches_are_clipped_by_the_reference_counts) {
  const BleuScore score = bleu({"the the the the"}, {"the cat"});
  BOOST_TEST(score.matches[0] == 1u);
  BOOST_TEST(score.totals[0] == 4u);
  check_near(score.precisions[0], 25.0);
}

BOOST_AUTO_TEST_CASE(statistics_are_summed_over_the_corpus_before_scoring) {
  const BleuScore pooled = bleu({"a b c d", "e f g h"}, {"a b c d", "x y z w"});
  BOOST_TEST(pooled.matches == (std::array<std::size_t, 4>{4, 3, 2, 1}));
  BOOST_TEST(pooled.totals == (std::array<std::size_t, 4>{8, 6, 4, 2}));
  check_near(pooled.score, 100.0 * std::pow(0.5 * 0.5 * 0.5 * 0.5, 0.25));
}

BOOST_AUTO_TEST_CASE(no_match_at_all_scores_zero) {
  const BleuScore score = bleu({"x y z w", ""}, {"a b c d", "e"});
  BOOST_TEST(score.score == 0.0);
  for (const double precision : score.precisions) BOOST_TEST(precision == 0.0);
  check_near(score.brevity_penalty, std::exp(1.0 - 5.0 / 4.0));
  const BleuScore empty = corpus_bleu({}, {});
  BOOST_TEST(empty.score == 0.0);
  BOOST_TEST(empty.length_ratio == 0.0);
  BOOST_TEST(bleu({""}, {"a b"}).brevity_penalty == 0.0);
}

BOOST_AUTO_TEST_CASE(a_corpus_without_4grams_scores_zero_as_in_sacrebleu) {
  // No hypothesis 4-gram: that precision stays 0 and its floored log drives the score to 0.
  const BleuScore score = bleu({"a b c"}, {"a b c"});
  BOOST_TEST(score.precisions == (std::array<double, 4>{100.0, 100.0, 100.0, 0.0}));
  BOOST_TEST(score.score == 0.0);
}

BOOST_AUTO_TEST_CASE(different_corpus_sizes_are_rejected) {
  BOOST_CHECK_THROW(bleu({"a", "b"}, {"a"}), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// The expected values below are what sacreBLEU 2.6.0 (github mjpost/sacrebleu, commit
// f615c72) printed for
//   s = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none")
// as repr(s.score), repr(s.precisions[i]), repr(s.bp), repr(s.ratio), s.sys_len, s.ref_len
// and str(s).
BOOST_AUTO_TEST_SUITE(sacrebleu_parity)

BOOST_AUTO_TEST_CASE(multi30k_sentences) {
  const BleuScore score = bleu(
      {"a group of men loading cotton on a truck", "a man sleeps in a green room on a sofa .",
       "a boy with headphones sits on the shoulders of a woman .",
       "two men are building a blue ice fishing hut on a frozen lake",
       "a bald man in a red life jacket sits in a small boat ."},
      {"a group of men are loading cotton onto a truck", "a man sleeping in a green room on a couch .",
       "a boy wearing headphones sits on a woman &apos;s shoulders .",
       "two men setting up a blue ice fishing hut on an iced over lake",
       "a balding man wearing a red life jacket is sitting in a small boat ."});
  check_against_sacrebleu(score, {40.23124593400349,
                                  {77.96610169491525, 51.851851851851855, 32.6530612244898, 22.727272727272727},
                                  0.966669805042999,
                                  0.9672131147540983,
                                  59,
                                  61,
                                  "BLEU = 40.23 78.0/51.9/32.7/22.7 (BP = 0.967 ratio = 0.967 hyp_len = 59 ref_len = 61)"});
}

BOOST_AUTO_TEST_CASE(short_hypotheses) {
  const BleuScore score = bleu({"a brown dog is running .", "a young boy swings a bat ."},
                               {"a brown dog is running after the black dog .",
                                "a young boy wearing a giants jersey swings a baseball bat at an incoming pitch ."});
  check_against_sacrebleu(score, {19.614137531972624,
                                  {100.0, 63.63636363636363, 44.44444444444444, 28.571428571428573},
                                  0.36787944117144233,
                                  0.5,
                                  13,
                                  26,
                                  "BLEU = 19.61 100.0/63.6/44.4/28.6 (BP = 0.368 ratio = 0.500 hyp_len = 13 ref_len = 26)"});
}

BOOST_AUTO_TEST_CASE(no_bigram_match) {
  const BleuScore score = bleu({"dog brown a runs fast", "cat black the sleeps now"}, {"a brown dog runs", "the black cat sleeps"});
  check_against_sacrebleu(score, {8.982602799077107,
                                  {80.0, 6.25, 4.166666666666667, 3.125},
                                  1.0,
                                  1.25,
                                  10,
                                  8,
                                  "BLEU = 8.98 80.0/6.2/4.2/3.1 (BP = 1.000 ratio = 1.250 hyp_len = 10 ref_len = 8)"});
}

BOOST_AUTO_TEST_CASE(clipping_case_unicode_and_an_empty_hypothesis) {
  const BleuScore score = bleu({"the the the the the cat", "Ein Mann läuft über die Straße .", ""},
                               {"the cat is on the mat", "ein Mann läuft über die Straße .", "an empty hypothesis"});
  check_against_sacrebleu(score, {41.11523730500239,
                                  {69.23076923076923, 54.54545454545455, 44.44444444444444, 42.857142857142854},
                                  0.7939226578179512,
                                  0.8125,
                                  13,
                                  16,
                                  "BLEU = 41.12 69.2/54.5/44.4/42.9 (BP = 0.794 ratio = 0.812 hyp_len = 13 ref_len = 16)"});
}

BOOST_AUTO_TEST_CASE(long_hypotheses) {
  const BleuScore score =
      bleu({"a man in a blue shirt is standing on a ladder and cleaning a window of a building",
            "people are walking down the street in the city"},
           {"a man in a blue shirt is cleaning a window", "people walk down a city street"});
  check_against_sacrebleu(score, {30.133153936198987,
                                  {51.851851851851855, 32.0, 26.08695652173913, 19.047619047619047},
                                  1.0,
                                  1.6875,
                                  27,
                                  16,
                                  "BLEU = 30.13 51.9/32.0/26.1/19.0 (BP = 1.000 ratio = 1.688 hyp_len = 27 ref_len = 16)"});
}

BOOST_AUTO_TEST_SUITE_END()
