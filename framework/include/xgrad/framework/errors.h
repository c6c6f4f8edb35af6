#pragma once
// The exceptions xgrad throws. Every message names the operation, the offending values
// (shapes, indices, keys) and what was expected, so that a failure can be fixed from the
// message alone.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace xgrad {

// A tensor shape that an operation cannot accept.
class shape_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// An index (class id, token id, position) outside the range of the dimension it indexes.
class index_error : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

// Misuse of the autograd graph: backward on a tensor that does not require grad, on a
// non-scalar without an output gradient, or through a graph that was already freed.
class graph_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// A file that cannot be read or written, or whose contents are not what was expected: the
// message names the file (and line or key) and what is wrong.
class file_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

// Streams all arguments into one string: message("matmul: ", a, " vs ", b).
template <class... Parts>
std::string message(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

}  // namespace detail
}  // namespace xgrad
