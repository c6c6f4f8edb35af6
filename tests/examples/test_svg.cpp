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

BOOST_AUTO_TEST_CASE(an_image_gets_a_rect_per_pixel_and_a_tint_per_region) {
  // A 4 x 4 image in a 2 x 2 grid: the region of weight 0.6 is the strongest and gets the
  // full tint, 0.7; the one of weight 0.3 half of it.
  cli::AttendedImage image{.height = 4, .width = 4, .pixels = std::vector<std::uint8_t>(16, 0), .grid_rows = 2,
                           .grid_columns = 2, .weights = {0.6f, 0.3f, 0.1f, 0.0f}, .caption = "coat <0.9>"};
  image.pixels[5] = 255;
  const std::string svg = cli::image_attention_svg({image, image});
  BOOST_TEST(count(svg, "fill=\"rgb(0,0,0)\"") == 30u);
  BOOST_TEST(count(svg, "fill=\"rgb(255,255,255)\"") == 2u);
  BOOST_TEST(count(svg, "fill-opacity=\"0.7\"") == 2u);
  BOOST_TEST(count(svg, "fill-opacity=\"0.35\"") == 2u);
  BOOST_TEST(count(svg, "fill-opacity=\"0\"") == 2u);
  BOOST_TEST(svg.find("coat &lt;0.9&gt;") != std::string::npos);
  image.weights.pop_back();
  BOOST_CHECK_THROW(cli::image_attention_svg({image}), shape_error);
}
