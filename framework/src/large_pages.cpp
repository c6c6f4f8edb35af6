#include "xgrad/framework/large_pages.h"

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace xgrad {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
namespace {
#if defined(MADV_COLLAPSE)
constexpr int madvise_collapse = MADV_COLLAPSE;
#else
constexpr int madvise_collapse = 25;  // Linux 6.1's value, for C libraries older than that kernel
#endif
}  // namespace
#endif

template <class T>
bool advise_large_pages(Array<T>& array) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t large_page = std::uintptr_t(2) << 20;
  const auto begin = reinterpret_cast<std::uintptr_t>(array.data());
  const std::uintptr_t first = (begin + large_page - 1) & ~(large_page - 1);
  const std::uintptr_t last = (begin + array.size() * sizeof(T)) & ~(large_page - 1);
  if (first >= last) return false;
  void* const range = reinterpret_cast<void*>(first);
  // Pages touched from now on come as 2 MB pages; those already written need a collapse.
  if (madvise(range, last - first, MADV_HUGEPAGE) != 0) return false;
  return madvise(range, last - first, madvise_collapse) == 0;  // kernels before 6.1 refuse
#else
  (void)array;
  return false;
#endif
}

template bool advise_large_pages(Array<float>&) noexcept;
template bool advise_large_pages(Array<double>&) noexcept;

}  // namespace xgrad
