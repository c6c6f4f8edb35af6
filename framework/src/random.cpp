#include "xgrad/framework/random.h"

#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>

namespace xgrad {

Generator::Generator(std::uint64_t seed) : engine_(seed) {}

void Generator::seed(std::uint64_t seed) { engine_.seed(seed); }

std::uint64_t Generator::next() { return engine_(); }

double Generator::uniform() { return unit_interval(next()); }

double Generator::uniform(double low, double high) { return low + (high - low) * uniform(); }

double Generator::normal() {
  const double u1 = 1.0 - uniform();  // in (0, 1], so the logarithm is finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t Generator::below(std::uint64_t bound) {
  if (bound == 0) throw std::invalid_argument("Generator::below: the bound must be positive");
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;  // reject the biased tail
  std::uint64_t value = next();
  while (value >= limit) value = next();
  return value % bound;
}

std::string Generator::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  if (!in) throw std::invalid_argument("Generator::set_state: the text is not a saved generator state");
  engine_ = restored;
}

Generator& default_generator() {
  thread_local Generator generator;
  return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

}  // namespace xgrad
