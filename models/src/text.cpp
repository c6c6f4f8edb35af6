#include "xgrad/models/text.h"

#include <stdexcept>

#include "moses_text.h"
#include "xgrad/framework/errors.h"

namespace xgrad::models {
namespace {

constexpr std::string_view lowercase_latin1_v1_name = "lowercase-latin1-v1";
constexpr std::string_view moses_lowercase_en_v1_name = "moses-lowercase-en-v1";
constexpr std::string_view moses_lowercase_de_v1_name = "moses-lowercase-de-v1";
constexpr std::string_view penn_lowercase_en_v1_name = "penn-lowercase-en-v1";

moses::Language moses_language(TextNormalization rule) {
  return rule == TextNormalization::moses_lowercase_de_v1 ? moses::Language::german : moses::Language::english;
}
moses::Style moses_style(TextNormalization rule) {
  return rule == TextNormalization::penn_lowercase_en_v1 ? moses::Style::penn : moses::Style::moses;
}

std::string lowercase_latin1(std::string_view text) {
  std::string lowered(text);
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
  return lowered;
}

}  // namespace

std::string to_string(TextNormalization rule) {
  switch (rule) {
    case TextNormalization::lowercase_latin1_v1:
      return std::string(lowercase_latin1_v1_name);
    case TextNormalization::moses_lowercase_en_v1:
      return std::string(moses_lowercase_en_v1_name);
    case TextNormalization::moses_lowercase_de_v1:
      return std::string(moses_lowercase_de_v1_name);
    case TextNormalization::penn_lowercase_en_v1:
      return std::string(penn_lowercase_en_v1_name);
  }
  throw std::invalid_argument("to_string: unnamed TextNormalization");
}

TextNormalization text_normalization_from_string(std::string_view name) {
  if (name == lowercase_latin1_v1_name) return TextNormalization::lowercase_latin1_v1;
  if (name == moses_lowercase_en_v1_name) return TextNormalization::moses_lowercase_en_v1;
  if (name == moses_lowercase_de_v1_name) return TextNormalization::moses_lowercase_de_v1;
  if (name == penn_lowercase_en_v1_name) return TextNormalization::penn_lowercase_en_v1;
  throw std::invalid_argument(detail::message("text normalisation '", name, "' is not one of: ", lowercase_latin1_v1_name,
                                              ", ", moses_lowercase_en_v1_name, ", ", moses_lowercase_de_v1_name, ", ",
                                              penn_lowercase_en_v1_name));
}

TextNormalization moses_rule(std::string_view language) {
  if (language == "en") return TextNormalization::moses_lowercase_en_v1;
  if (language == "de") return TextNormalization::moses_lowercase_de_v1;
  throw std::invalid_argument(detail::message("moses_rule: no rule for language '", language, "' (there are: de, en)"));
}

std::string normalised(std::string_view text, TextNormalization rule) {
  switch (rule) {
    case TextNormalization::lowercase_latin1_v1:
      return lowercase_latin1(text);
    case TextNormalization::moses_lowercase_en_v1:
    case TextNormalization::moses_lowercase_de_v1:
    case TextNormalization::penn_lowercase_en_v1:
      return moses::corpus_form(text, moses_language(rule), moses_style(rule));
  }
  throw std::invalid_argument("normalised: unknown TextNormalization");
}

Tokens normalised_tokens(std::string_view line, TextNormalization rule) { return split_tokens(normalised(line, rule)); }

Tokens normalised_tokens(const Tokens& sentence, TextNormalization rule) {
  if (rule == TextNormalization::lowercase_latin1_v1) {  // token by token, as it never makes or removes white space
    Tokens tokens;
    tokens.reserve(sentence.size());
    for (const std::string& token : sentence) tokens.push_back(lowercase_latin1(token));
    return tokens;
  }
  return normalised_tokens(join_tokens(sentence), rule);
}

bool restores_ordinary_text(TextNormalization rule) { return rule != TextNormalization::lowercase_latin1_v1; }

std::string ordinary_text(const Tokens& tokens, TextNormalization rule) {
  if (!restores_ordinary_text(rule)) return join_tokens(tokens);
  return moses::ordinary_text(tokens, moses_language(rule), moses_style(rule));
}

}  // namespace xgrad::models
