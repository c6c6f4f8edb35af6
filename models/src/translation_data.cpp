#include "xgrad/models/translation_data.h"

#include <algorithm>

namespace xgrad::models {

EncodedPairs encode_sources(const std::vector<Tokens>& sentences, const Vocabulary& source) {
  std::vector<Tokens> normalised;
  normalised.reserve(sentences.size());
  for (const Tokens& sentence : sentences) normalised.push_back(source.normalised(sentence));
  return encode_normalised_sources(normalised, source);
}

EncodedPairs encode_normalised_sources(const std::vector<Tokens>& sentences, const Vocabulary& source) {
  EncodedPairs pairs{};
  pairs.source_pad_id = source.id(pad_token);
  for (const Tokens& sentence : sentences) pairs.source.push_back(source.ids_of_normalised(sentence));
  return pairs;
}

EncodedPairs encode_pairs(const ParallelCorpus& corpus, const Vocabulary& source, const Vocabulary& target) {
  const TokenId sos = target.id(start_token), eos = target.id(end_token);
  EncodedPairs pairs = encode_sources(corpus.source, source);
  pairs.target_pad_id = target.id(pad_token);
  for (std::size_t i = 0; i < corpus.target.size(); ++i) {
    const std::vector<TokenId> ids = target.encode(corpus.target[i]);
    std::vector<TokenId> inputs{sos};
    inputs.insert(inputs.end(), ids.begin(), ids.end());
    std::vector<TokenId> outputs = ids;
    outputs.push_back(eos);
    pairs.lengths.push_back(std::max(pairs.source[i].size(), outputs.size()));
    pairs.target_inputs.push_back(std::move(inputs));
    pairs.target_outputs.push_back(std::move(outputs));
    pairs.references.push_back(target.normalised(corpus.target[i]));
  }
  return pairs;
}

PaddedBatch source_batch(const EncodedPairs& pairs, const Batch& rows) {
  return pad_batch(pairs.source, rows, pairs.source_pad_id);
}

TranslationBatch make_batch(const EncodedPairs& pairs, const Batch& rows) {
  TranslationBatch batch;
  batch.source = source_batch(pairs, rows);
  PaddedBatch outputs = pad_batch(pairs.target_outputs, rows, pairs.target_pad_id);
  batch.target = {pad_batch(pairs.target_inputs, rows, pairs.target_pad_id).ids, std::move(outputs.ids)};
  for (std::size_t length : outputs.lengths) batch.target_tokens += length;
  return batch;
}

CorpusLoss corpus_loss(const Translator<float>& model, const EncodedPairs& pairs, std::size_t batch_size) {
  double total = 0;
  std::size_t tokens = 0;
  for (const Batch& rows : consecutive_batches(pairs.source.size(), batch_size)) {
    const TranslationBatch batch = make_batch(pairs, rows);
    const auto [sum, count] = model.evaluate_loss(batch.source, batch.target);
    total += sum;
    tokens += count;
  }
  return {tokens == 0 ? 0.0 : total / double(tokens), tokens};
}

}  // namespace xgrad::models
