#include "xgrad/models/vocabulary.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/file_io.h"
#include "xgrad/framework/utf8.h"

namespace xgrad::models {
namespace {

constexpr int format_version = 1;
constexpr const char* vocabulary_format = "xgrad-vocabulary";
constexpr const char* labels_format = "xgrad-labels";

struct Duplicate {
  std::size_t first = 0;
  std::size_t second = 0;
};

// The first two positions that hold the same name, if any.
std::optional<Duplicate> find_duplicate(const std::vector<std::string>& names) {
  std::unordered_map<std::string_view, std::size_t> seen;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto [where, inserted] = seen.emplace(names[i], i);
    if (!inserted) return Duplicate{where->second, i};
  }
  return std::nullopt;
}

StringIds index_names(const std::vector<std::string>& names) {
  StringIds ids;
  for (std::size_t i = 0; i < names.size(); ++i) ids.emplace(names[i], static_cast<TokenId>(i));
  return ids;
}

std::string listed(const std::vector<std::string>& names) {
  std::string result;
  for (const std::string& name : names) {
    if (!result.empty()) result += ", ";
    result += name;
  }
  return result;
}

template <class... Parts>
[[noreturn]] void fail(const std::string& label, Parts&&... parts) {
  throw file_error(detail::message(label, ": ", std::forward<Parts>(parts)...));
}

// Parses a JSON object written by to_json() of `format` and checks its format and version.
nlohmann::json parse_document(std::string_view text, const std::string& label, const char* format) {
  require_utf8(text, label);
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(label, "not valid JSON (", e.what(), ")");
  }
  if (!document.is_object()) fail(label, "expected a JSON object with \"format\": \"", format, "\"");
  if (!document.contains("format")) fail(label, "missing key \"format\" (expected \"", format, "\")");
  if (document["format"] != format) fail(label, "\"format\" is ", document["format"].dump(), ", expected \"", format, "\"");
  if (!document.contains("version")) fail(label, "missing key \"version\"");
  if (document["version"] != format_version) {
    fail(label, "\"version\" is ", document["version"].dump(), "; this build reads version ", format_version);
  }
  return document;
}

// The document as indented text; a string that is not UTF-8 (JSON cannot hold it) is
// std::invalid_argument naming `owner`.
std::string dump_document(const nlohmann::json& document, const char* owner) {
  try {
    return document.dump(1) + "\n";
  } catch (const nlohmann::json::type_error& e) {
    throw std::invalid_argument(detail::message(owner, ": cannot write as JSON (", e.what(), ")"));
  }
}

std::vector<std::string> string_array(const nlohmann::json& document, const char* key, const std::string& label) {
  if (!document.contains(key)) fail(label, "missing key \"", key, "\"");
  const nlohmann::json& array = document[key];
  if (!array.is_array()) fail(label, "\"", key, "\" must be an array of strings");
  std::vector<std::string> result;
  for (std::size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string()) fail(label, "\"", key, "\"[", i, "] is ", array[i].dump(), ", not a string");
    result.push_back(array[i].get<std::string>());
  }
  return result;
}

void check_unique(const std::vector<std::string>& names, const std::string& label, const char* what) {
  if (const std::optional<Duplicate> duplicate = find_duplicate(names)) {
    fail(label, what, " '", names[duplicate->first], "' occurs twice (positions ", duplicate->first, " and ",
         duplicate->second, ")");
  }
}

// The rule a vocabulary file records; files written before rules were recorded have none.
TextNormalization normalization_of(const nlohmann::json& document, const std::string& label) {
  if (!document.contains("normalization")) return unrecorded_text_normalization;
  const nlohmann::json& name = document["normalization"];
  if (!name.is_string()) fail(label, "\"normalization\" is ", name.dump(), ", not a string");
  try {
    return text_normalization_from_string(name.get<std::string>());
  } catch (const std::invalid_argument& e) {
    fail(label, "\"normalization\": ", e.what());
  }
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::vector<std::string> translation_specials() {
  return {std::string(pad_token), std::string(unknown_token), std::string(start_token), std::string(end_token)};
}

std::vector<std::string> classification_specials() { return {std::string(pad_token), std::string(unknown_token)}; }

Vocabulary::Vocabulary(std::vector<std::string> specials, const std::vector<std::string>& tokens,
                       TextNormalization normalization)
    : normalization_(normalization) {
  if (std::find(specials.begin(), specials.end(), unknown_token) == specials.end()) {
    throw std::invalid_argument(detail::message("Vocabulary: the specials [", listed(specials), "] must include ",
                                                unknown_token, ", which unknown tokens map to"));
  }
  special_count_ = specials.size();
  tokens_ = std::move(specials);
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  if (const std::optional<Duplicate> duplicate = find_duplicate(tokens_)) {
    throw std::invalid_argument(detail::message("Vocabulary: token '", tokens_[duplicate->first], "' occurs twice (ids ",
                                                duplicate->first, " and ", duplicate->second, ")"));
  }
  ids_ = index_names(tokens_);
  unknown_id_ = ids_.find(unknown_token)->second;
}

Vocabulary Vocabulary::build(const std::vector<Tokens>& sentences, const VocabularyOptions& options) {
  if (options.min_frequency == 0) throw std::invalid_argument("Vocabulary::build: min_frequency must be at least 1, got 0");
  if (options.max_size && *options.max_size < options.specials.size()) {
    throw std::invalid_argument(detail::message("Vocabulary::build: max_size ", *options.max_size, " is smaller than the ",
                                                options.specials.size(), " special tokens"));
  }
  std::unordered_map<std::string, std::size_t> counts;
  for (const Tokens& sentence : sentences) {
    if (options.sentences_normalised) {
      for (const std::string& token : sentence) ++counts[token];
    } else {
      for (std::string& token : normalised_tokens(sentence, options.normalization)) ++counts[std::move(token)];
    }
  }
  for (const std::string& special : options.specials) counts.erase(special);

  std::vector<std::pair<std::string_view, std::size_t>> kept;
  for (const auto& [token, count] : counts) {
    if (count >= options.min_frequency) kept.emplace_back(token, count);
  }
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (options.max_size) kept.resize(std::min(kept.size(), *options.max_size - options.specials.size()));

  std::vector<std::string> tokens;
  tokens.reserve(kept.size());
  for (const auto& [token, count] : kept) tokens.emplace_back(token);
  return Vocabulary(options.specials, tokens, options.normalization);
}

TokenId Vocabulary::id(std::string_view token) const {
  const auto found = ids_.find(token);
  if (found == ids_.end()) throw index_error(detail::message("Vocabulary::id: no token '", token, "' among ", size(), " tokens"));
  return found->second;
}

const std::string& Vocabulary::token(TokenId id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= size()) {
    throw index_error(detail::message("Vocabulary::token: id ", id, " is outside [0, ", size(), ")"));
  }
  return tokens_[static_cast<std::size_t>(id)];
}

Tokens Vocabulary::normalised(const Tokens& tokens) const { return normalised_tokens(tokens, normalization_); }

Vocabulary Vocabulary::with_normalization(TextNormalization rule) const {
  Vocabulary copy = *this;
  copy.normalization_ = rule;
  return copy;
}

std::vector<TokenId> Vocabulary::encode(const Tokens& tokens) const { return ids_of_normalised(normalised(tokens)); }

std::vector<TokenId> Vocabulary::ids_of_normalised(const Tokens& tokens) const {
  std::vector<TokenId> ids;
  ids.reserve(tokens.size());
  for (const std::string& token : tokens) {
    const auto found = ids_.find(token);
    ids.push_back(found == ids_.end() ? unknown_id_ : found->second);
  }
  return ids;
}

Tokens Vocabulary::decode(std::span<const TokenId> ids, const DecodeOptions& options) const {
  Tokens tokens;
  for (const TokenId id : ids) {
    if (options.stop_at && id == *options.stop_at) break;
    const std::string& text = token(id);
    if (options.drop_specials && is_special(id) && id != unknown_id_) continue;
    tokens.push_back(text);
  }
  return tokens;
}

std::string Vocabulary::to_json() const {
  const auto specials_end = tokens_.begin() + static_cast<std::ptrdiff_t>(special_count_);
  nlohmann::json document = {{"format", vocabulary_format},
                             {"version", format_version},
                             {"normalization", to_string(normalization_)},
                             {"specials", std::vector<std::string>(tokens_.begin(), specials_end)},
                             {"tokens", std::vector<std::string>(specials_end, tokens_.end())}};
  return dump_document(document, "Vocabulary::to_json");
}

Vocabulary Vocabulary::from_json(std::string_view text, const std::string& label,
                                 const std::vector<std::string>& expected_specials) {
  const nlohmann::json document = parse_document(text, label, vocabulary_format);
  std::vector<std::string> specials = string_array(document, "specials", label);
  const std::vector<std::string> tokens = string_array(document, "tokens", label);
  const TextNormalization normalization = normalization_of(document, label);
  for (const std::string& special : expected_specials) {
    if (std::find(specials.begin(), specials.end(), special) == specials.end()) {
      fail(label, "special token '", special, "' is missing (the file has [", listed(specials), "], expected [",
           listed(expected_specials), "])");
    }
  }
  if (specials != expected_specials) {
    fail(label, "the specials are [", listed(specials), "] but this program needs exactly [",
         listed(expected_specials), "] in that order");
  }
  std::vector<std::string> all = specials;
  all.insert(all.end(), tokens.begin(), tokens.end());
  check_unique(all, label, "token");
  return Vocabulary(std::move(specials), tokens, normalization);
}

void Vocabulary::save(const std::string& path) const { write_file_atomically(path, to_json()); }

Vocabulary Vocabulary::load(const std::string& path, const std::vector<std::string>& expected_specials) {
  return from_json(read_file(path, max_vocabulary_file_size), path, expected_specials);
}

LabelSet::LabelSet(std::vector<std::string> names) : names_(std::move(names)) {
  if (names_.empty()) throw std::invalid_argument("LabelSet: there must be at least one label");
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (names_[i].empty()) throw std::invalid_argument(detail::message("LabelSet: label ", i, " is empty"));
  }
  if (const std::optional<Duplicate> duplicate = find_duplicate(names_)) {
    throw std::invalid_argument(detail::message("LabelSet: label '", names_[duplicate->first], "' occurs twice (positions ",
                                                duplicate->first, " and ", duplicate->second, ")"));
  }
  ids_ = index_names(names_);
}

LabelSet LabelSet::build(const std::vector<std::string>& labels) {
  std::vector<std::string> distinct = labels;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const bool all_integers = std::all_of(distinct.begin(), distinct.end(),
                                        [](const std::string& label) { return parse_integer(label).has_value(); });
  if (all_integers) {
    // Byte order already breaks ties between spellings of one value ("01" and "1").
    std::stable_sort(distinct.begin(), distinct.end(), [](const std::string& a, const std::string& b) {
      return *parse_integer(a) < *parse_integer(b);
    });
  }
  return LabelSet(std::move(distinct));
}

const std::string& LabelSet::name(std::int64_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= size()) {
    throw index_error(detail::message("LabelSet::name: id ", id, " is outside [0, ", size(), ")"));
  }
  return names_[static_cast<std::size_t>(id)];
}

std::optional<std::int64_t> LabelSet::find(std::string_view label) const {
  const auto found = ids_.find(label);
  if (found == ids_.end()) return std::nullopt;
  return found->second;
}

std::vector<std::int64_t> LabelSet::encode(const LabelledTexts& data) const {
  std::vector<std::int64_t> ids;
  ids.reserve(data.labels.size());
  for (std::size_t i = 0; i < data.labels.size(); ++i) {
    const std::optional<std::int64_t> id = find(data.labels[i]);
    if (!id) {
      throw file_error(detail::message(data.path, ":", data.lines[i], ": unknown label '", data.labels[i],
                                       "'; the known labels are ", listed(names_)));
    }
    ids.push_back(*id);
  }
  return ids;
}

std::string LabelSet::to_json() const {
  const nlohmann::json document = {{"format", labels_format}, {"version", format_version}, {"labels", names_}};
  return dump_document(document, "LabelSet::to_json");
}

LabelSet LabelSet::from_json(std::string_view text, const std::string& label) {
  const nlohmann::json document = parse_document(text, label, labels_format);
  std::vector<std::string> names = string_array(document, "labels", label);
  if (names.empty()) fail(label, "\"labels\" is empty");
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) fail(label, "\"labels\"[", i, "] is empty");
  }
  check_unique(names, label, "label");
  return LabelSet(std::move(names));
}

void LabelSet::save(const std::string& path) const { write_file_atomically(path, to_json()); }

LabelSet LabelSet::load(const std::string& path) { return from_json(read_file(path, max_vocabulary_file_size), path); }

}  // namespace xgrad::models
