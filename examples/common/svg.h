#pragma once
// Pictures of attention weights as standalone SVG documents.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xgrad/framework/tensor.h>

namespace xgrad::cli {

// A heatmap of weights [target tokens, source tokens]: source tokens label the columns
// (rotated, along the top), target tokens the rows; darker cells carry more weight, and each
// cell shows its weight as a tooltip.
std::string attention_heatmap_svg(const std::vector<std::string>& source, const std::vector<std::string>& target,
                                  const Array<float>& weights);

// One line per text, each token on a background whose strength is its attention weight,
// followed by the prediction: what a classifier looked at.
struct HighlightedText {
  std::vector<std::string> tokens;
  std::vector<float> weights;  // one per token
  std::string caption;         // e.g. "positive (0.97)"
};
std::string token_highlights_svg(const std::vector<HighlightedText>& texts);

// Images side by side, each with the attention over its regions laid over it: the grey
// pixels (0 black, 255 white, as MNIST stores them), each region of the grid tinted red by its
// weight (scaled to the image's strongest region, with the weight as a tooltip), and a
// caption below: where an image classifier looked.
struct AttendedImage {
  std::size_t height = 0, width = 0;
  std::vector<std::uint8_t> pixels;  // height * width, row-major
  std::size_t grid_rows = 0, grid_columns = 0;
  std::vector<float> weights;  // grid_rows * grid_columns, row-major
  std::string caption;         // e.g. "coat (0.93), truly shirt"
};
// shape_error naming the image when its pixels or weights are not as many as its sizes say.
std::string image_attention_svg(const std::vector<AttendedImage>& images);

}  // namespace xgrad::cli
