#pragma once
// Helpers shared by the test suites: reproducible random tensors, a non-trivial scalar to
// differentiate, and closeness checks that report the first differing element.

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>

#include <xtensor/xview.hpp>

#include "xgrad/framework.h"
#include "xgrad/layers.h"

namespace xgrad::testing {

// Matrix products and parallel_for use `threads` threads until the end of the scope, whatever
// else runs on the machine (the suites run two at a time), then one again, as the suites run
// (OPENBLAS_NUM_THREADS=1), however the scope ends.
class ScopedThreads {
 public:
  explicit ScopedThreads(int threads) {
    set_follow_busy_cores(false);
    set_num_threads(threads);
  }
  ~ScopedThreads() {
    set_num_threads(1);
    set_follow_busy_cores(true);
  }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;
};

// An array of `shape` filled in row-major order: for shapes like [2, 1], whose nested brace
// form xtensor cannot tell from a shape.
template <class A = Indices>
A shaped(const Shape& shape, std::initializer_list<typename A::value_type> values) {
  A result = A::from_shape(shape);
  BOOST_TEST_REQUIRE(values.size() == result.size());
  std::copy(values.begin(), values.end(), result.begin());
  return result;
}

// Uniform values in [low, high): uneven, non-symmetric inputs that do not hide bugs the way
// ones or symmetric patterns can.
inline Tensor<double> random_tensor(const Shape& shape, std::uint64_t seed, double low = -1.0, double high = 1.0,
                                    bool requires_grad = true) {
  Generator generator(seed);
  Array<double> values = Array<double>::from_shape(shape);
  for (std::size_t i = 0; i < values.size(); ++i) values.data()[i] = generator.uniform(low, high);
  return Tensor<double>(std::move(values), requires_grad);
}

// Random values whose magnitude is at least `margin`, away from kinks at 0 (relu, abs).
inline Tensor<double> random_away_from_zero(const Shape& shape, std::uint64_t seed, double margin = 0.1) {
  Tensor<double> t = random_tensor(shape, seed);
  for (double& v : t.mutable_value()) v = v < 0 ? v - margin : v + margin;
  return t;
}

// sum(y * w) with fixed weights that differ element to element, so that every element of
// y receives its own output gradient, never all ones.
inline Tensor<double> weighted_sum(const Tensor<double>& y) {
  Array<double> weights = Array<double>::from_shape(y.shape());
  for (std::size_t i = 0; i < weights.size(); ++i) weights.data()[i] = 0.3 + 0.9 * std::sin(1.7 * double(i) + 0.4);
  return sum(y * Tensor<double>(std::move(weights)));
}

// Gradcheck of weighted_sum(f(inputs)) with the default (PyTorch) tolerances.
inline void check_gradients(const std::function<Tensor<double>(const std::vector<Tensor<double>>&)>& f,
                            const std::vector<Tensor<double>>& inputs, GradcheckOptions options = {}) {
  const GradcheckResult result = gradcheck([&](const auto& xs) { return weighted_sum(f(xs)); }, inputs, options);
  BOOST_TEST(result.passed, result.report);
}

// How far a floating-point sum of `terms` rounded terms may be from the exact sum, or from
// the same sum taken in another order (another kernel, another thread count, FMA or not):
// terms * epsilon * sum of |terms| (the first-order bound, Higham, Accuracy and Stability of
// Numerical Algorithms, 2nd ed., section 3.1). Tolerances of float results derive from it,
// never from what one CPU happens to give.
template <class T>
constexpr double sum_error_bound(std::size_t terms, double sum_of_magnitudes) {
  return static_cast<double>(terms) * std::numeric_limits<T>::epsilon() * sum_of_magnitudes;
}

template <class A, class B>
void check_close(const A& actual_expression, const B& expected_expression, double tolerance = 1e-12) {
  // Evaluate first: views and expressions have no contiguous data() of their own.
  const xt::xarray<double> actual = xt::cast<double>(actual_expression);
  const xt::xarray<double> expected = xt::cast<double>(expected_expression);
  BOOST_TEST_REQUIRE(to_string(Shape(actual.shape().begin(), actual.shape().end())) ==
                     to_string(Shape(expected.shape().begin(), expected.shape().end())));
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = actual.data()[i];
    const double e = expected.data()[i];
    const bool same = (std::isinf(a) && a == e) || std::abs(a - e) <= tolerance * (1.0 + std::abs(e));
    BOOST_TEST(same, "element " << i << ": " << a << " != expected " << e);
    if (!same) return;
  }
}

// A scratch directory, removed with everything in it when the test ends.
// The message of the exception `action` throws as E (the test fails if it throws nothing).
template <class E, class F>
std::string error_message(F&& action) {
  try {
    action();
  } catch (const E& e) {
    return e.what();
  }
  BOOST_FAIL("no exception was thrown");
  return {};
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("xgrad-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
  // Writes `contents` to a file of that name here and returns its path.
  std::string write(const std::string& name, const std::string& contents) const {
    std::ofstream(path / name, std::ios::binary) << contents;
    return file(name);
  }
};

// Everything a stream yields until its end, read with a plain std::ifstream: for FIFOs, which
// read_file, like every reader of the library, refuses.
inline std::string read_until_end(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>()};
}

// A PyTorch reference file from tests/fixtures/data (written by tests/fixtures/make_fixtures.py).
inline safetensors::File fixture(const std::string& name) {
  return safetensors::File::read(std::string(XGRAD_FIXTURE_DIR) + "/" + name + ".safetensors");
}

// Tolerances for comparing with PyTorch's float64 fixtures: relative 1e-6 in double; in float
// the rounding bound of the fixtures' longest sums, 128 terms (an RNN's weight gradient: 3
// sequences x 4 steps x 2 directions, each through a chain of 4-term products) whose
// magnitudes sum to at most 8 (1 + |value|): about 1.2e-4.
template <class T>
constexpr double parity_tolerance = std::is_same_v<T, double> ? 1e-6 : sum_error_bound<float>(128, 8);

// Sets every parameter of `module` from the fixture's "param.<name>" tensors; a parameter
// the fixture lacks fails the test, which also checks that names match PyTorch's.
template <class Module>
void load_parameters(Module& module, const safetensors::File& file) {
  using T = typename decltype(module.parameters())::value_type::value_type;
  for (auto& [name, parameter] : module.named_parameters()) {
    BOOST_TEST_REQUIRE(file.contains("param." + name), "the PyTorch fixture has no parameter " << name);
    parameter.mutable_value() = file.template floats<T>("param." + name);
  }
}

// sum(output * w) with the fixture's weights w: the scalar the fixture backpropagated.
template <class T>
Tensor<T> fixture_objective(const Tensor<T>& output, const safetensors::File& file) {
  return sum(output * Tensor<T>(file.template floats<T>("output_weights")));
}

}  // namespace xgrad::testing
