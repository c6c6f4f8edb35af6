#pragma once
// Seeded random numbers. Every random choice xgrad makes (dropout masks, initial weights,
// batch order) draws from a Generator, so that one seed reproduces a whole run. The
// numbers are computed here from the raw 64-bit engine output, not by the standard
// library's distributions, so they are the same with every compiler.

#include <cstdint>
#include <random>
#include <string>

namespace xgrad {

// The top 53 bits of a random 64-bit value as a double uniform in [0, 1) (the spacing at
// which doubles below 1 are exact). Generator and CounterStream both convert so.
inline double unit_interval(std::uint64_t bits) noexcept { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

class Generator {
 public:
  explicit Generator(std::uint64_t seed = default_seed);

  void seed(std::uint64_t seed);
  std::uint64_t next();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // Uniform in [low, high).
  double uniform(double low, double high);
  // Standard normal (Box-Muller, one value per call).
  double normal();
  // Uniform integer in [0, bound), without modulo bias.
  std::uint64_t below(std::uint64_t bound);

  // The engine state as text, to save with a checkpoint and restore exactly.
  std::string state() const;
  void set_state(const std::string& state);

  static constexpr std::uint64_t default_seed = 5489;

 private:
  std::mt19937_64 engine_;
};

// Random bits addressed by position instead of drawn in sequence: bits(i) is output i
// (counting from 0) of SplitMix64 seeded with the key, computed without the ones before it, so
// any part of a stream can be computed on any thread and the whole comes out the same.
// Dropout draws one key from a Generator per mask and generates the mask in parallel from it.
class CounterStream {
 public:
  explicit CounterStream(std::uint64_t key) noexcept : key_(key) {}

  // Always inlined, so that kernels compiled for wider instruction sets (isa.h) vectorise it.
  [[gnu::always_inline]] std::uint64_t bits(std::uint64_t index) const noexcept {
    std::uint64_t z = key_ + (index + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform(std::uint64_t index) const noexcept { return unit_interval(bits(index)); }

 private:
  std::uint64_t key_;
};

// The generator used when none is passed explicitly; one per thread.
Generator& default_generator();
// Reseeds the default generator of this thread.
void manual_seed(std::uint64_t seed);

}  // namespace xgrad
