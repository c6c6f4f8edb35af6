// libFuzzer target: safetensors::File::parse on arbitrary bytes must either refuse the file
// with a file_error or give tensors whose every byte lies inside the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad;
  try {
    const safetensors::File file = safetensors::File::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    for (const std::string& name : file.names()) {
      if (file.entry(name).dtype == safetensors::Dtype::i64) {
        (void)file.integers(name);
      } else {
        (void)file.floats<float>(name);
        (void)file.floats<double>(name);
      }
    }
  } catch (const file_error&) {
  }
  return 0;
}
