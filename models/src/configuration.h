#pragma once
// Model configurations as JSON. Options structs are written and read field by field with
// nlohmann's NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE; enumerations by name, refusing names they
// do not know. Every failure is a std::invalid_argument naming the key or the value.

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "xgrad/framework/errors.h"
#include "xgrad/models/seq2seq.h"
#include "xgrad/models/vocabulary.h"

namespace xgrad::models::config {

template <class Kind>
using KindNames = std::vector<std::pair<Kind, std::string>>;

template <class Kind>
const std::string& name_of(Kind kind, const KindNames<Kind>& names) {
  for (const auto& [known, name] : names) {
    if (known == kind) return name;
  }
  throw std::invalid_argument("unnamed enumerator");
}

template <class Kind>
Kind kind_named(const char* what, const std::string& name, const KindNames<Kind>& names) {
  std::string choices;
  for (const auto& [kind, known] : names) {
    if (known == name) return kind;
    choices += (choices.empty() ? "" : ", ") + known;
  }
  throw std::invalid_argument(xgrad::detail::message(what, " '", name, "' is not one of: ", choices));
}

inline constexpr double max_parameters = max_model_parameters;
inline constexpr std::size_t max_size = 1 << 16;         // any one hidden or embedding size
inline constexpr std::size_t max_vocabulary = max_vocabulary_size;  // any one vocabulary or class count

inline void check_size(const char* model, const char* name, std::size_t value, std::size_t limit) {
  if (value == 0 || value > limit) {
    throw std::invalid_argument(xgrad::detail::message(model, ": ", name, " is ", value, "; expected 1 to ", limit));
  }
}

inline void check_dropout(const char* model, double dropout) {
  if (!(dropout >= 0.0 && dropout < 1.0)) {
    throw std::invalid_argument(xgrad::detail::message(model, ": dropout ", dropout, " must lie in [0, 1)"));
  }
}

inline void check_parameter_count(const char* model, double parameters) {
  if (parameters > max_parameters) {
    throw std::invalid_argument(xgrad::detail::message(model, ": the configuration asks for about ", parameters,
                                                       " parameters; at most ", max_parameters, " are allowed"));
  }
}

template <class Options>
std::string write(const Options& options) {
  return nlohmann::json(options).dump(2) + "\n";
}

// nlohmann fills a whole-number field from any JSON number with a plain cast, so 5e21, 2.5 or
// -1 would become an arbitrary count (or undefined behaviour). Each key is checked against
// the kind of value the defaults have; a key the options do not have is refused as well.
template <class Options>
void check_keys_and_number_kinds(const nlohmann::json& given) {
  if (!given.is_object()) return;  // get<Options>() names the type error
  const nlohmann::json defaults = Options{};
  for (const auto& [key, value] : given.items()) {
    const auto expected = defaults.find(key);
    if (expected == defaults.end()) {
      throw std::invalid_argument(xgrad::detail::message("model configuration: unknown key '", key, "'"));
    }
    if (!value.is_number() || !expected->is_number_integer()) continue;
    if (value.is_number_float() || (expected->is_number_unsigned() && !value.is_number_unsigned())) {
      throw std::invalid_argument(xgrad::detail::message("model configuration: '", key, "' is ", value.dump(),
                                                         "; expected a whole number",
                                                         expected->is_number_unsigned() ? " >= 0" : ""));
    }
  }
}

template <class Options>
Options read(const std::string& text) {
  try {
    const nlohmann::json json = nlohmann::json::parse(text);
    check_keys_and_number_kinds<Options>(json);
    return json.get<Options>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(xgrad::detail::message("model configuration: ", e.what()));
  }
}

}  // namespace xgrad::models::config

namespace xgrad::models {

}  // namespace xgrad::models

namespace xgrad::nn {

// Found by nlohmann through argument-dependent lookup (CellKind lives in nn); both models
// save their cell kind by name.
inline void to_json(nlohmann::json& json, CellKind cell) { json = to_string(cell); }
inline void from_json(const nlohmann::json& json, CellKind& cell) { cell = cell_kind_from_string(json.get<std::string>()); }

}  // namespace xgrad::nn
