// Attention pictures: well-formed SVG with escaped labels, one cell per weight, shading that
// follows the weights, and shape errors.
#define BOOST_TEST_MODULE svg
#include "xgrad_test.h"

#include "svg.h"

using namespace xgrad;

namespace {
std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}
}  // namespace

BOOST_AUTO_TEST_CASE(heatmap_has_a_cell_per_weight_and_escaped_labels) {
  const Array<float> weights{{0.9f, 0.1f, 0.0f}, {0.2f, 0.3f, 0.5f}};
  const std::string svg = cli::attention_heatmap_svg({"ein", "<hund>", "&"}, {"a", "dog"}, weights);
  BOOST_TEST(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0u);
  BOOST_TEST(svg.find("</svg>") != std::string::npos);
  BOOST_TEST(count(svg, "<rect x=") == 6u);
  BOOST_TEST(svg.find("&lt;hund&gt;") != std::string::npos);
  BOOST_TEST(svg.find("<hund>") == std::string::npos);
  BOOST_TEST(svg.find(">&amp;<") != std::string::npos);
  BOOST_TEST(svg.find("fill=\"#ffffff\"") != std::string::npos);  // weight 0 is white
  BOOST_TEST(svg.find("fill=\"#2166b4\"") == std::string::npos);  // no cell has weight 1
  BOOST_CHECK_THROW(cli::attention_heatmap_svg({"a"}, {"b"}, weights), shape_error);
}

BOOST_AUTO_TEST_CASE(highlights_scale_each_line_to_its_strongest_token) {
  const std::string svg = cli::token_highlights_svg(
      {{{"not", "good"}, {0.25f, 0.75f}, "negative (0.91)"}, {{"fine"}, {1.0f}, "positive (0.66)"}});
  BOOST_TEST(count(svg, "fill=\"#2166b4\"") == 2u);  // the strongest token of each line is darkest
  BOOST_TEST(svg.find("negative (0.91)") != std::string::npos);
  BOOST_CHECK_THROW(cli::token_highlights_svg({{{"a", "b"}, {1.0f}, ""}}), shape_error);
}
