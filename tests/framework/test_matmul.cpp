// Matrix products: values against hand-computed products, gradients of every transpose and
// batch combination, accumulation at beta = 1, and shape errors.
#define BOOST_TEST_MODULE matmul
#include "xgrad_test.h"

#include <array>
#include <cmath>
#include <vector>

#include <xgrad/framework/blas.h>

using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::check_gradients;
using xgrad::testing::random_tensor;
using xgrad::testing::shaped;
using Inputs = std::vector<Tensor<double>>;

BOOST_AUTO_TEST_CASE(two_dimensional_values) {
  Tensor<double> a(Array<double>{{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  Tensor<double> b(Array<double>{{1.0, -1.0}, {0.5, 2.0}, {-2.0, 0.0}});
  check_close(matmul(a, b).value(), Array<double>{{-4.0, 3.0}, {-5.5, 6.0}});
  // a^T [3, 2] x a [2, 3] and a [2, 3] x a^T [3, 2] through the transpose flags.
  check_close(matmul(a, a, {.transpose_a = true}).value(),
              Array<double>{{17.0, 22.0, 27.0}, {22.0, 29.0, 36.0}, {27.0, 36.0, 45.0}});
  check_close(matmul(a, a, {.transpose_b = true}).value(), Array<double>{{14.0, 32.0}, {32.0, 77.0}});
  check_close(matmul(b, a, {.transpose_a = true, .transpose_b = true}).value(),
              Array<double>{{-4.0, -5.5}, {3.0, 6.0}});
}

BOOST_AUTO_TEST_CASE(batched_values) {
  Tensor<double> a(shaped<Array<double>>({2, 1, 2}, {1.0, 2.0, 3.0, 4.0}));
  Tensor<double> b(shaped<Array<double>>({2, 2, 1}, {1.0, 1.0, 2.0, -1.0}));
  check_close(matmul(a, b).value(), shaped<Array<double>>({2, 1, 1}, {3.0, 2.0}));
  Tensor<double> shared(Array<double>{{1.0, 0.0}, {0.0, 2.0}});      // [2, 2]
  check_close(matmul(a, shared).value(), Array<double>{{{1.0, 4.0}}, {{3.0, 8.0}}});
  check_close(matmul(shared, b).value(), shaped<Array<double>>({2, 2, 1}, {1.0, 2.0, 2.0, -2.0}));
}

// A row times a large matrix takes the matrix-vector route inside blas::gemm (B of at least
// 2^16 elements), small ones and columns do not; every transpose combination, alpha and beta,
// against the definition.
BOOST_AUTO_TEST_CASE(gemm_with_one_row_or_column_matches_the_definition) {
  Generator generator(3);
  for (auto [m, n, k] : {std::array<std::size_t, 3>{1, 300, 257}, {1, 70000, 1}, {1, 5, 3}, {4, 1, 3}, {1, 1, 6}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (double beta : {0.0, 1.0}) {
          std::vector<double> a(m * k), b(k * n), c(m * n, std::nan("")), expected(m * n);
          for (double& x : a) x = generator.uniform(-1.0, 1.0);
          for (double& x : b) x = generator.uniform(-1.0, 1.0);
          if (beta != 0.0) {
            for (double& x : c) x = generator.uniform(-1.0, 1.0);
          }
          for (std::size_t i = 0; i < m; ++i) {
            for (std::size_t j = 0; j < n; ++j) {
              double sum = 0;
              for (std::size_t p = 0; p < k; ++p) sum += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
              expected[i * n + j] = 2.0 * sum + beta * (beta != 0.0 ? c[i * n + j] : 0.0);
            }
          }
          blas::gemm(ta, tb, m, n, k, 2.0, a.data(), b.data(), beta, c.data());
          for (std::size_t i = 0; i < m * n; ++i) {
            BOOST_TEST(std::abs(c[i] - expected[i]) < 1e-12, "m " << m << " n " << n << " k " << k << " ta " << ta << " tb "
                                                                 << tb << " beta " << beta << " element " << i << ": "
                                                                 << c[i] << " vs " << expected[i]);
          }
        }
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(gradients_for_every_transpose_combination) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      BOOST_TEST_CONTEXT("transpose_a " << ta << ", transpose_b " << tb) {
        const MatmulOptions options{ta, tb};
        Tensor<double> a = random_tensor(ta ? Shape{4, 3} : Shape{3, 4}, 1);
        Tensor<double> b = random_tensor(tb ? Shape{5, 4} : Shape{4, 5}, 2);
        check_gradients([options](const Inputs& x) { return matmul(x[0], x[1], options); }, {a, b});
        Tensor<double> batch_a = random_tensor(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 3);
        Tensor<double> batch_b = random_tensor(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 4);
        check_gradients([options](const Inputs& x) { return matmul(x[0], x[1], options); }, {batch_a, batch_b});
        check_gradients([options](const Inputs& x) { return matmul(x[0], x[1], options); }, {batch_a, b});
        check_gradients([options](const Inputs& x) { return matmul(x[0], x[1], options); }, {a, batch_b});
      }
    }
  }
}

// Many small products of a batch (attention's per-head products) are shared out over the
// threads, each on one thread, as OpenBLAS would run it alone: two threads give one thread's
// bits, also where the batch shares an operand whose gradient all products accumulate.
BOOST_AUTO_TEST_CASE(small_batched_products_over_two_threads_give_one_threads_bits) {
  const int threads_before = requested_threads();
  set_follow_busy_cores(false);
  auto products = [](int threads) {
    set_num_threads(threads);
    Tensor<double> batch_a = random_tensor({128, 16, 32}, 11);
    Tensor<double> batch_b = random_tensor({128, 32, 16}, 12);
    Tensor<double> shared_a = random_tensor({16, 32}, 13);
    const Tensor<double> weights = random_tensor({128, 16, 16}, 14, -1.0, 1.0, false);
    sum(matmul(batch_a, batch_b) * weights).backward();
    sum(matmul(shared_a, batch_b) * weights).backward();
    return std::vector<Array<double>>{matmul(batch_a, batch_b).value(), batch_a.grad(), batch_b.grad(), shared_a.grad()};
  };
  const std::vector<Array<double>> one = products(1), two = products(2);
  set_num_threads(threads_before);
  set_follow_busy_cores(true);
  for (std::size_t i = 0; i < one.size(); ++i) BOOST_TEST((one[i] == two[i]), "result " << i);
}

BOOST_AUTO_TEST_CASE(gradient_of_one_operand_only) {
  Tensor<double> weights = random_tensor({4, 2}, 5);
  Tensor<double> data = random_tensor({3, 4}, 6, -1.0, 1.0, false);
  check_gradients([&data](const Inputs& x) { return matmul(data, x[0]); }, {weights});
  Tensor<double> out = matmul(data, weights);
  sum(out).backward();
  BOOST_TEST(!data.has_grad());
}

BOOST_AUTO_TEST_CASE(backward_accumulates_into_existing_gradients) {
  Tensor<double> a(shaped<Array<double>>({1, 2}, {1.0, 2.0}), true);
  Tensor<double> b(shaped<Array<double>>({2, 1}, {3.0, 4.0}), true);
  sum(matmul(a, b)).backward();
  sum(matmul(a, b)).backward();
  check_close(a.grad(), Array<double>{{6.0, 8.0}});
  check_close(b.grad(), shaped<Array<double>>({2, 1}, {2.0, 4.0}));
}

BOOST_AUTO_TEST_CASE(empty_inner_dimension_gives_zeros) {
  Tensor<double> a = Tensor<double>::zeros({2, 0});
  Tensor<double> b = Tensor<double>::zeros({0, 3});
  check_close(matmul(a, b).value(), Array<double>(Shape{2, 3}, 0.0));
}

BOOST_AUTO_TEST_CASE(float_matches_double) {
  Tensor<double> a = random_tensor({7, 5}, 7, -1.0, 1.0, false);
  Tensor<double> b = random_tensor({5, 6}, 8, -1.0, 1.0, false);
  Tensor<float> af(Array<float>(xt::cast<float>(a.value())));
  Tensor<float> bf(Array<float>(xt::cast<float>(b.value())));
  // 5 products, each of two inputs rounded to float: 5 + 2 roundings of terms summing to < 5.
  check_close(matmul(af, bf).value(), matmul(a, b).value(), xgrad::testing::sum_error_bound<float>(5 + 2, 5));
}

BOOST_AUTO_TEST_CASE(shape_errors_name_both_shapes) {
  Tensor<double> a = random_tensor({2, 3}, 9);
  Tensor<double> b = random_tensor({4, 5}, 10);
  try {
    matmul(a, b);
    BOOST_FAIL("mismatched inner dimensions must throw");
  } catch (const shape_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("[2, 3]") != std::string::npos, message);
    BOOST_TEST(message.find("[4, 5]") != std::string::npos, message);
  }
  BOOST_CHECK_THROW(matmul(random_tensor({2, 3, 4}, 11), random_tensor({3, 4, 5}, 12)), shape_error);
  BOOST_CHECK_THROW(matmul(random_tensor({4}, 13), random_tensor({4, 2}, 14)), shape_error);
  BOOST_CHECK_NO_THROW(matmul(a, random_tensor({2, 5}, 15), {.transpose_a = true}));
}

BOOST_AUTO_TEST_CASE(linear_values_over_leading_dimensions) {
  Tensor<double> x = Tensor<double>::from({1, 2, 3, 4, 5, 6}, {1, 2, 3});  // [1, 2, 3]
  Tensor<double> w = Tensor<double>::from({1, 0, -1, 0.5, 0.5, 0.5}, {2, 3});
  Tensor<double> b = Tensor<double>::from({10, 20}, {2});
  check_close(linear(x, w, b).value(), shaped<Array<double>>({1, 2, 2}, {8, 23, 8, 27.5}));
  check_close(linear(x, w).value(), shaped<Array<double>>({1, 2, 2}, {-2, 3, -2, 7.5}));
}

BOOST_AUTO_TEST_CASE(linear_gradients) {
  Tensor<double> x = random_tensor({2, 3, 4}, 20);
  Tensor<double> w = random_tensor({5, 4}, 21);
  Tensor<double> b = random_tensor({5}, 22);
  check_gradients([](const Inputs& v) { return linear(v[0], v[1], v[2]); }, {x, w, b});
  check_gradients([](const Inputs& v) { return linear(v[0], v[1]); }, {x, w});
  Tensor<double> frozen = random_tensor({5, 4}, 23, -1.0, 1.0, false);
  check_gradients([&frozen](const Inputs& v) { return linear(v[0], frozen, v[1]); }, {x, b});
}

BOOST_AUTO_TEST_CASE(linear_shape_errors) {
  Tensor<double> x = random_tensor({2, 4}, 24);
  try {
    linear(x, random_tensor({5, 3}, 25));
    BOOST_FAIL("mismatched features must throw");
  } catch (const shape_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("[2, 4]") != std::string::npos, message);
    BOOST_TEST(message.find("[5, 3]") != std::string::npos, message);
  }
  BOOST_CHECK_THROW(linear(x, random_tensor({5, 4}, 26), random_tensor({4}, 27)), shape_error);
}
