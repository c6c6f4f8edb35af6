// Products with a packed matrix: c += A B over any column range equals the sum computed
// directly, in float and double, for row counts around the kernel's block of rows, column
// counts around its panel width, either storage of B and rows longer than the product;
// columns outside the range are never written, and a range outside the matrix is an error.
#define BOOST_TEST_MODULE packed_matrix
#include "xgrad_test.h"

#include <vector>

#include "xgrad/framework/packed_matrix.h"

using namespace xgrad;

namespace {

template <class T>
std::vector<T> values(std::size_t count, Generator& generator) {
  std::vector<T> result(count);
  for (T& v : result) v = static_cast<T>(generator.uniform() * 2 - 1);
  return result;
}

// Checks c += A B on columns [first, end) of every row against the sum taken in long double,
// with rows of A and C `padding` values longer than the product needs.
template <class T>
void check_product(std::size_t m, std::size_t k, std::size_t n, bool transposed, std::size_t first, std::size_t end,
                   Generator& generator) {
  constexpr std::size_t padding = 3;
  const std::size_t lda = k + padding, ldc = n + padding;
  const std::vector<T> a = values<T>(m * lda, generator), b = values<T>(k * n, generator);
  const std::vector<T> c_before = values<T>(m * ldc, generator);
  std::vector<T> c = c_before;
  const blas::PackedMatrix<T> packed(b.data(), transposed, k, n);
  BOOST_TEST_REQUIRE(packed.rows() == k);
  BOOST_TEST_REQUIRE(packed.columns() == n);
  packed.multiply_add(m, a.data(), lda, first, end, c.data(), ldc);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < ldc; ++j) {
      const T got = c[i * ldc + j];
      if (j < first || j >= end) {
        BOOST_TEST_REQUIRE(got == c_before[i * ldc + j], "column " << j << " outside [" << first << ", " << end
                                                                   << ") was written (m " << m << ", k " << k
                                                                   << ", n " << n << ")");
        continue;
      }
      long double expected = c_before[i * ldc + j];
      double magnitudes = std::abs(c_before[i * ldc + j]);
      for (std::size_t l = 0; l < k; ++l) {
        const long double term = static_cast<long double>(a[i * lda + l]) * (transposed ? b[j * k + l] : b[l * n + j]);
        expected += term;
        magnitudes += static_cast<double>(std::abs(term));
      }
      // k + 1 terms, and one more rounding where the kernel adds a partial panel into c.
      const double bound = xgrad::testing::sum_error_bound<T>(k + 2, magnitudes);
      BOOST_TEST_REQUIRE(std::abs(static_cast<long double>(got) - expected) <= bound,
                         "c[" << i << "][" << j << "] = " << got << ", expected " << static_cast<T>(expected) << " (m "
                              << m << ", k " << k << ", n " << n << (transposed ? ", transposed" : "") << ")");
    }
  }
}

template <class T>
void check_shapes() {
  Generator generator(7);
  const std::size_t width = blas::PackedMatrix<T>::panel_width();
  for (std::size_t m : {1, 3, 8, 9, 17}) {
    for (std::size_t k : {0, 1, 5, 64}) {
      for (std::size_t n : {std::size_t(1), width - 1, width, width + 3, 2 * width + 5}) {
        for (bool transposed : {false, true}) {
          check_product<T>(m, k, n, transposed, 0, n, generator);
          // Ranges that start or end inside a panel, and a range inside one panel.
          check_product<T>(m, k, n, transposed, n / 3, n - n / 4, generator);
          check_product<T>(m, k, n, transposed, std::min(width, n), n, generator);
        }
      }
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(products_match_the_direct_sum_in_float) { check_shapes<float>(); }

BOOST_AUTO_TEST_CASE(products_match_the_direct_sum_in_double) { check_shapes<double>(); }

// The message of the shape_error that multiply_add over [first, end) throws, or "" if none.
std::string range_error(std::size_t first, std::size_t end) {
  const std::vector<float> b(4 * 5, 1.0f), a(2 * 4, 1.0f);
  std::vector<float> c(2 * 5, 0.0f);
  const blas::PackedMatrix<float> packed(b.data(), false, 4, 5);
  try {
    packed.multiply_add(2, a.data(), 4, first, end, c.data(), 5);
  } catch (const shape_error& e) {
    BOOST_TEST((c == std::vector<float>(2 * 5, 0.0f)), "nothing written before the error");
    return e.what();
  }
  return "";
}

BOOST_AUTO_TEST_CASE(a_range_outside_the_columns_is_an_error_naming_both) {
  const std::string past_the_end = range_error(2, 6);
  BOOST_TEST(past_the_end.find("columns [2, 6) of a 4 x 5 matrix") != std::string::npos, past_the_end);
  const std::string reversed = range_error(3, 2);
  BOOST_TEST(reversed.find("columns [3, 2)") != std::string::npos, reversed);
  BOOST_TEST(range_error(5, 5).empty());  // an empty range at the end is no error
}
