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

void declare_tokenizer_flag(Command& command, std::string& tokenizer, const std::vector<std::string>& choices) {
  tokenizer = choices.front();
  std::string help = "how the model reads text, recorded with it:";
  for (const std::string& choice : choices) {
    if (choice == "moses") help += " moses (raw text as Multi30K was made: Moses punctuation and tokens, NFKC, lower case);";
    if (choice == "penn") help += " penn (raw English as SST-2 and TREC are tokenised: \"does n't\", `` and '', lower case);";
    if (choice == "space") help += " space (text already tokenised, split at spaces and lower-cased, as models before this option);";
  }
  help.back() = '.';
  command.choice("--tokenizer", tokenizer, choices, help);
}

models::TextNormalization text_rule(const std::string& tokenizer, const std::string& language) {
  if (tokenizer == "space") return models::TextNormalization::lowercase_latin1_v1;
  if (tokenizer == "penn") return models::TextNormalization::penn_lowercase_en_v1;
  return models::moses_rule(language);
}

}  // namespace xgrad::cli
