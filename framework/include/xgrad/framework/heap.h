#pragma once
// A process-wide policy for the C library's heap, for programs that train.

namespace xgrad {

// Every training step allocates and frees the same buffers of a few megabytes (activations,
// gradients, the gates of every time step). By default glibc hands the freed top of its heap
// back to the kernel whenever more than a few megabytes are free there, so the next step
// faults in and zeroes the same pages again: 8% of the classifier's samples at 2 threads were
// such page faults, and keeping the memory made it 10% faster (bench/README.md). After this
// call freed memory stays in the heap and is reused by later allocations of any size (glibc
// splits and merges free blocks). Buffers of 32 MB and more (the largest dynamic threshold
// glibc itself would choose) keep their own mappings, returned to the system when freed, so
// that the peak memory of a model with large output buffers does not grow by keeping them.
// Process-wide, like set_num_threads: call it once, at the start of a program that trains.
// Returns false, changing nothing, where the C library is not glibc's or does not take the
// setting (as under AddressSanitizer).
bool keep_freed_heap_memory() noexcept;

}  // namespace xgrad
