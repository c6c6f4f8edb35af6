#pragma once
// The instruction-set paths a test runs on (isa.h): shared by the suites that run every path
// the CPU supports in one process.

#include <vector>

#include <boost/test/unit_test.hpp>

#include "xgrad/framework/isa.h"

namespace xgrad::testing {

// Every instruction set this CPU runs, baseline first.
inline std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (const Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512}) {
    if (isa <= supported_isa()) isas.push_back(isa);
  }
  return isas;
}

// The kernels use `isa` until the end of the scope, then the cap they had before.
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa) : previous_(active_isa()) { BOOST_TEST_REQUIRE((set_max_isa(isa) == isa)); }
  ~ScopedIsa() { set_max_isa(previous_); }
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  Isa previous_;
};

}  // namespace xgrad::testing
