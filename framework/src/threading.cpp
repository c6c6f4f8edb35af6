#include "xgrad/framework/threading.h"

#include <thread>

// OpenBLAS's own controls, declared here because cblas.h clashes with xtensor-blas.
extern "C" {
void openblas_set_num_threads(int threads);
int openblas_get_num_threads(void);
}

namespace xgrad {

void set_num_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  openblas_set_num_threads(threads);
}

int num_threads() { return openblas_get_num_threads(); }

}  // namespace xgrad
