#pragma once
// Shapes, axes and NumPy broadcasting rules shared by every operation.

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include <xtensor/xstorage.hpp>

namespace xgrad {

// The shape type of xt::xarray: up to four dimensions are stored inline.
using Shape = xt::svector<std::size_t, 4>;

// Axes may be negative and count from the back, as in NumPy and PyTorch.
using Axes = std::vector<int>;

// "[2, 3, 4]"; "[]" for a scalar.
std::string to_string(const Shape& shape);
std::ostream& operator<<(std::ostream& out, const Shape& shape);

std::size_t element_count(const Shape& shape);

// Maps `axis` (possibly negative) into [0, rank); throws shape_error naming `op` otherwise.
std::size_t normalize_axis(const char* op, int axis, std::size_t rank);

// The NumPy broadcast of two shapes; throws shape_error naming `op` and both shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// True when `from` broadcasts to exactly `to` (so that a mask or operand can be expanded).
bool broadcasts_to(const Shape& from, const Shape& to);

}  // namespace xgrad
