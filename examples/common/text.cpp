#include "text.h"

#include <xgrad/framework/errors.h>
#include <xgrad/framework/utf8.h>

namespace xgrad::cli {

models::Tokens normalised_tokens(const std::string& line) {
  std::string lowered = line;
  for (std::size_t i = 0; i < lowered.size(); ++i) {
    auto& c = reinterpret_cast<unsigned char&>(lowered[i]);
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<unsigned char>(c + 32);
    } else if (c == 0xC3 && i + 1 < lowered.size()) {
      // U+00C0..U+00DE are the upper-case Latin-1 letters (but U+00D7, the multiplication
      // sign); their lower-case forms are 0x20 higher in the second byte.
      auto& next = reinterpret_cast<unsigned char&>(lowered[i + 1]);
      if (next >= 0x80 && next <= 0x9E && next != 0x97) next = static_cast<unsigned char>(next + 0x20);
      ++i;
    }
  }
  return models::split_tokens(lowered);
}

models::Tokens standard_input_tokens(const std::string& line, std::size_t line_number, std::size_t max_length) {
  require_utf8(line, "<stdin>", line_number);
  models::Tokens tokens = normalised_tokens(line);
  if (tokens.size() > max_length) {
    throw file_error(detail::message("<stdin>:", line_number, ": ", tokens.size(), " tokens, more than --max-length ",
                                     max_length, "; raise --max-length to read it"));
  }
  return tokens;
}

}  // namespace xgrad::cli
