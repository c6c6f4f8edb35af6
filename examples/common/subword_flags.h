#pragma once
// The flags of `train` that choose a subword vocabulary (models/subword.h) instead of words:
// --subword unigram|bpe with --vocab-size N trains a SentencePiece model on the training
// text; --subword-model FILE uses an existing one. Shared by xgrad-translate and xgrad-classify.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <xgrad/models/vocabulary.h>

#include "cli.h"
#include "run_directory.h"

namespace xgrad::cli {

struct SubwordFlags {
  std::string algorithm = "none";  // "none": a word vocabulary
  std::size_t vocabulary_size = 0;  // 0: not given (default_subword_vocabulary_size)
  std::filesystem::path model;     // --subword-model; empty: none
  bool wanted() const { return algorithm != "none" || !model.empty(); }
};

inline constexpr std::size_t default_subword_vocabulary_size = 8000;

// Declares --subword, --vocab-size and --subword-model on `command`.
void declare_subword_flags(Command& command, SubwordFlags& flags);
// The three as model flags, which a resumed run must repeat.
std::vector<ModelFlag> subword_model_flags(const SubwordFlags& flags);

// The subword vocabulary the flags ask for, with `specials` and the text rule `normalization`:
// read from --subword-model (file_error naming the file when it is missing, not a
// SentencePiece model, or numbers the specials otherwise), or trained on `sentences` (in
// their corpus form: already normalised, each by its language's rule), which `corpus` names. UsageError for --vocab-size without --subword, and for a --vocab-size
// SentencePiece cannot reach on the sentences (naming the flag, the files and the most it can).
models::Vocabulary subword_vocabulary(const SubwordFlags& flags, const std::vector<models::Tokens>& sentences,
                                      const std::string& corpus, const std::vector<std::string>& specials,
                                      models::TextNormalization normalization);

// Refuses (UsageError) --vocab-size given without --subword, before any data is read.
void refuse_unused_subword_flags(const SubwordFlags& flags);

}  // namespace xgrad::cli
