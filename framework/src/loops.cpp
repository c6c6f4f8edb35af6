#include "loops.h"

namespace xgrad::detail {

Strides contiguous_strides(const Shape& shape) {
  Strides strides(shape.size());
  std::ptrdiff_t stride = 1;
  for (std::size_t axis = shape.size(); axis-- > 0;) {
    strides[axis] = stride;
    stride *= static_cast<std::ptrdiff_t>(shape[axis]);
  }
  return strides;
}

Strides broadcast_strides(const Shape& operand, const Shape& result) {
  const Strides own = contiguous_strides(operand);
  const std::size_t offset = result.size() - operand.size();
  Strides strides(result.size(), 0);
  for (std::size_t axis = 0; axis < operand.size(); ++axis) {
    strides[axis + offset] = operand[axis] == 1 ? 0 : own[axis];
  }
  return strides;
}

AxisView axis_view(const Shape& shape, std::size_t axis) {
  AxisView view;
  for (std::size_t i = 0; i < axis; ++i) view.outer *= shape[i];
  view.extent = shape[axis];
  for (std::size_t i = axis + 1; i < shape.size(); ++i) view.inner *= shape[i];
  return view;
}

}  // namespace xgrad::detail
