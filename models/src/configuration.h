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

template <class Options>
std::string write(const Options& options) {
  return nlohmann::json(options).dump(2) + "\n";
}

template <class Options>
Options read(const std::string& text) {
  try {
    return nlohmann::json::parse(text).get<Options>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(xgrad::detail::message("model configuration: ", e.what()));
  }
}

}  // namespace xgrad::models::config

namespace xgrad::models {

// Found by nlohmann through argument-dependent lookup; both models use the cell kind.
inline void to_json(nlohmann::json& json, CellKind cell) { json = to_string(cell); }
inline void from_json(const nlohmann::json& json, CellKind& cell) { cell = cell_kind_from_string(json.get<std::string>()); }

}  // namespace xgrad::models
