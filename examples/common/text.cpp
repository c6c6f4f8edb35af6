#include "text.h"

#include <xgrad/framework/errors.h>
#include <xgrad/framework/utf8.h>

namespace xgrad::cli {

models::Tokens standard_input_tokens(const std::string& line, std::size_t line_number, std::size_t max_length,
                                     models::TextNormalization rule) {
  require_utf8(line, "<stdin>", line_number);
  models::Tokens tokens = models::normalised_tokens(line, rule);
  if (tokens.size() > max_length) {
    throw file_error(detail::message("<stdin>:", line_number, ": ", tokens.size(), " tokens, more than --max-length ",
                                     max_length, "; raise --max-length to read it"));
  }
  return tokens;
}

}  // namespace xgrad::cli
