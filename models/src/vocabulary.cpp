#include "xgrad/models/vocabulary.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
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
constexpr const char* subword_model_key = "sentencepiece_model";

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

// The name of a file beside the vocabulary file: never a path that could lead elsewhere.
std::string plain_file_name(const nlohmann::json& value, const std::string& label) {
  const std::string name = value.is_string() ? value.get<std::string>() : std::string();
  if (name.empty() || name == "." || name == ".." || name.find_first_of(std::string_view("/\0", 2)) != std::string::npos) {
    fail(label, "\"", subword_model_key, "\" is ", value.dump(), "; expected the name of a file in the same directory");
  }
  return name;
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

Vocabulary Vocabulary::from_subword_model(SubwordModel model, const std::vector<std::string>& specials,
                                          TextNormalization normalization, const std::string& label) {
  const std::vector<std::string>& pieces = model.pieces();
  for (std::size_t id = 0; id < specials.size(); ++id) {
    const bool fits = id < pieces.size() && pieces[id] == specials[id] &&
                      (specials[id] == unknown_token ? model.is_unknown(static_cast<TokenId>(id))
                                                     : model.is_control(static_cast<TokenId>(id)));
    if (!fits) {
      fail(label, "id ", id, " is ", id < pieces.size() ? "'" + pieces[id] + "'" : std::string("missing"),
           " but xgrad needs the specials [", listed(specials), "] at ids 0 to ", specials.size() - 1,
           ", <unk> as the unknown piece and the others as control pieces (spm_train --pad_id=0 --unk_id=1 "
           "--bos_id=2 --eos_id=3 --pad_piece=<pad> --bos_piece=<sos> --eos_piece=<eos> "
           "--normalization_rule_name=identity; without <sos> and <eos>, --bos_id=-1 --eos_id=-1)");
    }
  }
  const std::vector<std::string> others(pieces.begin() + static_cast<std::ptrdiff_t>(specials.size()), pieces.end());
  check_unique(pieces, label, "piece");
  Vocabulary vocabulary(specials, others, normalization);
  vocabulary.subwords_ = std::move(model);
  return vocabulary;
}

Vocabulary Vocabulary::train_subwords(const std::vector<Tokens>& sentences, const SubwordTrainingOptions& options,
                                      TextNormalization normalization, const std::string& corpus) {
  return from_subword_model(SubwordModel::train(sentences, options, corpus), options.specials, normalization,
                            "the SentencePiece model trained on " + corpus);
}

std::vector<TokenId> Vocabulary::encode(const Tokens& tokens) const { return ids_of_normalised(normalised(tokens)); }

std::vector<TokenId> Vocabulary::ids_of_normalised(const Tokens& tokens) const {
  if (subwords_) return subwords_->encode(tokens);
  std::vector<TokenId> ids;
  ids.reserve(tokens.size());
  for (const std::string& token : tokens) {
    const auto found = ids_.find(token);
    ids.push_back(found == ids_.end() ? unknown_id_ : found->second);
  }
  return ids;
}

Tokens Vocabulary::segmented(const Tokens& tokens) const { return subwords_ ? subwords_->segment(tokens) : tokens; }

Tokens Vocabulary::decode(std::span<const TokenId> ids, const DecodeOptions& options) const {
  if (!subwords_) return held_tokens(ids, options);
  Tokens words;
  std::vector<TokenId> pieces;  // the pieces since the last special, decoded together
  const auto decode_pieces = [&] {
    for (std::string& word : subwords_->decode(pieces)) words.push_back(std::move(word));
    pieces.clear();
  };
  for (const TokenId id : ids) {
    if (options.stop_at && id == *options.stop_at) break;
    const std::string& text = token(id);
    if (is_special(id) && id != unknown_id_) {
      if (options.drop_specials) continue;
      decode_pieces();
      words.push_back(text);
    } else {
      pieces.push_back(id);
    }
  }
  decode_pieces();
  return words;
}

Tokens Vocabulary::held_tokens(std::span<const TokenId> ids, const DecodeOptions& options) const {
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
                             {"specials", std::vector<std::string>(tokens_.begin(), specials_end)}};
  if (subwords_) {
    document[subword_model_key] = subword_model_file_name;
  } else {
    document["tokens"] = std::vector<std::string>(specials_end, tokens_.end());
  }
  return dump_document(document, "Vocabulary::to_json");
}

Vocabulary Vocabulary::from_json(std::string_view text, const std::string& label,
                                 const std::vector<std::string>& expected_specials,
                                 const NeighbourFileReader& read_neighbour) {
  const nlohmann::json document = parse_document(text, label, vocabulary_format);
  std::vector<std::string> specials = string_array(document, "specials", label);
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
  if (document.contains(subword_model_key)) {
    const std::string name = plain_file_name(document[subword_model_key], label);
    if (!read_neighbour) fail(label, "names the SentencePiece model '", name, "', but was read without its directory");
    NamedBytes model = read_neighbour(name, max_subword_model_file_size);
    return from_subword_model(SubwordModel::parse(std::move(model.bytes), model.label), specials, normalization,
                              model.label);
  }
  const std::vector<std::string> tokens = string_array(document, "tokens", label);
  std::vector<std::string> all = specials;
  all.insert(all.end(), tokens.begin(), tokens.end());
  check_unique(all, label, "token");
  return Vocabulary(std::move(specials), tokens, normalization);
}

void Vocabulary::save(const std::string& path) const {
  if (subwords_) subwords_->save((std::filesystem::path(path).parent_path() / subword_model_file_name).string());
  write_file_atomically(path, to_json());
}

Vocabulary Vocabulary::load(const std::string& path, const std::vector<std::string>& expected_specials) {
  const auto read_neighbour = [&](const std::string& name, std::size_t max_bytes) {
    const std::string neighbour = (std::filesystem::path(path).parent_path() / name).string();
    return NamedBytes{read_file(neighbour, max_bytes), neighbour};
  };
  return from_json(read_file(path, max_vocabulary_file_size), path, expected_specials, read_neighbour);
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
