#include "text.h"

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

}  // namespace xgrad::cli
