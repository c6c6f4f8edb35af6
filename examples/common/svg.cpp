#include "svg.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include <xgrad/framework/errors.h>

namespace xgrad::cli {
namespace {

std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// White for 0 to a deep blue for 1.
std::string shade(float weight) {
  const float w = std::clamp(weight, 0.0f, 1.0f);
  char colour[8];
  std::snprintf(colour, sizeof colour, "#%02x%02x%02x", static_cast<int>(255 - 222 * w), static_cast<int>(255 - 153 * w),
                static_cast<int>(255 - 75 * w));
  return colour;
}

// Approximate width of a label in a 13px sans-serif font, for layout.
double text_width(const std::string& text) { return 7.5 * static_cast<double>(text.size()); }

double widest(const std::vector<std::string>& labels) {
  double width = 0;
  for (const std::string& label : labels) width = std::max(width, text_width(label));
  return width;
}

}  // namespace

std::string attention_heatmap_svg(const std::vector<std::string>& source, const std::vector<std::string>& target,
                                  const Array<float>& weights) {
  if (weights.dimension() != 2 || weights.shape()[0] != target.size() || weights.shape()[1] != source.size()) {
    throw shape_error(detail::message("attention_heatmap_svg: weights of shape ", weights.shape(), " for ", target.size(),
                                      " target and ", source.size(), " source tokens"));
  }
  // Source labels are rotated by 60 degrees: a label of width w rises 0.87 w and reaches 0.5 w
  // to the right of its column.
  const double cell = 28, left = widest(target) + 16, top = 0.87 * widest(source) + 16;
  const double width = left + cell * double(source.size()) + 0.5 * widest(source) + 10;
  const double height = top + cell * double(target.size()) + 10;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (std::size_t j = 0; j < source.size(); ++j) {
    const double x = left + cell * (double(j) + 0.5);
    svg << "<text transform=\"translate(" << x + 4 << "," << top - 6 << ") rotate(-60)\">" << escaped(source[j])
        << "</text>\n";
  }
  for (std::size_t i = 0; i < target.size(); ++i) {
    const double y = top + cell * double(i);
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + cell * 0.65 << "\" text-anchor=\"end\">" << escaped(target[i])
        << "</text>\n";
    for (std::size_t j = 0; j < source.size(); ++j) {
      const float w = weights(i, j);
      svg << "<rect x=\"" << left + cell * double(j) << "\" y=\"" << y << "\" width=\"" << cell << "\" height=\"" << cell
          << "\" fill=\"" << shade(w) << "\" stroke=\"#e0e0e0\"><title>" << escaped(target[i]) << " / "
          << escaped(source[j]) << ": " << w << "</title></rect>\n";
    }
  }
  svg << "</svg>\n";
  return svg.str();
}

std::string token_highlights_svg(const std::vector<HighlightedText>& texts) {
  const double line = 30, margin = 10;
  double width = 0;
  for (const HighlightedText& text : texts) {
    if (text.tokens.size() != text.weights.size()) {
      throw shape_error(detail::message("token_highlights_svg: ", text.tokens.size(), " tokens but ", text.weights.size(),
                                        " weights"));
    }
    double row = text_width(text.caption) + 20;
    for (const std::string& token : text.tokens) row += text_width(token) + 8;
    width = std::max(width, row);
  }
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width + 2 * margin << "\" height=\""
      << line * double(texts.size()) + 2 * margin << "\" font-family=\"sans-serif\" font-size=\"13\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (std::size_t r = 0; r < texts.size(); ++r) {
    const HighlightedText& text = texts[r];
    const float strongest = text.weights.empty() ? 1.0f : std::max(*std::max_element(text.weights.begin(), text.weights.end()), 1e-6f);
    const double y = margin + line * double(r);
    double x = margin;
    for (std::size_t t = 0; t < text.tokens.size(); ++t) {
      const double w = text_width(text.tokens[t]) + 6;
      // Scaled to the strongest token of the line, so that every line uses the full range.
      svg << "<rect x=\"" << x << "\" y=\"" << y + 4 << "\" width=\"" << w << "\" height=\"" << line - 8 << "\" rx=\"3\" fill=\""
          << shade(text.weights[t] / strongest) << "\"><title>" << text.weights[t] << "</title></rect>\n"
          << "<text x=\"" << x + 3 << "\" y=\"" << y + line * 0.65 << "\">" << escaped(text.tokens[t]) << "</text>\n";
      x += w + 2;
    }
    svg << "<text x=\"" << x + 12 << "\" y=\"" << y + line * 0.65 << "\" font-weight=\"bold\">" << escaped(text.caption)
        << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

std::string image_attention_svg(const std::vector<AttendedImage>& images) {
  const double pixel = 8, margin = 10, caption_height = 24;
  double width = margin, height = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const AttendedImage& image = images[i];
    if (image.pixels.size() != image.height * image.width || image.weights.size() != image.grid_rows * image.grid_columns ||
        image.grid_rows == 0 || image.grid_columns == 0) {
      throw shape_error(detail::message("image_attention_svg: image ", i, " has ", image.pixels.size(), " pixels for ",
                                        image.height, " x ", image.width, " and ", image.weights.size(),
                                        " weights for a grid of ", image.grid_rows, " x ", image.grid_columns));
    }
    width += std::max(pixel * double(image.width), text_width(image.caption)) + margin;
    height = std::max(height, pixel * double(image.height));
  }
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\""
      << height + caption_height + 2 * margin << "\" font-family=\"sans-serif\" font-size=\"13\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  double left = margin;
  for (const AttendedImage& image : images) {
    svg << "<g transform=\"translate(" << left << "," << margin << ")\">\n";
    for (std::size_t r = 0; r < image.height; ++r) {
      for (std::size_t c = 0; c < image.width; ++c) {
        const int grey = image.pixels[r * image.width + c];
        svg << "<rect x=\"" << pixel * double(c) << "\" y=\"" << pixel * double(r) << "\" width=\"" << pixel
            << "\" height=\"" << pixel << "\" fill=\"rgb(" << grey << "," << grey << "," << grey << ")\"/>\n";
      }
    }
    // Scaled to the strongest region, so that every image uses the full range of the tint.
    const float strongest = std::max(*std::max_element(image.weights.begin(), image.weights.end()), 1e-6f);
    const double region_height = pixel * double(image.height) / double(image.grid_rows);
    const double region_width = pixel * double(image.width) / double(image.grid_columns);
    for (std::size_t r = 0; r < image.grid_rows; ++r) {
      for (std::size_t c = 0; c < image.grid_columns; ++c) {
        const float weight = image.weights[r * image.grid_columns + c];
        svg << "<rect x=\"" << region_width * double(c) << "\" y=\"" << region_height * double(r) << "\" width=\""
            << region_width << "\" height=\"" << region_height << "\" fill=\"#ff2a00\" fill-opacity=\""
            << 0.7 * std::clamp(weight / strongest, 0.0f, 1.0f) << "\" stroke=\"#808080\" stroke-opacity=\"0.3\"><title>"
            << weight << "</title></rect>\n";
      }
    }
    svg << "<text x=\"0\" y=\"" << pixel * double(image.height) + 18 << "\">" << escaped(image.caption) << "</text>\n</g>\n";
    left += std::max(pixel * double(image.width), text_width(image.caption)) + margin;
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace xgrad::cli
