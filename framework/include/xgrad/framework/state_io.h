#pragma once
// Saved state as metadata and tensors under a prefix of a shared safetensors file, so that a
// model, an optimizer, its schedulers and a training loop's progress share one checkpoint.
// Prefixes of objects sharing a file must not be prefixes of one another: a reader refuses
// any key under its prefix that it does not know.

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/framework/safetensors.h"
#include "xgrad/framework/tensor_check.h"

namespace xgrad::optim {

// Writes one object's state under a prefix of a shared safetensors::Writer. Numbers go to
// metadata as text that reads back to the same bits.
class StateWriter {
 public:
  StateWriter(safetensors::Writer& writer, std::string prefix) : writer_(writer), prefix_(std::move(prefix)) {}

  void text(const std::string& key, const std::string& value);
  void real(const std::string& key, double value);
  void integer(const std::string& key, std::int64_t value);
  void boolean(const std::string& key, bool value);
  template <class A>
  void tensor(const std::string& key, const A& values) {
    writer_.add(prefix_ + key, values);
  }

 private:
  safetensors::Writer& writer_;
  std::string prefix_;
};

// Reads what a StateWriter wrote under the same prefix, remembering which keys were read so
// that unknown ones can be refused. Each failure is a file_error naming the file and the key.
class StateReader {
 public:
  StateReader(const safetensors::File& file, std::string prefix) : file_(file), prefix_(std::move(prefix)) {}

  const safetensors::File& file() const noexcept { return file_; }
  // The key as it appears in the file.
  std::string full_key(const std::string& key) const { return prefix_ + key; }

  std::string text(const std::string& key);
  double real(const std::string& key);
  std::int64_t integer(const std::string& key);
  // An integer >= 0.
  std::int64_t count(const std::string& key);
  bool boolean(const std::string& key);
  // Checks that "type" names `type`, the type of the `kind` ("optimizer", ...) being loaded.
  void expect_type(const std::string& type, const char* kind);
  // Every way the tensors under the prefix differ from `expected` (keys without the prefix),
  // one line each as safetensors::tensor_mismatches words them, with `loader` ("this Adam
  // optimizer") expecting the shapes and the other tensors listed as unknown keys. Every
  // tensor under the prefix counts as read.
  std::vector<std::string> check_tensors(const std::vector<safetensors::ExpectedTensor>& expected,
                                         const std::string& loader);
  // Runs `check`, turning the std::invalid_argument it throws for a bad option value into a
  // file_error naming the file: saved options are validated like constructor arguments.
  void validate(const std::function<void()>& check) const;
  // The tensors and metadata keys under the prefix that were not read, as full keys.
  std::vector<std::string> unread_keys() const;
  // file_error naming every unread key under the prefix.
  void refuse_unread_keys() const;

 private:
  const std::string& metadata(const std::string& key);

  const safetensors::File& file_;
  std::string prefix_;
  std::set<std::string> read_;
};

}  // namespace xgrad::optim
