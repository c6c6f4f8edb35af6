#pragma once
// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header mapping each name to its dtype, shape and byte
// range, then the raw little-endian data. Files written by PyTorch's tooling load here and
// the other way round.
//
// Reading validates everything before any value is used: that the path is a regular file
// under max_file_size, the header length against the file size and a cap, the JSON, every
// dtype, that each byte range lies inside the data section, matches dtype x shape, overlaps
// no other, and that the tensors end where the file ends. File::read checks the header before
// it reads (and allocates for) the data. Each failure is a file_error naming the file,
// the tensor and the problem.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "xgrad/framework/tensor.h"

namespace xgrad::safetensors {

enum class Dtype { f32, f64, i64 };

const char* dtype_name(Dtype dtype);  // "F32", "F64", "I64"

// Headers larger than this are refused (the reference implementation's limit).
inline constexpr std::size_t max_header_size = 100'000'000;
// Files larger than this are refused unread: a checkpoint of the largest model the
// configurations allow (5e8 parameters with Adam's two moments, in F32) takes 6 GB.
inline constexpr std::size_t max_file_size = std::size_t{16} << 30;

struct Entry {
  Dtype dtype;
  Shape shape;
  std::size_t begin;  // byte offsets within the data section
  std::size_t end;
};

// A validated file, held in memory.
class File {
 public:
  static File read(const std::string& path);
  // Parses bytes already in memory; `label` stands for the file name in messages.
  static File parse(std::string bytes, std::string label);

  const std::string& label() const noexcept { return label_; }
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  // Tensor names in sorted order.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  // file_error naming the file and `name` when it is absent.
  const Entry& entry(const std::string& name) const;

  // The values of a floating-point tensor, converted to T when stored as the other width.
  template <class T>
  Array<T> floats(const std::string& name) const;
  // The values of an I64 tensor.
  Indices integers(const std::string& name) const;
  // The position of the first NaN or infinity of a floating-point tensor, read from the
  // stored bytes without converting the tensor; nullopt when every value is finite.
  std::optional<std::size_t> first_non_finite(const std::string& name) const;

 private:
  // Parses the JSON header of a file whose data section holds `data_size` bytes.
  static File from_header(std::string_view header, std::size_t data_size, std::string label);

  std::string label_;
  std::string bytes_;
  std::size_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Collects tensors and metadata, then writes them as one file.
class Writer {
 public:
  void add(const std::string& name, const Array<float>& values);
  void add(const std::string& name, const Array<double>& values);
  void add(const std::string& name, const Indices& values);
  void set_metadata(const std::string& key, const std::string& value);

  std::string serialize() const;
  // Atomic: a crash leaves the previous file or the complete new one (write_file_atomically).
  void write(const std::string& path) const;

 private:
  struct Pending {
    Dtype dtype;
    Shape shape;
    std::string bytes;
  };
  void add_bytes(const std::string& name, Dtype dtype, const Shape& shape, const void* data, std::size_t size);
  std::map<std::string, Pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace xgrad::safetensors
