#include "xgrad/framework/threading.h"

#include <algorithm>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

// OpenBLAS's own controls, declared here because cblas.h clashes with xtensor-blas.
extern "C" {
void openblas_set_num_threads(int threads);
int openblas_get_num_threads(void);
int openblas_get_parallel(void);  // 0: single-threaded build, 1: pthreads, 2: OpenMP
}

namespace xgrad {
namespace {

// Whether OpenBLAS's threads are OpenMP's, so that parallel_for can use them without
// starting a second pool. Decided by the library loaded at run time, not the one linked.
bool blas_shares_openmp_pool() {
#ifdef _OPENMP
  static const bool shared = openblas_get_parallel() == 2;
  return shared;
#else
  return false;
#endif
}

}  // namespace

void set_num_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  openblas_set_num_threads(threads);
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
}

int num_threads() { return openblas_get_num_threads(); }

void parallel_for(std::size_t count, std::size_t grain, RangeBody body) {
  const std::size_t ranges =
      blas_shares_openmp_pool() ? std::min<std::size_t>(num_threads(), count / std::max<std::size_t>(grain, 1)) : 1;
#ifdef _OPENMP
  if (ranges > 1 && omp_in_parallel() == 0) {
#pragma omp parallel num_threads(static_cast<int>(ranges))
    {
      const auto thread = static_cast<std::size_t>(omp_get_thread_num());
      const auto threads = static_cast<std::size_t>(omp_get_num_threads());
      body(count * thread / threads, count * (thread + 1) / threads);
    }
    return;
  }
#endif
  if (count > 0) body(0, count);
}

}  // namespace xgrad
