#pragma once
// Subword units with SentencePiece (Kudo and Richardson 2018): a model, trained on a corpus
// or read from a `.model` file, that cuts words into pieces it holds ("▁hunde" "hütte") and
// joins pieces back into words, so that a rare word becomes known pieces instead of <unk>.
//
// It segments *corpus-form* text: the tokens a vocabulary's normalisation rule gave
// (text.h), joined by single spaces. A piece never spans two words (SentencePiece's
// split_by_whitespace), and "▁" marks the piece that starts a word.
//
// The ids are SentencePiece's own, and the first ones are xgrad's specials (vocabulary.h):
// <pad> <unk> <sos> <eos> = 0 1 2 3 for translation, <pad> <unk> = 0 1 for classification,
// <unk> as SentencePiece's unknown piece and the others as control pieces, which text never
// encodes to and decoding leaves out. A `.model` trained elsewhere must number them so, and
// leave normalisation to xgrad (spm_train --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3
// --pad_piece='<pad>' --bos_piece='<sos>' --eos_piece='<eos>' --normalization_rule_name=identity,
// with --bos_id=-1 --eos_id=-1 for a classifier).
//
// SentencePiece's headers stay inside subword.cpp.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/models/corpus.h"

namespace xgrad::models {

enum class SubwordAlgorithm { unigram, bpe };
// "unigram", "bpe".
std::string to_string(SubwordAlgorithm algorithm);
// std::invalid_argument naming the name and the known algorithms.
SubwordAlgorithm subword_algorithm_from_string(std::string_view name);

// `.model` files larger than this are refused unread (a model of 32,000 pieces takes about a megabyte).
inline constexpr std::size_t max_subword_model_file_size = std::size_t{1} << 28;

struct SubwordTrainingOptions {
  SubwordAlgorithm algorithm = SubwordAlgorithm::unigram;
  // Pieces in all, specials included.
  std::size_t vocabulary_size = 8000;
  // Ids 0, 1, ...: <pad> <unk> [<sos> <eos>] (translation_specials() or
  // classification_specials()); others are std::invalid_argument.
  std::vector<std::string> specials;
};

class SubwordModel {
 public:
  // Trains on `sentences` (corpus-form tokens), on one thread with a fixed seed, so that the
  // same sentences and options give the same model, byte for byte; SentencePiece's log is
  // kept off standard error. A vocabulary size the corpus cannot fill (fewer distinct pieces
  // than asked, or fewer than its characters and specials need) is std::invalid_argument
  // naming `corpus` (how messages name the sentences), the size and SentencePiece's reason.
  static SubwordModel train(const std::vector<Tokens>& sentences, const SubwordTrainingOptions& options,
                            const std::string& corpus);
  // A serialised model (a `.model` file's bytes); `label` names it in errors. Bytes
  // SentencePiece cannot read are a file_error naming the label and SentencePiece's reason;
  // so are, checked first, what SentencePiece would not survive (a piece holding a NUL byte)
  // and a normalisation of its own (a precompiled character map).
  static SubwordModel parse(std::string bytes, const std::string& label);
  // read_file (at most max_subword_model_file_size), then parse.
  static SubwordModel load(const std::string& path);

  // The `.model` file's bytes.
  const std::string& serialized() const noexcept;
  void save(const std::string& path) const;

  // Every piece, in id order.
  const std::vector<std::string>& pieces() const noexcept;
  std::size_t size() const noexcept { return pieces().size(); }
  bool is_unknown(std::int64_t id) const;
  bool is_control(std::int64_t id) const;

  // The ids, or the pieces, of the words (corpus-form tokens).
  std::vector<std::int64_t> encode(const Tokens& words) const;
  Tokens segment(const Tokens& words) const;
  // The words the ids make: SentencePiece's decoding (control pieces give nothing, the
  // unknown piece the model's surface for it), split at white space. Ids outside
  // [0, size()) are xgrad::index_error.
  Tokens decode(std::span<const std::int64_t> ids) const;

 private:
  struct State;
  explicit SubwordModel(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;  // immutable once built, so copies share it
};

}  // namespace xgrad::models
