#include "subword_flags.h"

#include <stdexcept>

#include <xgrad/training/distributed.h>

namespace xgrad::cli {

void declare_subword_flags(Command& command, SubwordFlags& flags) {
  command.choice("--subword", flags.algorithm, {"none", "unigram", "bpe"},
                 "none: a vocabulary of whole words; unigram or bpe: a SentencePiece model of --vocab-size pieces, "
                 "trained on the training text (one joint model for both languages of a translator), which spells "
                 "rare words in pieces instead of <unk>");
  command.size("--vocab-size", flags.vocabulary_size, "N",
               "pieces of the --subword model, specials included (0: " +
                   std::to_string(default_subword_vocabulary_size) + ")")
      .range(0, 1'000'000);
  command.path("--subword-model", flags.model, "FILE",
               "an existing SentencePiece .model to use instead of training one (its first ids must be xgrad's "
               "specials: docs/errors.md)");
  command.exclusive("--subword", "--subword-model");
  command.exclusive("--vocab-size", "--subword-model");
}

std::vector<ModelFlag> subword_model_flags(const SubwordFlags& flags) {
  return {{"--subword", flags.algorithm},
          {"--vocab-size", std::to_string(flags.vocabulary_size)},
          {"--subword-model", flags.model.string()}};
}

void refuse_unused_subword_flags(const SubwordFlags& flags) {
  if (flags.vocabulary_size != 0 && flags.algorithm == "none") {
    throw UsageError("--vocab-size " + std::to_string(flags.vocabulary_size) +
                     " needs --subword unigram or bpe (without them the vocabulary holds whole words: --min-freq, "
                     "--max-vocab)");
  }
}

models::Vocabulary subword_vocabulary(const SubwordFlags& flags, const std::vector<models::Tokens>& sentences,
                                      const std::string& corpus, const std::vector<std::string>& specials,
                                      models::TextNormalization normalization) {
  if (!flags.model.empty()) {
    return models::Vocabulary::from_subword_model(models::SubwordModel::load(flags.model.string()), specials,
                                                  normalization, flags.model.string());
  }
  if (distributed::world().size() > 1) {
    // Each rank would train its own SentencePiece model, and nothing makes them the same.
    throw UsageError("--subword trains a SentencePiece model in each process of a data-parallel run; train it in "
                     "one process first and give it to every rank with --subword-model FILE");
  }
  const std::size_t size = flags.vocabulary_size != 0 ? flags.vocabulary_size : default_subword_vocabulary_size;
  try {
    return models::Vocabulary::train_subwords(
        sentences,
        {.algorithm = models::subword_algorithm_from_string(flags.algorithm), .vocabulary_size = size, .specials = specials},
        normalization, corpus);
  } catch (const std::invalid_argument& e) {
    throw UsageError("--vocab-size " + std::to_string(size) + ": " + e.what());
  }
}

}  // namespace xgrad::cli
