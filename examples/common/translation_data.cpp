#include "translation_data.h"

#include <algorithm>

namespace xgrad::translate {

using models::TokenId;

EncodedPairs encode_pairs(const models::ParallelCorpus& corpus, const models::Vocabulary& source,
                          const models::Vocabulary& target) {
  const TokenId sos = target.id(models::start_token), eos = target.id(models::end_token);
  EncodedPairs pairs;
  for (std::size_t i = 0; i < corpus.source.size(); ++i) {
    pairs.source.push_back(source.encode(corpus.source[i]));
    const std::vector<TokenId> ids = target.encode(corpus.target[i]);
    std::vector<TokenId> inputs{sos};
    inputs.insert(inputs.end(), ids.begin(), ids.end());
    std::vector<TokenId> outputs = ids;
    outputs.push_back(eos);
    pairs.lengths.push_back(std::max(pairs.source.back().size(), outputs.size()));
    pairs.target_inputs.push_back(std::move(inputs));
    pairs.target_outputs.push_back(std::move(outputs));
    pairs.references.push_back(corpus.target[i]);
  }
  return pairs;
}

TranslationBatch make_batch(const EncodedPairs& pairs, const models::Batch& rows) {
  const TokenId pad = 0;
  TranslationBatch batch;
  batch.source = models::pad_batch(pairs.source, rows, pad);
  models::PaddedBatch outputs = models::pad_batch(pairs.target_outputs, rows, pad);
  batch.target = {models::pad_batch(pairs.target_inputs, rows, pad).ids, std::move(outputs.ids)};
  for (std::size_t length : outputs.lengths) batch.target_tokens += length;
  return batch;
}

}  // namespace xgrad::translate
