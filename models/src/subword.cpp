#include "xgrad/models/subword.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/file_io.h"
#include "xgrad/models/vocabulary.h"

namespace xgrad::models {

struct SubwordModel::State {
  sentencepiece::SentencePieceProcessor processor;
  std::string serialized;
  std::vector<std::string> pieces;
};

namespace {

// The training sentences as SentencePiece reads them: each sentence's tokens joined by spaces.
class JoinedSentences final : public sentencepiece::SentenceIterator {
 public:
  explicit JoinedSentences(const std::vector<Tokens>& sentences) : sentences_(sentences) { load(); }
  bool done() const override { return next_ > sentences_.size(); }
  void Next() override { load(); }
  const std::string& value() const override { return current_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void load() {
    if (next_ < sentences_.size()) current_ = join_tokens(sentences_[next_]);
    ++next_;
  }
  const std::vector<Tokens>& sentences_;
  std::size_t next_ = 0;
  std::string current_;
};

// SentencePiece's message without the source position and condition its checks put first
// ("./src/trainer_interface.cc(660) [(a) == (b)] Vocabulary size too high ...").
std::string reason(const sentencepiece::util::Status& status) {
  const std::string message = status.error_message();
  const std::size_t condition_end = message.rfind("] ");
  return message.starts_with("./src/") && condition_end != std::string::npos ? message.substr(condition_end + 2) : message;
}

// The protocol-buffer wire format (protobuf.dev/programming-guides/encoding), just enough to
// look inside a ModelProto (sentencepiece_model.proto) before SentencePiece does.
bool read_varint(std::string_view& bytes, std::uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && !bytes.empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(bytes.front());
    bytes.remove_prefix(1);
    value |= std::uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80u) == 0) return true;
  }
  return false;
}

// Calls visit(field number, payload) for each length-delimited field of `message` and skips
// the others; false when the bytes are not a well-formed message.
template <class Visit>
bool for_each_bytes_field(std::string_view message, Visit visit) {
  while (!message.empty()) {
    std::uint64_t key = 0, length = 0;
    if (!read_varint(message, key)) return false;
    switch (key & 7) {
      case 0:
        if (!read_varint(message, length)) return false;
        break;
      case 1:
      case 5: {
        const std::size_t size = (key & 7) == 1 ? 8 : 4;
        if (message.size() < size) return false;
        message.remove_prefix(size);
        break;
      }
      case 2:
        if (!read_varint(message, length) || length > message.size()) return false;
        if (!visit(key >> 3, message.substr(0, length))) return false;
        message.remove_prefix(length);
        break;
      default:
        return false;  // groups, which sentencepiece_model.proto never uses
    }
  }
  return true;
}

// What SentencePiece 0.1.97 would not survive or would trust unchecked, found before it reads
// the model: a piece holding a NUL byte aborts the process while its trie is built (an
// exception thrown where none can be caught), and a normaliser's precompiled character map
// (a trie of its own, read without checks whenever text is encoded) is refused, as xgrad's
// models never have one: the vocabulary's rule normalises the text (text.h), and SentencePiece's
// own normalisation would make decoding not give back what was encoded. Empty: nothing found.
std::string unsafe_part(std::string_view model) {
  std::string problem;
  std::size_t piece_index = 0;
  const bool well_formed = for_each_bytes_field(model, [&](std::uint64_t field, std::string_view payload) {
    if (field == 1) {  // ModelProto.pieces: SentencePiece.piece is field 1
      const std::size_t index = piece_index++;
      return for_each_bytes_field(payload, [&](std::uint64_t inner, std::string_view piece) {
        if (inner == 1 && piece.find('\0') != std::string_view::npos && problem.empty()) {
          problem = detail::message("piece ", index, " holds a NUL byte");
        }
        return true;
      });
    }
    if (field == 3 || field == 5) {  // normalizer_spec, denormalizer_spec: precompiled_charsmap is field 2
      return for_each_bytes_field(payload, [&](std::uint64_t inner, std::string_view charsmap) {
        if (inner == 2 && !charsmap.empty() && problem.empty()) {
          problem = detail::message(field == 3 ? "it normalises" : "it denormalises",
                                    " text by rules of its own; xgrad's models read text the vocabulary's rule "
                                    "normalised (train it with spm_train --normalization_rule_name=identity)");
        }
        return true;
      });
    }
    return true;
  });
  return well_formed ? problem : std::string("its bytes do not parse as one");
}

}  // namespace

std::string to_string(SubwordAlgorithm algorithm) { return algorithm == SubwordAlgorithm::bpe ? "bpe" : "unigram"; }

SubwordAlgorithm subword_algorithm_from_string(std::string_view name) {
  if (name == "unigram") return SubwordAlgorithm::unigram;
  if (name == "bpe") return SubwordAlgorithm::bpe;
  throw std::invalid_argument(detail::message("unknown subword algorithm '", name, "'; expected unigram or bpe"));
}

SubwordModel SubwordModel::train(const std::vector<Tokens>& sentences, const SubwordTrainingOptions& options,
                                 const std::string& corpus) {
  const std::vector<std::string>& specials = options.specials;
  if (specials != translation_specials() && specials != classification_specials()) {
    throw std::invalid_argument(detail::message("SubwordModel::train: the specials [", join_tokens(specials),
                                                "] are neither [", join_tokens(translation_specials()), "] nor [",
                                                join_tokens(classification_specials()), "]"));
  }
  const bool with_sentence_marks = specials.size() == translation_specials().size();
  const std::unordered_map<std::string, std::string> arguments{
      {"model_type", to_string(options.algorithm)},
      {"vocab_size", std::to_string(options.vocabulary_size)},
      {"pad_id", "0"},
      {"unk_id", "1"},
      {"bos_id", with_sentence_marks ? "2" : "-1"},
      {"eos_id", with_sentence_marks ? "3" : "-1"},
      {"pad_piece", std::string(pad_token)},
      {"unk_piece", std::string(unknown_token)},
      {"bos_piece", std::string(start_token)},
      {"eos_piece", std::string(end_token)},
      // An unknown piece decodes to a word of its own, written as a word-level model writes it.
      {"unk_surface", detail::message(" ", unknown_token, " ")},
      // The text is already normalised by the vocabulary's rule: SentencePiece's default NFKC
      // would change it, and decoding would then not give back what was encoded.
      {"normalization_rule_name", "identity"},
      // Every character of the training text gets a piece: the corpora are small alphabets,
      // and a dropped rare letter would be <unk> in every word it occurs in.
      {"character_coverage", "1.0"},
      // One thread and a fixed seed: the same corpus gives the same model.
      {"num_threads", "1"},
      // Errors come back as a status; the progress log would flood standard error.
      {"minloglevel", "2"},
  };
  sentencepiece::SetRandomGeneratorSeed(1);
  JoinedSentences iterator(sentences);
  std::string serialized;
  const sentencepiece::util::Status status = sentencepiece::SentencePieceTrainer::Train(arguments, &iterator, &serialized);
  if (!status.ok()) {
    throw std::invalid_argument(detail::message("SentencePiece cannot train ", options.vocabulary_size, " ",
                                                to_string(options.algorithm), " pieces on ", corpus, ": ",
                                                reason(status)));
  }
  return parse(std::move(serialized), "the SentencePiece model trained on " + corpus);
}

SubwordModel SubwordModel::parse(std::string bytes, const std::string& label) {
  if (const std::string problem = unsafe_part(bytes); !problem.empty()) {
    throw file_error(detail::message(label, ": not a SentencePiece model xgrad can use (", problem, ")"));
  }
  auto state = std::make_shared<State>();
  const sentencepiece::util::Status status = state->processor.LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    const std::string why = reason(status);
    throw file_error(detail::message(label, ": not a SentencePiece model (",
                                     why.empty() ? "its bytes do not parse as one" : why, ")"));
  }
  const int size = state->processor.GetPieceSize();
  if (size <= 0) throw file_error(detail::message(label, ": a SentencePiece model without pieces"));
  state->pieces.reserve(static_cast<std::size_t>(size));
  for (int id = 0; id < size; ++id) state->pieces.push_back(state->processor.IdToPiece(id));
  state->serialized = std::move(bytes);
  return SubwordModel(std::move(state));
}

SubwordModel SubwordModel::load(const std::string& path) {
  return parse(read_file(path, max_subword_model_file_size), path);
}

const std::string& SubwordModel::serialized() const noexcept { return state_->serialized; }

void SubwordModel::save(const std::string& path) const { write_file_atomically(path, state_->serialized); }

const std::vector<std::string>& SubwordModel::pieces() const noexcept { return state_->pieces; }

bool SubwordModel::is_unknown(std::int64_t id) const {
  return id >= 0 && static_cast<std::size_t>(id) < size() && state_->processor.IsUnknown(static_cast<int>(id));
}

bool SubwordModel::is_control(std::int64_t id) const {
  return id >= 0 && static_cast<std::size_t>(id) < size() && state_->processor.IsControl(static_cast<int>(id));
}

std::vector<std::int64_t> SubwordModel::encode(const Tokens& words) const {
  std::vector<int> ids;
  const sentencepiece::util::Status status = state_->processor.Encode(join_tokens(words), &ids);
  if (!status.ok()) throw std::runtime_error(detail::message("SentencePiece: cannot encode (", status.error_message(), ")"));
  return {ids.begin(), ids.end()};
}

Tokens SubwordModel::segment(const Tokens& words) const {
  std::vector<std::string> pieces;
  const sentencepiece::util::Status status = state_->processor.Encode(join_tokens(words), &pieces);
  if (!status.ok()) throw std::runtime_error(detail::message("SentencePiece: cannot encode (", status.error_message(), ")"));
  return pieces;
}

Tokens SubwordModel::decode(std::span<const std::int64_t> ids) const {
  std::vector<int> narrow;
  narrow.reserve(ids.size());
  for (const std::int64_t id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= size()) {
      throw index_error(detail::message("SubwordModel::decode: id ", id, " is outside [0, ", size(), ")"));
    }
    narrow.push_back(static_cast<int>(id));
  }
  std::string text;
  const sentencepiece::util::Status status = state_->processor.Decode(narrow, &text);
  if (!status.ok()) throw std::runtime_error(detail::message("SentencePiece: cannot decode (", status.error_message(), ")"));
  return split_tokens(text);
}

}  // namespace xgrad::models
