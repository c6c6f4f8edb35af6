#pragma once
// Vocabulary (token <-> id) and LabelSet (class label <-> id): built once from training data,
// saved as JSON beside the model, and loaded back with validation, so that a model is
// always used with the ids it was trained with. A vocabulary also records the normalisation
// rule of its tokens (text.h) and applies it to every sentence it counts or encodes, so that
// a loaded model reads text exactly as it did in training.
//
// A vocabulary holds whole words (built from a corpus's tokens), or the pieces of a
// SentencePiece model (subword.h), which then encodes the normalised tokens into pieces and
// decodes pieces back into tokens; its ids are the model's. Its JSON file then names the
// `.model` file saved beside it instead of listing tokens.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "xgrad/models/corpus.h"
#include "xgrad/models/subword.h"
#include "xgrad/models/text.h"

namespace xgrad::models {

using TokenId = std::int64_t;

// The most tokens (or classes) a model may have: configurations asking for more are refused.
inline constexpr std::size_t max_vocabulary_size = 10'000'000;
// Vocabulary and label files larger than this are refused unread.
inline constexpr std::size_t max_vocabulary_file_size = std::size_t{1} << 30;

inline constexpr std::string_view pad_token = "<pad>";
inline constexpr std::string_view unknown_token = "<unk>";
inline constexpr std::string_view start_token = "<sos>";
inline constexpr std::string_view end_token = "<eos>";

// The specials of the translation vocabularies (<pad> <unk> <sos> <eos> = ids 0, 1, 2, 3)
// and of the classifier's (<pad> <unk> = 0, 1).
std::vector<std::string> translation_specials();
std::vector<std::string> classification_specials();

struct VocabularyOptions {
  // Ids 0, 1, ... in this order; must contain <unk>, which unknown tokens map to.
  std::vector<std::string> specials = classification_specials();
  // Tokens seen fewer times are left out (and encode as <unk>).
  std::size_t min_frequency = 1;
  // At most this many ids, specials included; the most frequent tokens are kept.
  std::optional<std::size_t> max_size = std::nullopt;
  // Applied to every sentence before its tokens are counted; recorded in the vocabulary.
  TextNormalization normalization = TextNormalization::lowercase_latin1_v1;
  // The sentences come normalised, each by its own language's rule (a joint vocabulary of
  // two languages, which no one rule would leave as they are): counted as they are.
  bool sentences_normalised = false;
};

// The name Vocabulary::save gives a subword vocabulary's SentencePiece model, beside its JSON
// file (one joint model serves both vocabularies of a translation model).
inline constexpr const char* subword_model_file_name = "subword.model";

// A file a vocabulary file names (its SentencePiece model), read from where the vocabulary
// file was: its bytes (file_error past `max_bytes`), and how messages name it.
struct NamedBytes {
  std::string bytes;
  std::string label;
};
using NeighbourFileReader = std::function<NamedBytes(const std::string& name, std::size_t max_bytes)>;

struct DecodeOptions {
  // Leaves out every special except <unk>, which stands for a real word.
  bool drop_specials = false;
  // Stops before the first occurrence of this id (e.g. <eos>).
  std::optional<TokenId> stop_at = std::nullopt;
};

// A transparent hash, so that maps keyed by std::string can be searched with string_views.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};
using StringIds = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

class Vocabulary {
 public:
  // Specials take ids 0..k-1, the other tokens k, k+1, ... in the order given, which are
  // taken as already normalised by `normalization`. Duplicates, or specials without <unk>,
  // are std::invalid_argument.
  Vocabulary(std::vector<std::string> specials, const std::vector<std::string>& tokens,
             TextNormalization normalization = TextNormalization::lowercase_latin1_v1);

  // The specials, then every other token of the normalised sentences seen at least
  // min_frequency times, by frequency (highest first) and then by token (byte order), so the
  // ids do not depend on hashing.
  static Vocabulary build(const std::vector<Tokens>& sentences, const VocabularyOptions& options = {});

  // The pieces of `model` (whose text `normalization` gives), which must begin with
  // `specials` at ids 0, 1, ...: <unk> as SentencePiece's unknown piece, the others as control
  // pieces; a model that numbers them otherwise is a file_error naming `label`, the piece
  // found and the specials expected (subword.h says how to train a fitting one).
  static Vocabulary from_subword_model(SubwordModel model, const std::vector<std::string>& specials,
                                       TextNormalization normalization, const std::string& label);
  // A subword vocabulary whose SentencePiece model is trained (SubwordModel::train, with
  // `corpus` naming the sentences) on sentences already in their corpus form (each normalised
  // by its own language's rule: one model may serve two languages), recording `normalization`.
  static Vocabulary train_subwords(const std::vector<Tokens>& sentences, const SubwordTrainingOptions& options,
                                   TextNormalization normalization, const std::string& corpus);

  std::size_t size() const noexcept { return tokens_.size(); }
  std::size_t special_count() const noexcept { return special_count_; }
  // All tokens, specials first, in id order.
  const std::vector<std::string>& tokens() const noexcept { return tokens_; }
  bool contains(std::string_view token) const { return ids_.find(token) != ids_.end(); }
  // The id of a token the vocabulary holds; xgrad::index_error naming the token otherwise.
  TokenId id(std::string_view token) const;
  TokenId unknown_id() const noexcept { return unknown_id_; }
  TextNormalization normalization() const noexcept { return normalization_; }
  // The SentencePiece model of a subword vocabulary; nullptr for words.
  const SubwordModel* subword_model() const noexcept { return subwords_ ? &*subwords_ : nullptr; }
  bool is_special(TokenId id) const noexcept { return id >= 0 && static_cast<std::size_t>(id) < special_count_; }
  // xgrad::index_error for an id outside [0, size()).
  const std::string& token(TokenId id) const;

  // The tokens of a sentence as this vocabulary holds them: normalised by its rule (which may
  // split or join tokens: normalised_tokens in text.h).
  Tokens normalised(const Tokens& tokens) const;
  // The same tokens (or pieces) recording another rule: the target side of a joint vocabulary.
  Vocabulary with_normalization(TextNormalization rule) const;
  // The ids of the normalised tokens; unknown tokens become <unk>. A subword vocabulary
  // encodes the normalised tokens into pieces, so a rare word becomes pieces, not <unk>.
  std::vector<TokenId> encode(const Tokens& tokens) const;
  // The ids of tokens this vocabulary's rule already wrote (what normalised() or
  // normalised_tokens() returned): not normalised again, because a rule need not be a fixed
  // point on all of its own output (English "d'oeuvres" -> "d 'oeuvres" -> "d ' oeuvres"),
  // and what reads the tokens beside the ids (alignments, --replace-unk, the pictures) must
  // count the same tokens. One id per token, or a subword vocabulary's pieces.
  std::vector<TokenId> ids_of_normalised(const Tokens& tokens) const;
  // What ids_of_normalised's ids stand for, one per id: the tokens themselves, or their pieces.
  Tokens segmented(const Tokens& tokens) const;
  // The tokens of the ids: the tokens they stand for, or, for a subword vocabulary,
  // SentencePiece's decoding of the pieces between specials (<unk> comes out as the model's
  // surface for it, " <unk> " for the models xgrad trains).
  Tokens decode(std::span<const TokenId> ids, const DecodeOptions& options = {}) const;
  // The token of each id as the vocabulary holds it (a word, or a piece such as "▁hund").
  Tokens held_tokens(std::span<const TokenId> ids, const DecodeOptions& options = {}) const;

  // {"format": "xgrad-vocabulary", "version": 1, "normalization": "lowercase-latin1-v1",
  // "specials": [...], "tokens": [...]}, the non-special tokens in id order; a subword
  // vocabulary has "sentencepiece_model": "subword.model" instead of "tokens".
  std::string to_json() const;
  // Parses to_json() output; `label` (the file name) starts every error message. The specials
  // must be exactly `expected_specials`, so that the program's fixed ids mean what it thinks.
  // Malformed JSON, a missing or mistyped key, an unknown normalisation, a duplicate token or
  // a missing special is a file_error naming the label and the problem. A file without
  // "normalization" (written before it was recorded) reads as unrecorded_text_normalization.
  // A subword vocabulary's model is read with `read_neighbour` (at most
  // max_subword_model_file_size bytes); its name must be a plain file name, and its errors
  // name the model's file (SubwordModel::parse, from_subword_model).
  static Vocabulary from_json(std::string_view text, const std::string& label,
                              const std::vector<std::string>& expected_specials,
                              const NeighbourFileReader& read_neighbour = {});
  // Writes to_json() with write_file_atomically, and a subword vocabulary's model beside it
  // as subword_model_file_name.
  void save(const std::string& path) const;
  // from_json of the file, reading a subword model from the file's directory.
  static Vocabulary load(const std::string& path, const std::vector<std::string>& expected_specials);

 private:
  std::vector<std::string> tokens_;
  StringIds ids_;
  std::size_t special_count_ = 0;
  TokenId unknown_id_ = 0;
  TextNormalization normalization_ = TextNormalization::lowercase_latin1_v1;
  std::optional<SubwordModel> subwords_;
};

// The classes of a classification task. Labels are kept as the text found in the data
// ("0", "positive", "HUM"); ids are their positions.
class LabelSet {
 public:
  // Ids in the order given; no labels, an empty label or a duplicate is std::invalid_argument.
  explicit LabelSet(std::vector<std::string> names);

  // The distinct labels of `labels`: in numeric order when every one is an integer (so "0"
  // -> 0 and "1" -> 1, and "10" follows "9"), in byte order otherwise.
  static LabelSet build(const std::vector<std::string>& labels);

  std::size_t size() const noexcept { return names_.size(); }
  const std::vector<std::string>& names() const noexcept { return names_; }
  // xgrad::index_error for an id outside [0, size()).
  const std::string& name(std::int64_t id) const;
  std::optional<std::int64_t> find(std::string_view label) const;

  // The id of every example's label; a label this set does not hold is a file_error naming
  // data.path:line (e.g. a class that occurs in an evaluation file but not in training).
  std::vector<std::int64_t> encode(const LabelledTexts& data) const;

  // {"format": "xgrad-labels", "version": 1, "labels": [...]}
  std::string to_json() const;
  static LabelSet from_json(std::string_view text, const std::string& label);
  void save(const std::string& path) const;
  static LabelSet load(const std::string& path);

 private:
  std::vector<std::string> names_;
  StringIds ids_;
};

}  // namespace xgrad::models
