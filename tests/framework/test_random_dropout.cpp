// The seeded generator and dropout.
#define BOOST_TEST_MODULE random_dropout
#include "xgrad_test.h"

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_tensor;
using Inputs = std::vector<Tensor<double>>;

BOOST_AUTO_TEST_CASE(generators_with_one_seed_agree_and_state_round_trips) {
  Generator a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) BOOST_TEST(a.next() == b.next());
  BOOST_TEST(a.next() != c.next());
  const std::string saved = a.state();
  const double expected = a.normal();
  Generator restored;
  restored.set_state(saved);
  BOOST_TEST(restored.normal() == expected);
  BOOST_CHECK_THROW(restored.set_state("not a state"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(distributions_have_the_right_moments) {
  Generator g(7);
  const int n = 200000;
  double sum_u = 0, sum_n = 0, sum_n2 = 0;
  std::vector<int> counts(5, 0);
  for (int i = 0; i < n; ++i) {
    const double u = g.uniform();
    BOOST_REQUIRE(u >= 0.0 && u < 1.0);
    sum_u += u;
    const double z = g.normal();
    sum_n += z;
    sum_n2 += z * z;
    ++counts[g.below(5)];
  }
  BOOST_TEST(sum_u / n == 0.5, boost::test_tools::tolerance(0.01));
  BOOST_TEST(std::abs(sum_n / n) < 0.01);
  BOOST_TEST(sum_n2 / n == 1.0, boost::test_tools::tolerance(0.01));
  for (int count : counts) BOOST_TEST(std::abs(count - n / 5) < n / 100);
}

BOOST_AUTO_TEST_CASE(counter_streams_are_splitmix64_addressed_by_position) {
  // SplitMix64's published first outputs from state 0 (prng.di.unimi.it/splitmix64.c).
  const CounterStream stream(0);
  BOOST_TEST(stream.bits(2) == 0x06c45d188009454fULL);
  BOOST_TEST(stream.bits(0) == 0xe220a8397b1dcdafULL);
  BOOST_TEST(stream.bits(1) == 0x6e789e6aa1b965f4ULL);
  BOOST_TEST(CounterStream(1).bits(0) != stream.bits(0));
  const int n = 200000;
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    const double u = CounterStream(99).uniform(i);
    BOOST_REQUIRE(u >= 0.0 && u < 1.0);
    sum += u;
  }
  BOOST_TEST(sum / n == 0.5, boost::test_tools::tolerance(0.01));
}

BOOST_AUTO_TEST_CASE(dropout_zeroes_a_fraction_and_rescales_the_rest) {
  Tensor<double> x = Tensor<double>::ones({100, 100});
  Generator g(1);
  Tensor<double> y = dropout(x, 0.3, true, g);
  std::size_t zeros = 0;
  for (double v : y.value()) {
    BOOST_REQUIRE((v == 0.0 || std::abs(v - 1.0 / 0.7) < 1e-12));
    zeros += v == 0.0;
  }
  BOOST_TEST(double(zeros) / 10000.0 == 0.3, boost::test_tools::tolerance(0.1));
  BOOST_TEST(dropout(x, 0.3, false, g).same(x));  // evaluation: the identity
  BOOST_TEST(dropout(x, 0.0, true, g).same(x));
  check_close(dropout(x, 1.0, true, g).value(), Array<double>(x.shape(), 0.0));
  BOOST_CHECK_THROW(dropout(x, 1.5, true, g), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(each_dropout_call_draws_a_new_mask) {
  const Tensor<double> x = Tensor<double>::ones({1000});
  Generator g(3);
  const Array<double> first = dropout(x, 0.5, true, g).value();
  const Array<double> second = dropout(x, 0.5, true, g).value();
  BOOST_TEST(xt::sum(xt::not_equal(first, second))() > 400);  // about half the positions differ
}

BOOST_AUTO_TEST_CASE(dropout_is_reproducible_from_a_seed) {
  Tensor<double> x = random_tensor({50}, 3, -1.0, 1.0, false);
  manual_seed(99);
  const Array<double> first = dropout(x, 0.5, true).value();
  manual_seed(99);
  check_close(dropout(x, 0.5, true).value(), first);
}

BOOST_AUTO_TEST_CASE(dropout_gradient_uses_the_same_mask) {
  Tensor<double> x = random_tensor({4, 6}, 4);
  // gradcheck needs a deterministic function: reseed inside it.
  check_gradients(
      [](const Inputs& v) {
        Generator g(5);
        return dropout(v[0], 0.4, true, g);
      },
      {x});
}
