#pragma once
// Pictures of attention weights as standalone SVG documents.

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

}  // namespace xgrad::cli
