#pragma once
// exp, sigmoid and tanh for the kernels' inner loops. The float versions are branch-free
// arithmetic that the compiler vectorises (about ten times faster than a libm call per
// element), accurate to a few units in the last place; the double versions are the standard
// library's, so that gradient checks in double keep full precision.
//
//   exp:      2^n * p(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 split in two parts so r is
//             exact), p the degree-7 Taylor polynomial (|error| < 1e-8 relative on |r| <= ln2/2)
//   sigmoid:  1 / (1 + exp(-x)), no cancellation anywhere
//   tanh:     1 - 2 / (1 + exp(2x)), or for |x| < 1/4 its odd series to x^11, where the first
//             form would lose relative accuracy to cancellation
// NaN propagates; overflow gives +inf (exp), 1 (sigmoid) or +-1 (tanh). Always inlined, so
// that kernels compiled for a wider instruction set (isa.h) inline them too: GCC's heuristics
// did not, and a call per element keeps a loop scalar.

#include <bit>
#include <cmath>
#include <cstdint>

namespace xgrad::math {

[[gnu::always_inline]] inline double exp(double x) { return std::exp(x); }
[[gnu::always_inline]] inline double sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x)); }
[[gnu::always_inline]] inline double tanh(double x) { return std::tanh(x); }

[[gnu::always_inline]] inline float exp(float x) {
  // Beyond these bounds the result is 0 or +inf in float.
  const float clamped = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
  // round(x / ln 2): adding and subtracting 1.5 * 2^23 rounds to the nearest integer in any
  // float unit, where nearbyint would need SSE4.1 to vectorise.
  const float n = (clamped * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (clamped - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;  // x - n ln 2
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n in two factors, so that both exponents stay within a float's normal range.
  const auto k = static_cast<std::int32_t>(n);
  const std::int32_t half = k / 2;
  const float scale_a = std::bit_cast<float>((half + 127) << 23);
  const float scale_b = std::bit_cast<float>((k - half + 127) << 23);
  const float result = p * scale_a * scale_b;
  return x != x ? x : result;  // NaN in, NaN out
}

[[gnu::always_inline]] inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

[[gnu::always_inline]] inline float tanh(float x) {
  const float via_exp = 1.0f - 2.0f / (1.0f + exp(2.0f * x));
  const float x2 = x * x;
  float series = -1382.0f / 155925.0f;
  series = series * x2 + 62.0f / 2835.0f;
  series = series * x2 - 17.0f / 315.0f;
  series = series * x2 + 2.0f / 15.0f;
  series = series * x2 - 1.0f / 3.0f;
  series = series * x2 + 1.0f;
  return std::abs(x) < 0.25f ? x * series : via_exp;
}

}  // namespace xgrad::math
