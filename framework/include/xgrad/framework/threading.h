#pragma once
// One threading policy for the whole process. The matrix products run on OpenBLAS's own
// thread pool; xgrad starts no other, so that two pools never compete for the same cores.

namespace xgrad {

// Threads used by matrix products (OpenBLAS). 0 or less means one per available core.
void set_num_threads(int threads);
int num_threads();

}  // namespace xgrad
