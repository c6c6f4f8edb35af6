#pragma once
// Large-page advice for arrays that live long and are read whole on every step (parameters).

#include "xgrad/framework/tensor.h"

namespace xgrad {

// Asks the operating system to back `array` with 2 MB pages (Linux transparent huge pages) and
// to move what is already written onto them. Streaming a weight matrix through 4 KB pages costs
// a page-table walk every 4 KB, which in a virtual machine is a nested walk: batch-1 decoding,
// which reads every weight once per token, ran 12% faster with its weights on 2 MB pages
// (bench/README.md). Only the whole 2 MB pages inside the array are advised, so arrays smaller
// than that are left alone. It is advice: where the system offers no large pages (another OS,
// THP switched off, a kernel before 6.1 that cannot collapse pages already written), the array
// stays where it is and nothing fails. Returns true when the system took the advice for every
// whole 2 MB page of the array, false when there is none or it declined.
template <class T>
bool advise_large_pages(Array<T>& array) noexcept;

}  // namespace xgrad
