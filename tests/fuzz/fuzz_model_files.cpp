// libFuzzer target: the JSON files of a model directory — vocabularies, label sets, the RNN
// translator's and both classifiers' configurations. Each is refused with an exception naming
// the problem, or read; a configuration that is read must not ask for more memory than a real
// model could.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "xgrad/framework/errors.h"
#include "xgrad/models/classifier.h"
#include "xgrad/models/seq2seq.h"
#include "xgrad/models/transformer_classifier.h"
#include "xgrad/models/vocabulary.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)models::Vocabulary::from_json(text, "fuzz.json", models::translation_specials());
  } catch (const file_error&) {
  }
  try {
    (void)models::LabelSet::from_json(text, "fuzz.json");
  } catch (const file_error&) {
  }
  try {
    (void)models::seq2seq_options_from_json(text);
  } catch (const std::invalid_argument&) {
  }
  try {
    (void)models::classifier_options_from_json(text);
  } catch (const std::invalid_argument&) {
  }
  try {
    (void)models::transformer_classifier_options_from_json(text);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
