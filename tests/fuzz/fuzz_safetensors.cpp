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
      const safetensors::Dtype dtype = file.entry(name).dtype;
      if (safetensors::is_floating(dtype)) {
        (void)file.floats<float>(name);
        (void)file.floats<double>(name);
        (void)file.first_non_finite(name);
      } else if (safetensors::is_integer(dtype)) {
        (void)file.integers(name);
      } else {
        (void)file.stored<bool>(name);
      }
      if (dtype == safetensors::Dtype::bf16 || dtype == safetensors::Dtype::f16) (void)file.stored<std::uint16_t>(name);
      if (dtype == safetensors::Dtype::i8) (void)file.stored<std::int8_t>(name);
    }
  } catch (const file_error&) {
  }
  return 0;
}
