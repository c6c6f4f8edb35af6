// libFuzzer target: the parallel-corpus reader. The input is split at its first NUL byte into
// the source and the target text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xgrad/framework/errors.h"
#include "xgrad/models/corpus.h"
#include "xgrad/models/vocabulary.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\0');
  const std::string_view source = input.substr(0, split);
  const std::string_view target = split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
  try {
    const models::ParallelCorpus corpus = models::parse_parallel_corpus(source, target, "fuzz.src", "fuzz.tgt");
    const models::Vocabulary vocabulary =
        models::Vocabulary::build(corpus.source, {.specials = models::translation_specials()});
    for (const models::Tokens& sentence : corpus.target) (void)vocabulary.encode(sentence);
  } catch (const file_error&) {
  }
  return 0;
}
