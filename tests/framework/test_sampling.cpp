// multinomial, top_k and sample_logits: exact results for top_k, and frequencies checked
// against the distribution they should follow.
//
// The frequency bound: a category of probability p drawn in n samples is counted
// Binomial(n, p) times, with standard deviation s = sqrt(n p (1 - p)). The checks allow
// 5 s (+1 for rounding): a correct sampler passes with probability above 1 - 1e-6 per
// category (at the fixed seeds below, always), while an error of 0.01 in any probability
// moves a count of n = 100,000 samples by 1,000 > 5 s (at most 791), and fails.
#define BOOST_TEST_MODULE sampling
#include "xgrad_test.h"

#include <map>
#include <set>

using namespace xgrad;
using xgrad::testing::check_close;

namespace {

constexpr std::size_t draws = 100000;

void check_frequencies(const std::vector<std::size_t>& counts, const std::vector<double>& probabilities,
                       std::size_t n, const std::string& what) {
  BOOST_TEST_REQUIRE(counts.size() == probabilities.size());
  for (std::size_t v = 0; v < counts.size(); ++v) {
    const double p = probabilities[v], expected = static_cast<double>(n) * p;
    const double bound = 5 * std::sqrt(static_cast<double>(n) * p * (1 - p)) + 1;
    BOOST_TEST(std::abs(static_cast<double>(counts[v]) - expected) <= bound,
               what << ": category " << v << " drawn " << counts[v] << " times in " << n << ", expected "
                    << expected << " +- " << bound);
  }
}

// How often each category appears among `samples`.
std::vector<std::size_t> histogram(const Indices& samples, std::size_t categories) {
  std::vector<std::size_t> counts(categories, 0);
  std::size_t outside = 0;
  for (std::int64_t s : samples) {
    if (s >= 0 && static_cast<std::size_t>(s) < categories) {
      ++counts[static_cast<std::size_t>(s)];
    } else {
      ++outside;
    }
  }
  BOOST_TEST(outside == 0u);
  return counts;
}

std::vector<double> normalized(std::vector<double> weights) {
  double total = 0;
  for (double w : weights) total += w;
  for (double& w : weights) w /= total;
  return weights;
}

// `row` repeated `rows` times: [rows, row.size()].
Tensor<float> repeated(const std::vector<float>& row, std::size_t rows) {
  Array<float> values = Array<float>::from_shape({rows, row.size()});
  for (std::size_t r = 0; r < rows; ++r) std::copy(row.begin(), row.end(), values.data() + r * row.size());
  return Tensor<float>(std::move(values));
}

template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no std::invalid_argument";
}

}  // namespace

// ---- multinomial ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(multinomial_with_replacement_follows_the_weights_of_each_row) {
  Generator generator(2024);
  const Tensor<float> weights = Tensor<float>::from({1, 2, 3, 4, 4, 0, 0, 1}, {2, 4});  // unnormalised
  const Indices samples = multinomial(weights, draws, true, generator);
  BOOST_TEST(to_string(samples.shape()) == "[2, 100000]");
  check_frequencies(histogram(xt::view(samples, 0, xt::all()), 4), {0.1, 0.2, 0.3, 0.4}, draws, "row 0");
  const std::vector<std::size_t> second = histogram(xt::view(samples, 1, xt::all()), 4);
  BOOST_TEST(second[1] == 0u);  // weight 0: never drawn
  BOOST_TEST(second[2] == 0u);
  check_frequencies(second, {0.8, 0.0, 0.0, 0.2}, draws, "row 1");
}

BOOST_AUTO_TEST_CASE(multinomial_of_a_vector_gives_a_vector_and_is_reproducible) {
  const Tensor<double> weights = Tensor<double>::from({0.5, 0.25, 0.25}, {3});
  Generator first(7), second(7), other(8);
  const Indices a = multinomial(weights, 50, true, first);
  BOOST_TEST(to_string(a.shape()) == "[50]");
  BOOST_TEST((a == multinomial(weights, 50, true, second)));
  BOOST_TEST(!(a == multinomial(weights, 50, true, other)));
}

BOOST_AUTO_TEST_CASE(multinomial_without_replacement_draws_each_category_once_from_what_is_left) {
  // The first two draws of a row are (i, j) with probability p_i p_j / (1 - p_i).
  const std::vector<double> p{0.1, 0.2, 0.3, 0.4};
  Generator generator(99);
  const Indices pairs = multinomial(repeated({1, 2, 3, 4}, draws), 2, false, generator);
  std::vector<std::size_t> counts(16, 0);
  std::vector<double> expected(16, 0.0);
  std::size_t repeats = 0;
  for (std::size_t r = 0; r < draws; ++r) {
    repeats += pairs(r, 0) == pairs(r, 1) ? 1 : 0;
    ++counts[static_cast<std::size_t>(pairs(r, 0) * 4 + pairs(r, 1))];
  }
  BOOST_TEST(repeats == 0u);
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < 4; ++j) expected[i * 4 + j] = i == j ? 0.0 : p[i] * p[j] / (1 - p[i]);
  }
  check_frequencies(counts, expected, draws, "ordered pairs");

  // As many samples as categories of non-zero weight: a permutation of them.
  const Indices all = multinomial(Tensor<float>::from({0, 5, 1, 2}, {4}), 3, false, generator);
  BOOST_TEST((std::set<std::int64_t>(all.begin(), all.end()) == std::set<std::int64_t>{1, 2, 3}));
}

BOOST_AUTO_TEST_CASE(multinomial_refuses_weights_it_cannot_draw_from) {
  Generator generator;
  const auto draw = [&](std::initializer_list<float> values, std::size_t n, bool replacement) {
    return invalid_argument_message(
        [&] { multinomial(Tensor<float>::from(values, {values.size()}), n, replacement, generator); });
  };
  BOOST_TEST(draw({1, -1}, 1, true) == "multinomial: weight -1 at row 0, category 1 (weights must be finite and >= 0)");
  BOOST_TEST(draw({1, std::nanf("")}, 1, true).find("weight nan at row 0, category 1") != std::string::npos);
  BOOST_TEST(draw({1, INFINITY}, 1, true).find("weight inf") != std::string::npos);
  BOOST_TEST(draw({0, 0}, 1, true) == "multinomial: the weights of row 0 (of 2 categories) are all 0");
  BOOST_TEST(draw({1, 0, 1}, 3, false) ==
             "multinomial: 3 samples without replacement from row 0, which has 2 categories of non-zero weight");
  BOOST_CHECK_THROW(multinomial(Tensor<float>::ones({1, 2, 2}), 1, true, generator), shape_error);
}

// ---- top_k ------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(top_k_returns_the_largest_first_and_ties_in_order_of_position) {
  const Tensor<float> x = Tensor<float>::from({1, 3, 3, 2, 5, -1, 5, 5}, {2, 4});
  const TopK<float> two = top_k(x, 2);
  check_close(two.values.value(), Array<float>{{3, 3}, {5, 5}}, 0.0);
  BOOST_TEST((two.indices == Indices{{1, 2}, {0, 2}}));
  const TopK<float> all = top_k(x, 4);
  check_close(all.values.value(), Array<float>{{3, 3, 2, 1}, {5, 5, 5, -1}}, 0.0);
  BOOST_TEST((all.indices == Indices{{1, 2, 3, 0}, {0, 2, 3, 1}}));
  // NaN ranks above every number, as in torch.topk; -inf below.
  const TopK<float> with_nan = top_k(Tensor<float>::from({1, std::nanf(""), -INFINITY, 2}, {4}), 3);
  BOOST_TEST((with_nan.indices == Indices{1, 3, 0}));
  BOOST_TEST(std::isnan(with_nan.values.value()(0)));
  BOOST_TEST(to_string(top_k(x, 0).indices.shape()) == "[2, 0]");
}

BOOST_AUTO_TEST_CASE(top_k_works_along_the_last_axis_of_any_rank) {
  const Tensor<double> x = xgrad::testing::random_tensor({2, 3, 5}, 4);
  const TopK<double> best = top_k(x, 3);
  BOOST_TEST(to_string(best.values.shape()) == "[2, 3, 3]");
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      std::vector<double> row(x.data() + (i * 3 + j) * 5, x.data() + (i * 3 + j) * 5 + 5);
      std::sort(row.begin(), row.end(), std::greater<>());
      for (std::size_t k = 0; k < 3; ++k) {
        BOOST_TEST(best.values.value()(i, j, k) == row[k]);
        BOOST_TEST(x.value()(i, j, static_cast<std::size_t>(best.indices(i, j, k))) == row[k]);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(top_k_values_carry_the_gradient_to_the_chosen_entries) {
  Tensor<double> x = Tensor<double>::from({0.5, 2.0, -1.0, 1.5}, {1, 4}, true);
  sum(top_k(x, 2).values * Tensor<double>::from({10, 1}, {1, 2})).backward();
  check_close(x.grad(), Array<double>{{0, 10, 0, 1}}, 0.0);
  // Values well apart, so that the choice does not change within gradcheck's step.
  const Tensor<double> y = Tensor<double>::from({0.3, -0.8, 0.9, 0.1, -0.2, 0.6}, {2, 3}, true);
  xgrad::testing::check_gradients([](const std::vector<Tensor<double>>& xs) { return top_k(xs[0], 2).values; }, {y});
}

BOOST_AUTO_TEST_CASE(top_k_refuses_k_past_the_last_axis) {
  BOOST_CHECK_THROW(top_k(Tensor<float>::zeros({2, 4}), 5), shape_error);
  BOOST_CHECK_THROW(top_k(Tensor<float>::scalar(1), 1), shape_error);
}

// ---- sample_logits ----------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(sampling_follows_the_softmax_of_the_logits_over_the_temperature) {
  // logits log(1..4): probabilities proportional to 1..4 at temperature 1, to their square
  // roots at temperature 2.
  const std::vector<float> logits{0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)};
  Generator generator(1);
  const Tensor<float> batch = repeated(logits, draws);
  const Indices plain = sample_logits(batch, {.temperature = 1.0}, generator);
  BOOST_TEST(to_string(plain.shape()) == "[100000]");
  check_frequencies(histogram(plain, 4), normalized({1, 2, 3, 4}), draws, "temperature 1");
  const Indices warm = sample_logits(batch, {.temperature = 2.0}, generator);
  check_frequencies(histogram(warm, 4), normalized({1, std::sqrt(2.0), std::sqrt(3.0), 2}), draws, "temperature 2");
  const Indices cool = sample_logits(batch, {.temperature = 0.5}, generator);
  check_frequencies(histogram(cool, 4), normalized({1, 4, 9, 16}), draws, "temperature 0.5");
}

BOOST_AUTO_TEST_CASE(top_k_sampling_draws_among_the_k_largest_only) {
  const std::vector<float> logits{0.0f, std::log(3.0f), std::log(2.0f), std::log(4.0f), std::log(1.5f)};
  Generator generator(5);
  const Indices tokens = sample_logits(repeated(logits, draws), {.temperature = 1.0, .top_k = 2}, generator);
  check_frequencies(histogram(tokens, 5), {0, 3.0 / 7, 0, 4.0 / 7, 0}, draws, "top 2");
  const Indices three = sample_logits(repeated(logits, draws), {.temperature = 1.0, .top_k = 3}, generator);
  check_frequencies(histogram(three, 5), {0, 3.0 / 9, 2.0 / 9, 4.0 / 9, 0}, draws, "top 3");
  // top_k at or past the vocabulary size: every token.
  const Indices every = sample_logits(repeated(logits, draws), {.temperature = 1.0, .top_k = 9}, generator);
  check_frequencies(histogram(every, 5), normalized({1, 3, 2, 4, 1.5}), draws, "top 9 of 5");
  // Exactly k: of equal logits, the lower positions.
  const Indices tied = sample_logits(repeated({1, 2, 2, 2}, 1000), {.temperature = 1.0, .top_k = 2}, generator);
  const std::vector<std::size_t> tied_counts = histogram(tied, 4);
  BOOST_TEST(tied_counts[0] + tied_counts[3] == 0u);
  BOOST_TEST(tied_counts[1] > 0u);
  BOOST_TEST(tied_counts[2] > 0u);
}

BOOST_AUTO_TEST_CASE(temperature_zero_is_greedy_and_draws_nothing) {
  Generator generator(3);
  const std::string before = generator.state();
  const Indices greedy =
      sample_logits(Tensor<float>::from({0.1f, 0.7f, 0.7f, -2, 5, 4, 1, 0}, {2, 4}), {.temperature = 0}, generator);
  BOOST_TEST((greedy == Indices{1, 0}));
  BOOST_TEST(generator.state() == before);
  // An infinite logit takes every draw.
  const Indices infinite = sample_logits(repeated({0, INFINITY, 100}, 100), {}, generator);
  BOOST_TEST(histogram(infinite, 3)[1] == 100u);
}

BOOST_AUTO_TEST_CASE(sampling_is_reproducible_from_a_seed) {
  const Tensor<double> logits = xgrad::testing::random_tensor({64, 10}, 8, -2, 2, false);
  Generator a(42), b(42);
  const SamplingOptions options{.temperature = 0.8, .top_k = 5};
  BOOST_TEST((sample_logits(logits, options, a) == sample_logits(logits, options, b)));
}

BOOST_AUTO_TEST_CASE(sampling_refuses_what_it_cannot_sample_from) {
  Generator generator;
  const Tensor<float> logits = Tensor<float>::from({0, std::nanf(""), 1, 2}, {2, 2});
  BOOST_TEST(invalid_argument_message([&] { sample_logits(logits, {}, generator); }) ==
             "sample_logits: row 0 has a NaN logit at 1");
  BOOST_TEST(invalid_argument_message([&] {
               sample_logits(Tensor<float>::from({0, -INFINITY, -INFINITY}, {1, 3}).detach(), {}, generator);
             }) == "no std::invalid_argument");
  BOOST_TEST(invalid_argument_message([&] {
               sample_logits(Tensor<float>::full({1, 3}, -INFINITY), {}, generator);
             }) == "sample_logits: the logits of row 0 are all -inf");
  BOOST_TEST(invalid_argument_message([&] { sample_logits(Tensor<float>::zeros({1, 3}), {.temperature = -1}, generator); }) ==
             "sample_logits: invalid temperature = -1 (must be a finite number >= 0; 0 is greedy)");
  BOOST_CHECK_THROW(sample_logits(Tensor<float>::zeros({3}), {}, generator), shape_error);
  BOOST_CHECK_THROW(sample_logits(Tensor<float>::zeros({2, 0}), {}, generator), shape_error);
}
