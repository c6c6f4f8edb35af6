#include "xgrad/framework/tensor_check.h"

#include <algorithm>
#include <optional>
#include <set>

#include "xgrad/framework/errors.h"

namespace xgrad::safetensors {
namespace {

std::string quoted(const std::string& text) { return "\"" + text + "\""; }

std::string missing_keys_phrase(std::size_t count) {
  return count == 1 ? "the missing key is" : detail::message("all ", count, " missing keys are");
}

// Another prefix under which the file holds every expected key: the prefix the caller should
// have loaded with (a whole checkpoint's "model.", or "" for a bare state_dict). Every key, not
// only the missing ones: loading with a prefix that holds a stray copy of one key would miss
// all the others.
std::optional<std::string> prefix_holding_all(const File& file, const std::vector<ExpectedTensor>& expected,
                                              const std::string& first_missing) {
  for (const std::string& name : file.names()) {
    if (!name.ends_with(first_missing)) continue;
    const std::string candidate = name.substr(0, name.size() - first_missing.size());
    if (!candidate.empty() && candidate.back() != '.') continue;  // "birnn.weight" ends with "rnn.weight"
    if (std::all_of(expected.begin(), expected.end(),
                    [&](const ExpectedTensor& tensor) { return file.contains(candidate + tensor.key); })) {
      return candidate;
    }
  }
  return std::nullopt;
}

// A leading part ("encoder.") of every missing key without which the file holds them all: the
// file holds the state of that part of the loader only.
std::optional<std::string> leading_part_lacking(const File& file, const std::string& prefix,
                                                const std::vector<std::string>& missing) {
  const std::string& first = missing.front();
  for (std::size_t dot = first.find('.'); dot != std::string::npos; dot = first.find('.', dot + 1)) {
    const std::string part = first.substr(0, dot + 1);
    if (std::all_of(missing.begin(), missing.end(), [&](const std::string& key) {
          return key.starts_with(part) && file.contains(prefix + key.substr(part.size()));
        })) {
      return part;
    }
  }
  return std::nullopt;
}

// A line saying where the missing keys are, when they all are somewhere else in the file.
std::optional<std::string> where_missing_keys_are(const File& file, const std::string& prefix,
                                                  const std::vector<ExpectedTensor>& expected,
                                                  const std::vector<std::string>& missing) {
  if (missing.empty()) return std::nullopt;
  const std::string keys_are = missing_keys_phrase(missing.size());
  if (const std::optional<std::string> other = prefix_holding_all(file, expected, missing.front())) {
    const std::string where = other->empty() ? "without a prefix" : "under the prefix " + quoted(*other);
    return keys_are + " in the file " + where + ": load with prefix " + quoted(*other);
  }
  if (const std::optional<std::string> part = leading_part_lacking(file, prefix, missing)) {
    return keys_are + " in the file without their leading " + quoted(*part) + ": the file holds only that part (" +
           part->substr(0, part->size() - 1) + "); load it into that part alone";
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> tensor_mismatches(const File& file, const std::string& prefix,
                                           const std::vector<ExpectedTensor>& expected,
                                           const TensorCheckWording& wording) {
  std::vector<std::string> problems;
  std::vector<std::string> missing;
  std::set<std::string> expected_names;
  for (const ExpectedTensor& tensor : expected) {
    const std::string name = prefix + tensor.key;
    expected_names.insert(name);
    if (!file.contains(name)) {
      problems.push_back("missing key '" + name + "' (" + (tensor.integer ? "I64, " : "") + "shape " +
                         to_string(tensor.shape) + ")");
      missing.push_back(tensor.key);
      continue;
    }
    const Entry& entry = file.entry(name);
    if (entry.shape != tensor.shape) {
      problems.push_back("key '" + name + "': the file has shape " + to_string(entry.shape) + " but " + wording.loader +
                         " expects " + to_string(tensor.shape) +
                         (tensor.shape_of.empty() ? "" : " (the shape of " + tensor.shape_of + ")"));
    } else if (!(tensor.integer ? is_integer(entry.dtype) : is_floating(entry.dtype))) {
      problems.push_back("key '" + name + "' is stored as " + dtype_name(entry.dtype) + ", not as " +
                         (tensor.integer ? "I64, I32 or I8" : "floating point (F32, F64, BF16 or F16)"));
    }
  }
  for (const std::string& name : file.names()) {
    if (name.starts_with(prefix) && expected_names.count(name) == 0) {
      problems.push_back(wording.unexpected + " '" + name + "'");
    }
  }
  // First: with a whole checkpoint's keys, the lines it explains run to hundreds.
  if (const std::optional<std::string> hint = where_missing_keys_are(file, prefix, expected, missing)) {
    problems.insert(problems.begin(), *hint);
  }
  return problems;
}

}  // namespace xgrad::safetensors
