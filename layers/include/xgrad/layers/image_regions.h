#pragma once
// An image's feature map as the regions attention reads: one vector per cell of the grid.

#include "xgrad/framework/tensor.h"

namespace xgrad::nn {

// [B, D, rows, columns] -> [B, rows * columns, D], regions in row-major grid order (region r
// is row r / columns, column r % columns). A grid that is not 4-D is a shape_error naming it.
template <class T>
Tensor<T> regions_of_grid(const Tensor<T>& grid);

}  // namespace xgrad::nn
