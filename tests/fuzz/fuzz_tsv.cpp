// libFuzzer target: the labelled-TSV reader and the label set built from what it read.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xgrad/framework/errors.h"
#include "xgrad/models/corpus.h"
#include "xgrad/models/vocabulary.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad;
  try {
    const models::LabelledTexts texts =
        models::parse_labelled_tsv(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.tsv");
    const models::LabelSet labels = models::LabelSet::build(texts.labels);
    (void)labels.encode(texts);
    (void)models::Vocabulary::build(texts.texts);
  } catch (const file_error&) {
  } catch (const std::invalid_argument&) {  // a label set refuses what JSON cannot hold
  }
  return 0;
}
