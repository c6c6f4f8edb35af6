// Products with int8 and bfloat16 weights (quantized.h) on every instruction-set path this CPU
// runs (the AVX-512 VNNI and BF16 kernels, and oneDNN's VNNI GEMM, where it has them), with one
// and two threads:
// int8 sums are exact, so every path gives the same bits, and both formats stay within the
// error that their rounding allows, derived below. Also their safetensors storage, the files
// it refuses, and the inference-only linear.
#define BOOST_TEST_MODULE quantized
#include "xgrad_test.h"
#include "isa_paths.h"

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <limits>
#include <vector>

using namespace xgrad;
using xgrad::testing::ScopedIsa;
using xgrad::testing::ScopedThreads;
using xgrad::testing::supported_isas;

namespace {

struct Sizes {
  std::size_t m, n, k;
};

// One row (decoding), odd row counts, sums shorter than a vector, not a whole number of the
// kernels' 64-byte and 32-pair steps, and a long one; weight rows not a multiple of four; and
// batches of rows that int8 multiplies with oneDNN's GEMM where the CPU has VNNI.
constexpr std::array<Sizes, 9> sizes{{{1, 9, 1}, {1, 301, 1792}, {3, 7, 63}, {2, 5, 64}, {5, 66, 65}, {7, 13, 200},
                                      {4, 130, 3001}, {8, 33, 129}, {37, 70, 1000}}};

Array<float> uniform(Shape shape, Generator& generator, double bound = 1.0) {
  Array<float> values = Array<float>::from_shape(shape);
  for (float& v : values) v = static_cast<float>(generator.uniform(-bound, bound));
  return values;
}

struct Operands {
  Array<float> weight, x, bias;
};

// A weight [n, k], x [m, k] of a larger range, and a bias [n].
Operands operands(const Sizes& s, Generator& generator) {
  return {uniform({s.n, s.k}, generator, 0.3), uniform({s.m, s.k}, generator, 2.0), uniform({s.n}, generator)};
}

// y = x W^T + b through QuantizedMatrix::multiply_add onto rows of the bias.
std::vector<float> product(const QuantizedMatrix& w, const Array<float>& x, const Array<float>& bias) {
  const std::size_t m = x.shape()[0];
  std::vector<float> y;
  for (std::size_t i = 0; i < m; ++i) y.insert(y.end(), bias.data(), bias.data() + w.rows());
  w.multiply_add(m, x.data(), y.data());
  return y;
}

// The products on every instruction set and thread count, which must agree with each other
// (exactly for int8; bf16 only in its rounding, so the caller checks each against its bound).
template <class Check>
void on_every_path(const QuantizedMatrix& w, const Array<float>& x, const Array<float>& bias, Check check) {
  for (const Isa isa : supported_isas()) {
    const ScopedIsa cap(isa);
    for (int threads : {1, 2}) {
      BOOST_TEST_CONTEXT(isa_name(isa) << ", " << threads << " threads") {
        const ScopedThreads scoped(threads);
        check(product(w, x, bias));
      }
    }
  }
}

// The largest |value| of a row.
float largest(const float* row, std::size_t count) {
  float result = 0;
  for (std::size_t l = 0; l < count; ++l) result = std::max(result, std::abs(row[l]));
  return result;
}

}  // namespace

// Rounding x to steps of s_x = max|x| / 127 and W to steps of s_w (per row) moves each value by
// at most half a step, so |x w - x' w'| <= |x| s_w / 2 + |w| s_x / 2 + s_x s_w / 4 per term; the
// exact integer sum then meets two float roundings (the scales' product and the result) and
// the bias: 4 eps |y| more. A wrong scale or row is off by whole steps.
BOOST_AUTO_TEST_CASE(int8_products_are_the_same_on_every_path_and_within_the_rounding_of_both_operands) {
  Generator generator(11);
  for (const Sizes& s : sizes) {
    BOOST_TEST_CONTEXT(s.m << " x " << s.n << " x " << s.k) {
      // References, not a structured binding: the lambdas below capture them (clang before 16
      // cannot capture a binding).
      const Operands drawn = operands(s, generator);
      const Array<float>&weight = drawn.weight, &x = drawn.x, &bias = drawn.bias;
      const QuantizedMatrix w(weight, WeightFormat::int8);
      std::vector<float> first;
      on_every_path(w, x, bias, [&](const std::vector<float>& y) {
        if (first.empty()) first = y;
        BOOST_TEST(std::memcmp(y.data(), first.data(), y.size() * sizeof(float)) == 0);
      });
      for (std::size_t i = 0; i < s.m; ++i) {
        const float* xi = x.data() + i * s.k;
        const double step_x = largest(xi, s.k) / 127.0;
        for (std::size_t j = 0; j < s.n; ++j) {
          const float* wj = weight.data() + j * s.k;
          const double step_w = largest(wj, s.k) / 127.0;
          double exact = bias.data()[j], bound = 0;
          for (std::size_t l = 0; l < s.k; ++l) {
            exact += double(xi[l]) * wj[l];
            bound += std::abs(xi[l]) * step_w / 2 + std::abs(wj[l]) * step_x / 2 + step_x * step_w / 4;
          }
          bound += 4 * std::numeric_limits<float>::epsilon() * (std::abs(exact) + bound);
          BOOST_TEST(std::abs(first[i * s.n + j] - exact) <= bound, "y[" << i << "][" << j << "] = " << first[i * s.n + j]
                                                                          << ", exact " << exact << ", bound " << bound);
        }
      }
    }
  }
}

// bf16 values multiply exactly in float, so a path differs from the exact sum of the rounded
// values only by its float sum: K eps sum |terms| (Higham's gamma_K, with room for the bias
// and for vdpbf16ps reading denormals as zero, which these values never are). Against the
// float values, rounding each operand to 8 significant bits adds 2^-8 sum |x w| more.
BOOST_AUTO_TEST_CASE(bf16_products_are_the_exact_sums_of_the_rounded_values_up_to_float_summation) {
  Generator generator(12);
  for (const Sizes& s : sizes) {
    BOOST_TEST_CONTEXT(s.m << " x " << s.n << " x " << s.k) {
      // References, not a structured binding: the lambdas below capture them (clang before 16
      // cannot capture a binding).
      const Operands drawn = operands(s, generator);
      const Array<float>&weight = drawn.weight, &x = drawn.x, &bias = drawn.bias;
      const QuantizedMatrix w(weight, WeightFormat::bf16);
      on_every_path(w, x, bias, [&](const std::vector<float>& y) {
        for (std::size_t i = 0; i < s.m; ++i) {
          for (std::size_t j = 0; j < s.n; ++j) {
            const double b = bias.data()[j];
            double rounded = b, exact = b, magnitude = std::abs(b);
            for (std::size_t l = 0; l < s.k; ++l) {
              const float xv = x.data()[i * s.k + l], wv = weight.data()[j * s.k + l];
              const auto to_bf16 = [](float v) { return double(safetensors::bf16_to_float(safetensors::float_to_bf16(v))); };
              rounded += to_bf16(xv) * to_bf16(wv);
              exact += double(xv) * wv;
              magnitude += std::abs(double(xv) * wv);
            }
            const double summation = 2 * double(s.k + 1) * std::numeric_limits<float>::epsilon() * magnitude;
            const float value = y[i * s.n + j];
            BOOST_TEST(std::abs(value - rounded) <= summation, "y[" << i << "][" << j << "] = " << value << ", rounded "
                                                                    << rounded << ", bound " << summation);
            BOOST_TEST(std::abs(value - exact) <= summation + std::ldexp(magnitude, -8));
          }
        }
      });
    }
  }
}

// int8 gives NaN (a scale cannot be taken), bf16 what float arithmetic gives (an infinity
// times a weight is an infinity, or NaN where the sum meets both signs).
BOOST_AUTO_TEST_CASE(a_row_of_x_with_a_nan_or_an_infinity_gives_a_row_that_is_not_finite_and_leaves_the_others) {
  Generator generator(13);
  const Array<float> weight = uniform({6, 70}, generator);
  for (const WeightFormat format : {WeightFormat::int8, WeightFormat::bf16}) {
    for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
      BOOST_TEST_CONTEXT(weight_format_name(format) << ", " << bad) {
        Array<float> x = uniform({3, 70}, generator);
        const QuantizedMatrix w(weight, format);
        const Array<float> zeros = xt::zeros<float>({6});
        const std::vector<float> clean = product(w, x, zeros);
        x(1, 5) = bad;
        const std::vector<float> y = product(w, x, zeros);
        for (std::size_t j = 0; j < 6; ++j) {
          BOOST_TEST(!std::isfinite(y[6 + j]));
          if (format == WeightFormat::int8) BOOST_TEST(std::isnan(y[6 + j]));
          BOOST_TEST(y[j] == clean[j]);
          BOOST_TEST(y[12 + j] == clean[12 + j]);
        }
      }
    }
  }
}

// A loaded model rounds its dequantised weights again: that must give back the same matrix.
BOOST_AUTO_TEST_CASE(storage_round_trips_and_rounding_the_dequantised_values_again_changes_nothing) {
  Generator generator(14);
  Array<float> weight = uniform({9, 77}, generator);
  for (std::size_t l = 0; l < 77; ++l) weight(4, l) = 0.0F;  // an all-zero row: scale 0
  const Array<float> x = uniform({2, 77}, generator), bias = uniform({9}, generator);
  for (const WeightFormat format : {WeightFormat::int8, WeightFormat::bf16}) {
    BOOST_TEST_CONTEXT(weight_format_name(format)) {
      const QuantizedMatrix w(weight, format);
      safetensors::Writer writer;
      w.write(writer, "output.weight");
      writer.add("output.bias", bias);
      const safetensors::File file = safetensors::File::parse(writer.serialize(), "model.safetensors");
      BOOST_TEST(safetensors::dtype_name(file.entry("output.weight").dtype) == (format == WeightFormat::int8 ? "I8" : "BF16"));
      const QuantizedMatrix read = QuantizedMatrix::read(file, "output.weight");
      const QuantizedMatrix again(w.dequantized(), format);
      BOOST_TEST(product(read, x, bias) == product(w, x, bias));
      BOOST_TEST(product(again, x, bias) == product(w, x, bias));
      const safetensors::File floats = dequantized(file);
      BOOST_TEST(floats.names() == (std::vector<std::string>{"output.bias", "output.weight"}));
      BOOST_TEST(floats.floats<float>("output.weight") == w.dequantized());
      BOOST_TEST(floats.floats<float>("output.bias") == bias);
    }
  }
}

BOOST_AUTO_TEST_CASE(files_whose_int8_matrices_lack_sound_scales_are_refused_naming_the_tensor) {
  const Array<std::int8_t> values = Array<std::int8_t>::from_shape({2, 3});
  auto refused = [&](const std::function<void(safetensors::Writer&)>& add_scales, const std::string& expected) {
    safetensors::Writer writer;
    writer.add("w", values);
    add_scales(writer);
    const safetensors::File file = safetensors::File::parse(writer.serialize(), "m.safetensors");
    BOOST_CHECK_EXCEPTION(dequantized(file), file_error, [&](const file_error& e) {
      const std::string message = e.what();
      BOOST_TEST_MESSAGE(message);
      return message.find("m.safetensors: tensor 'w'") != std::string::npos && message.find(expected) != std::string::npos;
    });
  };
  refused([](safetensors::Writer&) {}, "no 'w_scale'");
  refused([](safetensors::Writer& w) { w.add("w_scale", Array<float>{1.0F, 2.0F, 3.0F}); }, "expected F32 of shape [2]");
  refused([](safetensors::Writer& w) { w.add("w_scale", Array<double>{1.0, 2.0}); }, "are F64");
  refused([](safetensors::Writer& w) { w.add("w_scale", Array<float>{1.0F, -2.0F}); }, "scale -2 for row 1");
  refused([](safetensors::Writer& w) { w.add("w_scale", Array<float>{std::nanf(""), 2.0F}); }, "for row 0");
  safetensors::Writer writer;
  writer.add("v", Array<std::int8_t>{1, 2, 3});
  BOOST_CHECK_THROW(dequantized(safetensors::File::parse(writer.serialize(), "m.safetensors")), file_error);
}

BOOST_AUTO_TEST_CASE(the_quantised_linear_takes_leading_dimensions_checks_shapes_and_refuses_to_record) {
  Generator generator(15);
  const Array<float> weight = uniform({5, 8}, generator), bias = uniform({5}, generator), x = uniform({2, 3, 8}, generator);
  const QuantizedMatrix w(weight, WeightFormat::int8);
  {
    const NoGradGuard no_grad;
    const Tensor<float> y = linear(Tensor<float>(x), w, Tensor<float>(bias));
    BOOST_TEST((y.shape() == Shape{2, 3, 5}));
    const std::vector<float> rows = product(w, xt::reshape_view(x, {6, 8}), bias);
    BOOST_TEST(std::vector<float>(y.data(), y.data() + y.size()) == rows);
    BOOST_CHECK_THROW(linear(Tensor<float>(uniform({2, 7}, generator)), w), shape_error);
    BOOST_CHECK_THROW(linear(Tensor<float>(x), w, Tensor<float>(uniform({4}, generator))), shape_error);
  }
  Tensor<float> trained(x, true);
  BOOST_CHECK_THROW(linear(trained, w), std::logic_error);
  BOOST_CHECK_THROW(QuantizedMatrix(weight, WeightFormat::float32), std::invalid_argument);
  Array<float> broken = weight;
  broken(0, 0) = std::numeric_limits<float>::infinity();
  BOOST_CHECK_THROW(QuantizedMatrix(broken, WeightFormat::int8), std::invalid_argument);
  BOOST_TEST(weight_format_name(weight_format_from_string("bf16")) == "bf16");
  BOOST_CHECK_THROW(weight_format_from_string("int4"), std::invalid_argument);
}
