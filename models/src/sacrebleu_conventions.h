#pragma once
// What BLEU (bleu.cpp) and chrF (chrf.cpp) share as sacreBLEU's metrics: one reference per
// hypothesis, UTF-8 text, and the fields common to their signatures.

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/utf8.h"

namespace xgrad::models {

inline void require_same_count(const char* metric, std::size_t hypotheses, std::size_t references) {
  if (hypotheses != references) {
    throw std::invalid_argument(detail::message(metric, ": ", hypotheses, " hypotheses but ", references,
                                                " references; each hypothesis needs one reference"));
  }
}

// The lines must be UTF-8 for Python's string methods to apply (python_text.h); the error
// names the line rather than only a byte offset.
inline void require_utf8_lines(const char* metric, const std::vector<std::string>& hypotheses,
                               const std::vector<std::string>& references) {
  for (const auto& [side, lines] : {std::pair{"hypothesis", &hypotheses}, std::pair{"reference", &references}}) {
    for (std::size_t i = 0; i < lines->size(); ++i) {
      if (const std::optional<std::size_t> offset = invalid_utf8_offset((*lines)[i])) {
        throw std::invalid_argument(
            detail::message(metric, ": ", side, " ", i, " is not UTF-8 (byte ", *offset, "); the metric reads Unicode text"));
      }
    }
  }
}

// The signature's case field.
inline std::string signature_case(bool lowercase) { return lowercase ? "lc" : "mixed"; }

// The signature's version field (defined in bleu.cpp, which is compiled with the project's version).
std::string signature_version();

}  // namespace xgrad::models
