#pragma once
// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header mapping each name to its dtype, shape and byte
// range, then the raw little-endian data. Files written by PyTorch's tooling load here and
// the other way round.
//
// Reading validates everything before any value is used: that the path is a regular file
// under max_file_size, the header length against the file size and a cap, the JSON, every
// dtype, that each byte range lies inside the data section, matches dtype x shape, overlaps
// no other, that the tensors end where the file ends, and that every BOOL byte is 0 or 1.
// File::read checks the header before it reads (and allocates for) the data. Each failure is
// a file_error naming the file, the tensor and the problem.
//
// The dtypes are those of PyTorch checkpoints and masks: F32, F64, BF16 and F16 (floating
// point), I64, I32 and I8 (integers), and BOOL. BF16 and F16 convert to float exactly
// (NaN, infinities, subnormals and -0 included) and from float as PyTorch's
// tensor.to(torch.bfloat16) and .to(torch.float16) round.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "xgrad/framework/tensor.h"

namespace xgrad::safetensors {

enum class Dtype { f32, f64, bf16, f16, i64, i32, i8, boolean };

const char* dtype_name(Dtype dtype);  // "F32", "F64", "BF16", "F16", "I64", "I32", "I8", "BOOL"
// F32, F64, BF16 and F16: what File::floats reads and a module's weights load from.
bool is_floating(Dtype dtype);
// I64, I32 and I8: what File::integers reads.
bool is_integer(Dtype dtype);

// Conversions between float and the bit patterns of bfloat16 and IEEE half precision.
// To float: exact, NaN payloads kept. From float: round to nearest, ties to even, as
// PyTorch's c10::BFloat16 and c10::Half do; too large for F16 gives an infinity, a NaN stays
// a NaN (BF16 0x7FC0, as c10::BFloat16 writes it; F16 0x7E00 with the NaN's sign, as
// c10::Half does). PyTorch's AVX2 cast writes a BF16 NaN as 0xFFFF instead: also a NaN.
// The bfloat16 pair is inline, so that loops over many values (blas.cpp's bf16 products)
// vectorise it.
inline float bf16_to_float(std::uint16_t bits) { return std::bit_cast<float>(std::uint32_t{bits} << 16); }
inline std::uint16_t float_to_bf16(float value) {
  if (value != value) return 0x7FC0;  // NaN
  const auto bits = std::bit_cast<std::uint32_t>(value);
  // Adding just under half of the dropped part's unit, plus the kept part's lowest bit, rounds
  // ties to even; a carry out of the mantissa raises the exponent (to infinity past the largest).
  return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}
float f16_to_float(std::uint16_t bits);
std::uint16_t float_to_f16(float value);

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

  // The values of a floating-point tensor (F32, F64, BF16 or F16), converted to T when
  // stored otherwise: exactly, but for F64 read as float. file_error naming the tensor, its
  // dtype and these for another dtype.
  template <class T>
  Array<T> floats(const std::string& name) const;
  // The values of an integer tensor (I64, I32 or I8), widened to int64.
  Indices integers(const std::string& name) const;
  // The values as stored, without conversion, for T the dtype's own: float (F32), double
  // (F64), std::uint16_t (the bit patterns of BF16 or F16), std::int64_t (I64),
  // std::int32_t (I32), std::int8_t (I8) or bool (BOOL, so a mask file gives a Mask).
  // file_error naming the tensor and both dtypes for another dtype.
  template <class T>
  Array<T> stored(const std::string& name) const;
  // The position of the first NaN or infinity of a floating-point tensor, read from the
  // stored bytes without converting the tensor; nullopt when every value is finite.
  std::optional<std::size_t> first_non_finite(const std::string& name) const;

 private:
  // Parses the JSON header of a file whose data section holds `data_size` bytes.
  static File from_header(std::string_view header, std::size_t data_size, std::string label);
  // Takes the whole file's bytes once the header has been checked against them, and checks
  // what the header cannot: that every BOOL byte is 0 or 1.
  void set_bytes(std::string bytes);
  // The entry of tensor `name`, after a file_error naming the file, the tensor, its dtype and
  // `wanted` (the accepted dtypes in words) unless `accepts` its dtype.
  const Entry& entry_of(const std::string& name, bool (*accepts)(Dtype), const char* wanted) const;
  // The first byte of an entry's data.
  const char* data_of(const Entry& entry) const { return bytes_.data() + data_start_ + entry.begin; }

  std::string label_;
  std::string bytes_;
  std::size_t data_start_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Collects tensors and metadata, then writes them as one file.
class Writer {
 public:
  // Floating-point values stored as `stored_as`: F32, F64, BF16 or F16 (rounded as PyTorch
  // rounds; doubles go through float for BF16 and F16, as PyTorch's casts do).
  // std::invalid_argument naming the tensor for another dtype.
  void add(const std::string& name, const Array<float>& values, Dtype stored_as = Dtype::f32);
  void add(const std::string& name, const Array<double>& values, Dtype stored_as = Dtype::f64);
  void add(const std::string& name, const Indices& values);                 // I64
  void add(const std::string& name, const Array<std::int32_t>& values);     // I32
  void add(const std::string& name, const Array<std::int8_t>& values);      // I8
  void add(const std::string& name, const Mask& values);                    // BOOL
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
  void add_bytes(const std::string& name, Dtype dtype, const Shape& shape, std::string bytes);
  template <class T>
  void add_floats(const std::string& name, const Array<T>& values, Dtype stored_as);
  template <class T>
  void add_as_stored(const std::string& name, const Array<T>& values);
  std::map<std::string, Pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace xgrad::safetensors
