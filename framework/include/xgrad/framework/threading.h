#pragma once
// One threading policy for the whole process: one pool of threads on the cores, shared by
// the matrix products and by xgrad's own loops, never two pools competing for the same
// cores. Where OpenBLAS is built for OpenMP (the Makefile's build links that variant), its
// products, oneDNN's single-precision products and parallel_for all run on the same OpenMP
// threads; with an OpenBLAS that keeps its own pthreads, every product runs on OpenBLAS's
// threads and parallel_for on the calling thread.

#include <cstddef>
#include <type_traits>

namespace xgrad {

// Threads used by matrix products and parallel_for. 0 or less means one per available core.
// The default is OpenBLAS's (OPENBLAS_NUM_THREADS, else one per core).
void set_num_threads(int threads);
// The threads in use now: the count asked for, less one for each core that other processes
// keep busy (below).
int num_threads();
// The count asked for with set_num_threads (or OpenBLAS's default).
int requested_threads();

// Whether the pool follows busy cores (on by default): every 100 ms it looks how much of the
// cores this process may use other processes took, and runs one thread fewer than asked for
// each core they held, since a fork-join region beside a busy core waits a whole time slice
// for its descheduled thread at every join. Off, the pool keeps the count asked for, as a
// test of thread counts needs; results of xgrad's own loops are the same bits either way,
// OpenBLAS's products only within rounding (they may sum in another order).
void set_follow_busy_cores(bool enabled);

namespace detail {
// Looks at the machine's load if 100 ms have passed since the last look (a clock read
// otherwise); parallel_for and the matrix products call it before they fork.
void follow_busy_cores();
}  // namespace detail

// A non-owning reference to a callable body(begin, end), so that parallel_for needs neither
// a template in this header nor a heap allocation per call.
class RangeBody {
 public:
  template <class Body>
    requires std::is_invocable_v<Body&, std::size_t, std::size_t> &&
             (!std::is_same_v<std::remove_cvref_t<Body>, RangeBody>)
  RangeBody(Body&& body)  // NOLINT(google-explicit-constructor): passed as a lambda
      : object_(const_cast<void*>(static_cast<const void*>(&body))),
        call_([](void* object, std::size_t begin, std::size_t end) {
          (*static_cast<std::remove_reference_t<Body>*>(object))(begin, end);
        }) {}

  void operator()(std::size_t begin, std::size_t end) const { call_(object_, begin, end); }

 private:
  void* object_;
  void (*call_)(void*, std::size_t, std::size_t);
};

// Elements of simple arithmetic (a few operations per element, memory-bound) worth waking a
// second thread for: below this, waking it costs more than it saves.
inline constexpr std::size_t elementwise_grain = std::size_t(1) << 15;

// Values of transcendental arithmetic (exp, tanh, log: tens of cycles each) worth waking a
// second thread for.
inline constexpr std::size_t transcendental_grain = 4096;

// Multiply-adds of a matrix product worth waking a second thread for.
inline constexpr std::size_t multiply_add_grain = std::size_t(1) << 18;

// Rows of `width` values each that make up at least `grain` values (at least one row).
inline std::size_t rows_for_grain(std::size_t width, std::size_t grain) {
  return width >= grain ? 1 : grain / (width == 0 ? 1 : width);
}

// Calls body(begin, end) on contiguous ranges that cover [0, count) exactly once, each at
// least `grain` long (except when count itself is shorter): split over the pool's threads
// when the work is large enough to pay for waking them, else one call on this thread. The
// ranges run concurrently, so they must write disjoint memory; body must not throw.
void parallel_for(std::size_t count, std::size_t grain, RangeBody body);

}  // namespace xgrad
