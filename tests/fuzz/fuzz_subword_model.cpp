// libFuzzer target: a SentencePiece `.model` file as a model directory's subword.model or
// --subword-model gives it. It is refused with a file_error naming it (SentencePiece's status,
// or specials that are not xgrad's), or read; a model that is read must encode text into ids
// its vocabulary holds, and decode them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "xgrad/framework/errors.h"
#include "xgrad/models/vocabulary.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad;
  try {
    models::SubwordModel model =
        models::SubwordModel::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz.model");
    const models::Vocabulary vocabulary = models::Vocabulary::from_subword_model(
        std::move(model), models::classification_specials(), models::TextNormalization::lowercase_latin1_v1,
        "fuzz.model");
    if (vocabulary.size() != vocabulary.subword_model()->size()) __builtin_trap();
    const std::vector<models::TokenId> ids = vocabulary.encode({"ein", "Hund", "rennt", "über", "die", "wiese", "."});
    for (const models::TokenId id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= vocabulary.size()) __builtin_trap();
    }
    (void)vocabulary.decode(ids);
  } catch (const file_error&) {
  }
  return 0;
}
