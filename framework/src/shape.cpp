#include "xgrad/framework/shape.h"

#include <algorithm>

#include "xgrad/framework/errors.h"

namespace xgrad {

std::string to_string(const Shape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

std::ostream& operator<<(std::ostream& out, const Shape& shape) { return out << to_string(shape); }

std::size_t element_count(const Shape& shape) {
  std::size_t count = 1;
  for (std::size_t extent : shape) count *= extent;
  return count;
}

std::size_t normalize_axis(const char* op, int axis, std::size_t rank) {
  const auto signed_rank = static_cast<long>(rank);
  const long normalized = axis < 0 ? axis + signed_rank : axis;
  if (normalized < 0 || normalized >= signed_rank) {
    throw shape_error(detail::message(op, ": axis ", axis, " is out of range for a tensor of rank ",
                                      rank, " (expected ", -signed_rank, " <= axis < ", signed_rank,
                                      ")"));
  }
  return static_cast<std::size_t>(normalized);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape result(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    // Align from the back: the last axes of both shapes pair up.
    const std::size_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::size_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      throw shape_error(detail::message(op, ": shapes ", a, " and ", b,
                                        " do not broadcast (axis ", i, " of the result has sizes ",
                                        da, " and ", db, "; each must be equal or 1)"));
    }
    result[i] = da == 1 ? db : da;
  }
  return result;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t offset = to.size() - from.size();
  for (std::size_t i = 0; i < from.size(); ++i) {
    if (from[i] != 1 && from[i] != to[i + offset]) return false;
  }
  return true;
}

}  // namespace xgrad
