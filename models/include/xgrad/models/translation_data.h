#pragma once
// Sentence pairs as the translation model reads them: token ids from the vocabularies (so
// normalised by their rules), <sos>/<eos> added to the target, and batches padded with each
// vocabulary's <pad>.

#include <cstddef>
#include <vector>

#include "xgrad/models/batching.h"
#include "xgrad/models/corpus.h"
#include "xgrad/models/translator.h"
#include "xgrad/models/vocabulary.h"

namespace xgrad::models {

struct EncodedPairs {
  std::vector<std::vector<TokenId>> source;
  std::vector<std::vector<TokenId>> target_inputs;   // <sos> y1 .. yn
  std::vector<std::vector<TokenId>> target_outputs;  // y1 .. yn <eos>
  std::vector<Tokens> references;                    // the normalised target tokens, for BLEU
  std::vector<std::size_t> lengths;                  // max(source, target + 1): the bucketing key
  // What the batches are padded with: the vocabularies' <pad>, set by the encoders below.
  TokenId source_pad_id;
  TokenId target_pad_id;
};

// Every pair of the corpus; the vocabularies must hold <pad>, and the target <sos> and <eos>
// (translation_specials()), or Vocabulary::id's index_error names the missing one.
EncodedPairs encode_pairs(const ParallelCorpus& corpus, const Vocabulary& source, const Vocabulary& target);
// Source sentences alone, to be translated: the target side stays empty.
EncodedPairs encode_sources(const std::vector<Tokens>& sentences, const Vocabulary& source);
// The same for sentences already normalised by the source vocabulary's rule (standard input
// as normalised_tokens read it): their tokens are the ones encoded, one id each
// (Vocabulary::ids_of_normalised).
EncodedPairs encode_normalised_sources(const std::vector<Tokens>& sentences, const Vocabulary& source);

struct TranslationBatch {
  PaddedBatch source;
  TargetBatch target;
  std::size_t target_tokens = 0;  // real target positions (with <eos>)
};

// The source sentences of `rows`, padded.
PaddedBatch source_batch(const EncodedPairs& pairs, const Batch& rows);
// The pairs of `rows`, both sides padded, for the loss.
TranslationBatch make_batch(const EncodedPairs& pairs, const Batch& rows);

// The model's cross-entropy over every pair, per target token (padding excluded), computed
// `batch_size` pairs at a time without a graph; and the number of target tokens.
struct CorpusLoss {
  double per_token = 0;
  std::size_t tokens = 0;
};
CorpusLoss corpus_loss(const Translator<float>& model, const EncodedPairs& pairs, std::size_t batch_size);

}  // namespace xgrad::models
