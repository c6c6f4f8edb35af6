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

void declare_tokenizer_flag(Command& command, std::string& tokenizer) {
  command.choice("--tokenizer", tokenizer, tokenizer_choices,
                 "how the model reads text, recorded with it: moses (raw text as Multi30K was made: Moses "
                 "punctuation and tokens, NFKC, lower case; translations come out detokenised) or space (text "
                 "already tokenised, split at spaces and lower-cased, as models before this option)");
}

models::TextNormalization text_rule(const std::string& tokenizer, const std::string& language) {
  if (tokenizer == "space") return models::TextNormalization::lowercase_latin1_v1;
  return models::moses_rule(language);
}

}  // namespace xgrad::cli
