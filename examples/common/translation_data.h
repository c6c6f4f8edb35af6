#pragma once
// Sentence pairs as the translation model reads them: token ids with <sos>/<eos> added to the
// target, and batches of them padded to a common length.

#include <cstddef>
#include <string>
#include <vector>

#include <xgrad/models/batching.h>
#include <xgrad/models/corpus.h>
#include <xgrad/models/seq2seq.h>
#include <xgrad/models/vocabulary.h>

namespace xgrad::translate {

struct EncodedPairs {
  std::vector<std::vector<models::TokenId>> source;
  std::vector<std::vector<models::TokenId>> target_inputs;   // <sos> y1 .. yn
  std::vector<std::vector<models::TokenId>> target_outputs;  // y1 .. yn <eos>
  std::vector<models::Tokens> references;                    // the target tokens, for BLEU
  std::vector<std::size_t> lengths;                          // max(source, target + 1): the bucketing key
};

EncodedPairs encode_pairs(const models::ParallelCorpus& corpus, const models::Vocabulary& source,
                          const models::Vocabulary& target);

struct TranslationBatch {
  models::PaddedBatch source;
  models::TargetBatch target;
  std::size_t target_tokens = 0;  // real target positions (with <eos>)
};

TranslationBatch make_batch(const EncodedPairs& pairs, const models::Batch& rows);

}  // namespace xgrad::translate
