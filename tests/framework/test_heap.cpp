// The heap policy for training: after keep_freed_heap_memory() a freed tensor buffer stays in
// the heap for the next allocation instead of going back to the kernel, and a buffer of 32 MB
// or more still gets its own mapping, returned when freed. Read from glibc's own accounting
// (mallinfo2); where the C library is another, the call must say it changed nothing.
#define BOOST_TEST_MODULE heap
#include "xgrad_test.h"

#include <cstddef>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "xgrad/framework/heap.h"

using namespace xgrad;

namespace {

// Whether this build's allocator is glibc's own (sanitizers replace it and ignore mallopt).
constexpr bool glibc_allocator() {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  return true;
#else
  return false;
#endif
}

Array<float> written(std::size_t bytes) {
  Array<float> array = Array<float>::from_shape({bytes / sizeof(float)});
  array.fill(1.0f);
  return array;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_policy_is_taken_exactly_where_the_allocator_is_glibcs) {
  BOOST_TEST(keep_freed_heap_memory() == glibc_allocator());
}

#if defined(__GLIBC__)
// Run before any buffer of this size was freed, so that glibc's adaptive threshold, which the
// policy turns off, has not yet moved: without the policy the 8 MB buffer would be mapped on
// its own and unmapped when freed.
BOOST_AUTO_TEST_CASE(a_freed_buffer_stays_in_the_heap_and_a_large_one_does_not) {
  if (!keep_freed_heap_memory()) {
    BOOST_TEST_MESSAGE("not glibc's allocator: nothing to check");
    return;
  }
  constexpr std::size_t medium = std::size_t(8) << 20, large = std::size_t(40) << 20;
  const std::size_t mapped_before = mallinfo2().hblkhd;
  {
    const Array<float> buffer = written(medium);
    BOOST_TEST(mallinfo2().hblkhd < mapped_before + medium);  // in the heap, not mapped on its own
  }
  const std::size_t heap_after_free = mallinfo2().arena;
  BOOST_TEST(heap_after_free >= medium);                     // kept, not trimmed
  BOOST_TEST(mallinfo2().fordblks >= medium);                // as free memory for the next one
  {
    const Array<float> again = written(medium);
    BOOST_TEST(mallinfo2().arena == heap_after_free);        // reused: the heap did not grow
    const Array<float> buffer = written(large);
    BOOST_TEST(mallinfo2().hblkhd >= mapped_before + large);  // its own mapping
  }
  BOOST_TEST(mallinfo2().hblkhd < mapped_before + large);    // returned when freed
}
#endif
