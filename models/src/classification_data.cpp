#include "xgrad/models/classification_data.h"

namespace xgrad::models {

EncodedTexts encode_texts(const LabelledTexts& data, const Vocabulary& vocabulary, const LabelSet& labels) {
  EncodedTexts texts{};
  texts.pad_id = vocabulary.id(pad_token);
  texts.labels = labels.encode(data);
  for (const Tokens& text : data.texts) {
    texts.tokens.push_back(vocabulary.encode(text));
    texts.lengths.push_back(texts.tokens.back().size());
  }
  return texts;
}

PaddedBatch make_batch(const EncodedTexts& texts, const Batch& rows) { return pad_batch(texts.tokens, rows, texts.pad_id); }

}  // namespace xgrad::models
