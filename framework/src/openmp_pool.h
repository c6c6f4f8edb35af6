#pragma once
// Inside the library: whether the products' libraries share parallel_for's threads.

namespace xgrad::detail {

// Whether OpenBLAS's threads are OpenMP's, shared with parallel_for (threading.h): then, and
// only then, the single-precision products may run on oneDNN, whose threads are OpenMP's too.
bool shares_openmp_pool();

}  // namespace xgrad::detail
