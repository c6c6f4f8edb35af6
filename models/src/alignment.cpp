#include "xgrad/models/alignment.h"

#include <algorithm>
#include <cstdio>
#include <span>

namespace xgrad::models {

TranslatedWords translated_words(const Translation& translation, const Vocabulary& target) {
  TranslatedWords result;
  for (std::size_t step = 0; step < translation.tokens.size(); ++step) {
    // Word by word: a special the decoder produced (<pad>, <sos>) is left out of the words but
    // still took a step, so the steps and the word positions part.
    for (std::string& word : target.held_tokens(std::span(&translation.tokens[step], 1), {.drop_specials = true})) {
      result.words.push_back(std::move(word));
      result.steps.push_back(step);
    }
  }
  return result;
}

std::vector<std::size_t> most_attended_sources(const Translation& translation, const TranslatedWords& words) {
  const std::size_t positions = translation.attention.shape()[1];
  std::vector<std::size_t> sources;
  for (std::size_t step : words.steps) {
    const float* row = translation.attention.data() + step * positions;
    sources.push_back(static_cast<std::size_t>(std::max_element(row, row + positions) - row));
  }
  return sources;
}

std::string pharaoh_alignment(const std::vector<std::size_t>& sources) {
  std::string line;
  for (std::size_t j = 0; j < sources.size(); ++j) {
    if (j) line += ' ';
    line += std::to_string(sources[j]);
    line += '-';
    line += std::to_string(j);
  }
  return line;
}

std::string soft_alignment(const Translation& translation, const TranslatedWords& words) {
  const std::size_t positions = translation.attention.shape()[1];
  std::string line;
  for (std::size_t j = 0; j < words.steps.size(); ++j) {
    if (j) line += ' ';
    for (std::size_t i = 0; i < positions; ++i) {
      char weight[32];
      std::snprintf(weight, sizeof weight, "%s%.3f", i ? "," : "",
                    static_cast<double>(translation.attention.data()[words.steps[j] * positions + i]));
      line += weight;
    }
  }
  return line;
}

Tokens replace_unknown_words(const TranslatedWords& words, const std::vector<std::size_t>& sources,
                             const Tokens& source_words) {
  Tokens replaced = words.words;
  for (std::size_t j = 0; j < replaced.size(); ++j) {
    if (replaced[j] == unknown_token && sources[j] < source_words.size()) replaced[j] = source_words[sources[j]];
  }
  return replaced;
}

}  // namespace xgrad::models
