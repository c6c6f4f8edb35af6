#pragma once
// The instruction sets xgrad's hot kernels are compiled for, and the choice among them at run
// time from what the CPU reports, so that one binary built on any x86-64 machine runs its
// kernels with the widest vectors of the machine it runs on (as PyTorch's CPU_CAPABILITY and
// oneDNN's max CPU ISA do), whatever flags the library was built with.
//
// A kernel is a class template over the instruction set whose static `run` is always inlined:
//
//   template <Isa isa> struct Scale {
//     template <class T> XGRAD_KERNEL static void run(std::size_t n, T a, T* x) { ... }
//   };
//   dispatch<Scale>(n, a, x);  // Scale<isa>::run compiled for the active instruction set
//
// dispatch calls one of three wrappers, each compiled with its instruction set's target
// attribute, into which `run` is inlined and vectorised; everything it calls that is not
// inlined stays compiled for the baseline, so no code for a wider set leaks out of the
// wrappers. Results may differ in the last bits between instruction sets (fused multiply-add,
// wider partial sums), never between thread counts.

#include <string_view>
#include <utility>

namespace xgrad {

enum class Isa {
  baseline,  // x86-64: SSE2
  avx2,      // x86-64-v3: AVX2, FMA
  avx512,    // x86-64-v4: AVX-512 F, BW, DQ, VL
};

// The widest instruction set this CPU and its operating system support.
Isa supported_isa() noexcept;

// The instruction set the kernels use: supported_isa(), capped by set_max_isa or, until that
// is called, by the environment variable XGRAD_MAX_ISA (baseline, avx2 or avx512; another
// value is reported once on standard error and ignored).
Isa active_isa() noexcept;

// Caps the kernels at `isa`, or at what the CPU supports if that is less; returns the
// instruction set now active. For tests and comparisons: call it while no kernel runs.
Isa set_max_isa(Isa isa) noexcept;

std::string_view isa_name(Isa isa) noexcept;

// Extensions of AVX-512 that a few kernels use, each with its own target attribute, when the
// active instruction set is avx512: dot products of bytes (int8 weights) and of bfloat16 pairs.
enum class Avx512Extension { vnni, bf16 };

// Whether the active instruction set is avx512 and the CPU reports `extension`.
bool has_extension(Avx512Extension extension) noexcept;

// The always-inlined body of a kernel (see above).
#define XGRAD_KERNEL [[gnu::always_inline]] inline

namespace detail {

#if defined(__x86_64__) && defined(__clang__)
#define XGRAD_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2,f16c,lzcnt,movbe,popcnt")))
#define XGRAD_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512cd,avx2,fma,bmi,bmi2,f16c,lzcnt,movbe,popcnt")))
#elif defined(__x86_64__)
#define XGRAD_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2,f16c,lzcnt,movbe,popcnt")))
// GCC's generic tuning keeps auto-vectorised loops to 256 bits even with AVX-512.
#define XGRAD_TARGET_AVX512                                                                          \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512cd,avx2,fma,bmi,bmi2,f16c,lzcnt," \
                        "movbe,popcnt,prefer-vector-width=512")))
#else  // other architectures: every kernel runs as the compiler builds it
#define XGRAD_TARGET_AVX2
#define XGRAD_TARGET_AVX512
#endif

template <template <Isa> class Kernel, class... Args>
XGRAD_TARGET_AVX512 auto run_avx512(Args&&... args) {
  return Kernel<Isa::avx512>::run(std::forward<Args>(args)...);
}

template <template <Isa> class Kernel, class... Args>
XGRAD_TARGET_AVX2 auto run_avx2(Args&&... args) {
  return Kernel<Isa::avx2>::run(std::forward<Args>(args)...);
}

template <template <Isa> class Kernel, class... Args>
auto run_baseline(Args&&... args) {
  return Kernel<Isa::baseline>::run(std::forward<Args>(args)...);
}

}  // namespace detail

// Kernel<isa>::run(args...) for the instruction set `isa`.
template <template <Isa> class Kernel, class... Args>
auto dispatch_to(Isa isa, Args&&... args) {
  switch (isa) {
    case Isa::avx512: return detail::run_avx512<Kernel>(std::forward<Args>(args)...);
    case Isa::avx2: return detail::run_avx2<Kernel>(std::forward<Args>(args)...);
    default: return detail::run_baseline<Kernel>(std::forward<Args>(args)...);
  }
}

// Kernel<isa>::run(args...) for the active instruction set.
template <template <Isa> class Kernel, class... Args>
auto dispatch(Args&&... args) {
  return dispatch_to<Kernel>(active_isa(), std::forward<Args>(args)...);
}

}  // namespace xgrad
