// libFuzzer target: a whole model directory, loaded as the programs load it. The input is
// split at its first three NUL bytes into config.json, the first vocabulary (source.vocab.json
// or vocab.json), the second file (target.vocab.json or labels.json) and model.safetensors
// (the rest, which may hold NULs of its own); the translation, the classification and the
// image loaders read the parts (the image loader without the vocabulary). Each is refused with a file_error or loaded; the parameter limit
// keeps what a configuration may allocate within the fuzzer's memory limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "xgrad/framework/errors.h"
#include "xgrad/models/model_directory.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::string parts[4];
  for (int i = 0; i < 3; ++i) {
    const std::size_t split = rest.find('\0');
    parts[i] = std::string(rest.substr(0, split));
    rest = split == std::string_view::npos ? std::string_view() : rest.substr(split + 1);
  }
  parts[3] = std::string(rest);
  const models::ModelLimits limits{.max_parameters = 2e6};
  namespace file = models::model_file;
  try {
    const models::ModelFilesInMemory translation(
        "fuzz", {{file::config, parts[0]}, {file::source_vocabulary, parts[1]}, {file::target_vocabulary, parts[2]},
                 {file::weights, parts[3]}});
    (void)models::load_translation_model(translation, true, limits);
  } catch (const file_error&) {
  }
  try {
    const models::ModelFilesInMemory classification(
        "fuzz", {{file::config, parts[0]}, {file::vocabulary, parts[1]}, {file::labels, parts[2]}, {file::weights, parts[3]}});
    (void)models::load_classification_model(classification, true, limits);
  } catch (const file_error&) {
  }
  try {
    const models::ModelFilesInMemory images("fuzz", {{file::config, parts[0]}, {file::labels, parts[2]}, {file::weights, parts[3]}});
    (void)models::load_image_model(images, true, limits);
  } catch (const file_error&) {
  }
  return 0;
}
