#pragma once
// Labelled texts as the classifier reads them: token ids from the vocabulary (so normalised
// by its rule) with label ids, and batches padded with the vocabulary's <pad>.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "xgrad/models/batching.h"
#include "xgrad/models/corpus.h"
#include "xgrad/models/vocabulary.h"

namespace xgrad::models {

struct EncodedTexts {
  std::vector<std::vector<TokenId>> tokens;
  std::vector<std::int64_t> labels;
  std::vector<std::size_t> lengths;  // the bucketing key
  // What the batches are padded with: the vocabulary's <pad>, set by encode_texts.
  TokenId pad_id;
};

// Every text with its label; a label `labels` does not hold is LabelSet::encode's file_error,
// a vocabulary without <pad> Vocabulary::id's index_error.
EncodedTexts encode_texts(const LabelledTexts& data, const Vocabulary& vocabulary, const LabelSet& labels);

// The texts of `rows`, padded.
PaddedBatch make_batch(const EncodedTexts& texts, const Batch& rows);

}  // namespace xgrad::models
