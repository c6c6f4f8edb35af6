#pragma once
// The synthetic image task the image classifier learns in its tests (tests/models) and the
// program trains on (tests/examples): a bright square at a random place in noise; the class is
// the quadrant that holds the square (0 top left, 1 top right, 2 bottom left, 3 bottom right).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "xgrad/framework/random.h"
#include "xgrad/models/image_data.h"

namespace xgrad::testing::squares {

constexpr std::size_t side = 16;         // of an image
constexpr std::size_t square_side = 3;   // of the square, which always lies inside one quadrant
constexpr std::size_t classes = 4;

struct SquareImages {
  models::LabelledImages images;
  std::vector<std::size_t> rows, columns;  // each square's top-left pixel
};

// `count` images: noise of 0 to 127 (half the brightest) with a square of 255.
inline SquareImages square_images(std::size_t count, Generator& generator) {
  SquareImages made;
  made.images.height = made.images.width = side;
  const std::size_t half = side / 2, pixels = side * side;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t quadrant = generator.below(classes);
    const std::size_t row = (quadrant / 2) * half + generator.below(half - square_side + 1);
    const std::size_t column = (quadrant % 2) * half + generator.below(half - square_side + 1);
    for (std::size_t p = 0; p < pixels; ++p) made.images.pixels.push_back(static_cast<std::uint8_t>(generator.below(128)));
    std::uint8_t* image = made.images.pixels.data() + i * pixels;
    for (std::size_t r = row; r < row + square_side; ++r) {
      for (std::size_t c = column; c < column + square_side; ++c) image[r * side + c] = 255;
    }
    made.images.labels.push_back(static_cast<std::int64_t>(quadrant));
    made.rows.push_back(row);
    made.columns.push_back(column);
  }
  return made;
}

// Whether the square of image i has a pixel in region `region` of a grid of regions of
// `region_side` pixels (row-major), or, with a `margin` of regions, within that many regions
// of it.
inline bool square_near_region(const SquareImages& made, std::size_t i, std::size_t region, std::size_t region_side,
                               std::size_t margin = 0) {
  const std::size_t per_row = side / region_side;
  const auto overlaps = [&](std::size_t start, std::size_t region_index) {
    const auto low = static_cast<std::ptrdiff_t>((region_index - std::min(region_index, margin)) * region_side);
    const auto high = static_cast<std::ptrdiff_t>((region_index + margin + 1) * region_side);
    const auto first = static_cast<std::ptrdiff_t>(start), last = first + static_cast<std::ptrdiff_t>(square_side);
    return first < high && low < last;
  };
  return overlaps(made.rows[i], region / per_row) && overlaps(made.columns[i], region % per_row);
}

}  // namespace xgrad::testing::squares
