#include "xgrad/framework/isa.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>

namespace xgrad {
namespace {

Isa detect_isa() noexcept {
#if defined(__x86_64__)
  // libgcc's (and compiler-rt's) cpu model also checks that the operating system saves the
  // AVX and AVX-512 registers (XGETBV), without which the instructions fault.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2")) {
    return Isa::avx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2")) {
    return Isa::avx2;
  }
#endif
  return Isa::baseline;
}

Isa capped(Isa isa) noexcept { return std::min(isa, supported_isa()); }

Isa isa_from_environment() noexcept {
  const char* value = std::getenv("XGRAD_MAX_ISA");
  if (value == nullptr || *value == '\0') return supported_isa();
  for (const Isa isa : {Isa::baseline, Isa::avx2, Isa::avx512}) {
    if (isa_name(isa) == value) return capped(isa);
  }
  std::cerr << "xgrad: ignoring XGRAD_MAX_ISA=" << value << ": expected baseline, avx2 or avx512\n";
  return supported_isa();
}

std::atomic<Isa>& active() noexcept {
  static std::atomic<Isa> isa{isa_from_environment()};
  return isa;
}

}  // namespace

Isa supported_isa() noexcept {
  static const Isa isa = detect_isa();
  return isa;
}

Isa active_isa() noexcept { return active().load(std::memory_order_relaxed); }

Isa set_max_isa(Isa isa) noexcept {
  active().store(capped(isa), std::memory_order_relaxed);
  return active_isa();
}

bool has_extension(Avx512Extension extension) noexcept {
  if (active_isa() != Isa::avx512) return false;
#if defined(__x86_64__)
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  static const bool bf16 = __builtin_cpu_supports("avx512bf16");
  return extension == Avx512Extension::vnni ? vnni : bf16;
#else
  return false;
#endif
}

std::string_view isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "baseline";
  }
}

}  // namespace xgrad
