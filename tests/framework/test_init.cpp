// Initialisers: PyTorch's fan and gain formulas, the distributions they draw, orthogonality
// and reproducibility from one seed.
#define BOOST_TEST_MODULE init
#include "xgrad_test.h"

using namespace xgrad;

namespace {
struct Moments {
  double mean, variance, min, max;
};
Moments moments(const Tensor<double>& t) {
  const auto& v = t.value();
  const double mean = xt::mean(v)();
  return {mean, xt::mean((v - mean) * (v - mean))(), xt::amin(v)(), xt::amax(v)()};
}
}  // namespace

BOOST_AUTO_TEST_CASE(fans_and_gains_follow_pytorch) {
  BOOST_TEST((init::fans({30, 20}) == std::pair<std::size_t, std::size_t>{20, 30}));
  BOOST_TEST((init::fans({8, 4, 3, 3}) == std::pair<std::size_t, std::size_t>{36, 72}));
  BOOST_CHECK_THROW(init::fans({5}), shape_error);
  BOOST_TEST(init::gain(init::Nonlinearity::tanh) == 5.0 / 3.0);
  BOOST_TEST(init::gain(init::Nonlinearity::relu) == std::sqrt(2.0));
  BOOST_TEST(init::gain(init::Nonlinearity::leaky_relu, std::sqrt(5.0)) == std::sqrt(1.0 / 3.0),
             boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(distributions_have_the_documented_spread) {
  Generator g(3);
  Tensor<double> w = Tensor<double>::zeros({400, 300});
  // kaiming_uniform(a = sqrt(5)) is Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  init::kaiming_uniform(w, std::sqrt(5.0), init::FanMode::fan_in, init::Nonlinearity::leaky_relu, g);
  Moments m = moments(w);
  const double bound = 1.0 / std::sqrt(300.0);
  BOOST_TEST(m.max <= bound);
  BOOST_TEST(m.min >= -bound);
  BOOST_TEST(m.variance == bound * bound / 3.0, boost::test_tools::tolerance(0.02));
  init::xavier_normal(w, 2.0, g);
  BOOST_TEST(moments(w).variance == 4.0 * 2.0 / 700.0, boost::test_tools::tolerance(0.02));
  init::kaiming_normal(w, 0.0, init::FanMode::fan_out, init::Nonlinearity::relu, g);
  BOOST_TEST(moments(w).variance == 2.0 / 400.0, boost::test_tools::tolerance(0.02));
  init::xavier_uniform(w, 1.0, g);
  BOOST_TEST(moments(w).max <= std::sqrt(6.0 / 700.0));
  init::normal(w, 1.0, 0.5, g);
  BOOST_TEST(moments(w).mean == 1.0, boost::test_tools::tolerance(0.01));
  init::constant(w, 0.25);
  BOOST_TEST(moments(w).min == 0.25);
}

BOOST_AUTO_TEST_CASE(orthogonal_gives_orthonormal_rows_or_columns) {
  Generator g(4);
  for (const Shape& shape : {Shape{6, 4}, Shape{4, 6}, Shape{5, 5}}) {
    Tensor<double> q = Tensor<double>::zeros(shape);
    init::orthogonal(q, 1.0, g);
    const auto& v = q.value();
    // The smaller Gram matrix is the identity.
    const bool tall = shape[0] >= shape[1];
    Array<double> gram = tall ? Array<double>(xt::zeros<double>({shape[1], shape[1]}))
                              : Array<double>(xt::zeros<double>({shape[0], shape[0]}));
    for (std::size_t i = 0; i < gram.shape()[0]; ++i)
      for (std::size_t j = 0; j < gram.shape()[0]; ++j)
        for (std::size_t k = 0; k < (tall ? shape[0] : shape[1]); ++k)
          gram(i, j) += tall ? v(k, i) * v(k, j) : v(i, k) * v(j, k);
    xgrad::testing::check_close(gram, xt::eye<double>(gram.shape()[0]), 1e-12);
  }
}

BOOST_AUTO_TEST_CASE(one_seed_reproduces_the_same_weights) {
  Tensor<float> a = Tensor<float>::zeros({10, 10}), b = Tensor<float>::zeros({10, 10});
  manual_seed(11);
  init::xavier_uniform(a);
  manual_seed(11);
  init::xavier_uniform(b);
  BOOST_TEST(a.value() == b.value());
}
