#pragma once
// Strict checking of a safetensors file's tensors against what a loader expects (a module's
// state_dict, an optimizer's buffers), reporting every problem at once so that one message
// says all that is wrong with a file.

#include <string>
#include <vector>

#include "xgrad/framework/safetensors.h"
#include "xgrad/framework/shape.h"

namespace xgrad::safetensors {

// One tensor a loader needs from a file.
struct ExpectedTensor {
  std::string key;  // without the prefix
  Shape shape;
  // An integer (counters: I64, I32 or I8) rather than floating point (F32, F64, BF16 or F16,
  // each loads into both precisions).
  bool integer = false;
  // What the shape comes from, named after a mismatch when the key does not say it
  // ("parameter 'a'"); empty: nothing is added.
  std::string shape_of{};
};

// How the lines name the loader and the keys nobody expects.
struct TensorCheckWording {
  std::string loader = "the module";            // "... the file has shape [4] but the module expects [3]"
  std::string unexpected = "unexpected key";    // "unexpected key 'decoder.weight'"
};

// Every way the file's tensors under `prefix` differ from `expected`, one line each: a missing
// key (with the expected shape), a shape mismatch (both shapes), the wrong kind of dtype (both
// named), and each tensor under the prefix that is not expected. When every missing key is in
// the file under another common prefix, or in the file without a common leading part, a first
// line says so and what to load instead. Empty when the file fits.
std::vector<std::string> tensor_mismatches(const File& file, const std::string& prefix,
                                           const std::vector<ExpectedTensor>& expected,
                                           const TensorCheckWording& wording = {});

}  // namespace xgrad::safetensors
