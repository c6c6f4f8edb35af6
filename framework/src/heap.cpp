#include "xgrad/framework/heap.h"

#include <climits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace xgrad {

bool keep_freed_heap_memory() noexcept {
#if defined(__GLIBC__)
  constexpr int own_mapping_bytes = 32 << 20;
  // Setting either value also turns off glibc's adaptive threshold, which would otherwise
  // move both as buffers are freed.
  return mallopt(M_MMAP_THRESHOLD, own_mapping_bytes) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
#else
  return false;
#endif
}

}  // namespace xgrad
