#include "xgrad/framework/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/file_io.h"
#include "xgrad/framework/utf8.h"

namespace xgrad::safetensors {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  std::size_t size;  // bytes per element
};
constexpr DtypeInfo dtypes[] = {{Dtype::f32, "F32", 4}, {Dtype::f64, "F64", 8}, {Dtype::bf16, "BF16", 2},
                                {Dtype::f16, "F16", 2}, {Dtype::i64, "I64", 8}, {Dtype::i32, "I32", 4},
                                {Dtype::i8, "I8", 1},   {Dtype::boolean, "BOOL", 1}};

const DtypeInfo& info(Dtype dtype) {
  return *std::find_if(std::begin(dtypes), std::end(dtypes), [dtype](const DtypeInfo& i) { return i.dtype == dtype; });
}

std::size_t dtype_size(Dtype dtype) { return info(dtype).size; }

template <class... Parts>
[[noreturn]] void fail(const std::string& label, Parts&&... parts) {
  throw file_error(detail::message(label, ": ", std::forward<Parts>(parts)...));
}

Dtype parse_dtype(const std::string& label, const std::string& name, const nlohmann::json& value) {
  if (!value.is_string()) fail(label, "tensor '", name, "' has a dtype that is not a string");
  const std::string text = value.get<std::string>();
  for (const DtypeInfo& known : dtypes) {
    if (text == known.name) return known.dtype;
  }
  fail(label, "tensor '", name, "' has dtype ", text, "; supported are F32, F64, BF16, F16, I64, I32, I8 and BOOL");
}

// Reads a non-negative integer that fits in size_t.
std::size_t parse_size(const std::string& label, const std::string& name, const char* what, const nlohmann::json& value) {
  if (!value.is_number_unsigned()) fail(label, "tensor '", name, "': ", what, " must be non-negative integers");
  return value.get<std::size_t>();
}

Entry parse_entry(const std::string& label, const std::string& name, const nlohmann::json& spec, std::size_t data_size) {
  if (!spec.is_object()) fail(label, "tensor '", name, "' is not described by an object");
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!spec.contains(key)) fail(label, "tensor '", name, "' has no \"", key, "\"");
  }
  Entry entry{parse_dtype(label, name, spec["dtype"]), {}, 0, 0};
  const nlohmann::json& shape = spec["shape"];
  if (!shape.is_array()) fail(label, "tensor '", name, "': shape must be an array");
  // Count elements with overflow checks: a hostile shape must not wrap around to a small size.
  std::size_t elements = 1;
  for (const nlohmann::json& extent : shape) {
    const std::size_t e = parse_size(label, name, "shape entries", extent);
    if (e != 0 && elements > std::numeric_limits<std::size_t>::max() / e) {
      fail(label, "tensor '", name, "': shape ", shape.dump(), " has more elements than memory can address");
    }
    elements *= e;
    entry.shape.push_back(e);
  }
  const nlohmann::json& offsets = spec["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) fail(label, "tensor '", name, "': data_offsets must be [begin, end]");
  entry.begin = parse_size(label, name, "data_offsets", offsets[0]);
  entry.end = parse_size(label, name, "data_offsets", offsets[1]);
  if (entry.begin > entry.end || entry.end > data_size) {
    fail(label, "tensor '", name, "': data_offsets [", entry.begin, ", ", entry.end,
         "] do not lie inside the data section of ", data_size, " bytes");
  }
  const std::size_t size = dtype_size(entry.dtype);
  if (elements > std::numeric_limits<std::size_t>::max() / size || elements * size != entry.end - entry.begin) {
    fail(label, "tensor '", name, "': ", dtype_name(entry.dtype), " of shape ", to_string(entry.shape), " needs ",
         elements, " x ", size, " bytes but data_offsets span ", entry.end - entry.begin);
  }
  return entry;
}

}  // namespace

const char* dtype_name(Dtype dtype) { return info(dtype).name; }

bool is_floating(Dtype dtype) {
  return dtype == Dtype::f32 || dtype == Dtype::f64 || dtype == Dtype::bf16 || dtype == Dtype::f16;
}

bool is_integer(Dtype dtype) { return dtype == Dtype::i64 || dtype == Dtype::i32 || dtype == Dtype::i8; }

float f16_to_float(std::uint16_t bits) {
  const std::uint32_t sign = std::uint32_t{bits & 0x8000u} << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1F;
  const std::uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000 | (mantissa << 13));  // infinity, NaN
  if (exponent == 0) {  // zero or subnormal: mantissa x 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(magnitude));
  }
  return std::bit_cast<float>(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

std::uint16_t float_to_f16(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000);
  const std::uint32_t magnitude = bits & 0x7FFFFFFF;
  if (magnitude > 0x7F800000) return sign | 0x7E00;     // NaN
  if (magnitude >= 0x477FF000) return sign | 0x7C00;    // 65520 and up round to infinity
  if (magnitude >= 0x38800000) {                        // 2^-14 and up: a normal half
    // Round the 13 dropped mantissa bits to nearest even, then move the exponent's bias from
    // 127 to 15; a carry out of the mantissa raises the exponent.
    const std::uint32_t rounded = magnitude + 0xFFF + ((magnitude >> 13) & 1);
    return sign | static_cast<std::uint16_t>((rounded - ((127u - 15u) << 23)) >> 13);
  }
  if (magnitude <= 0x33000000) return sign;             // 2^-25 and below: zero (2^-25 is a tie)
  // A subnormal half counts units of 2^-24: the float's 24-bit significand shifted right.
  const std::uint32_t exponent = magnitude >> 23;
  const std::uint32_t significand = (magnitude & 0x7FFFFF) | 0x800000;
  const std::uint32_t shift = 126 - exponent;  // 14 to 24
  std::uint32_t units = significand >> shift;
  const std::uint32_t rest = significand & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rest > half || (rest == half && (units & 1))) ++units;  // may become 2^-14, the smallest normal
  return sign | static_cast<std::uint16_t>(units);
}

namespace {

// The header length that the first 8 bytes of `start` declare, checked against the size of
// the whole file before any of the header is read.
std::size_t header_length(std::string_view start, std::size_t file_size, const std::string& name) {
  if (file_size < 8) fail(name, "only ", file_size, " bytes; a safetensors file starts with an 8-byte header length");
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, start.data(), 8);
  if (header_size > max_header_size) {
    fail(name, "header length ", header_size, " exceeds the limit of ", max_header_size, " bytes");
  }
  if (header_size > file_size - 8) {
    fail(name, "header length ", header_size, " runs past the end of the ", file_size, "-byte file (truncated?)");
  }
  return static_cast<std::size_t>(header_size);
}

}  // namespace

File File::read(const std::string& path) {
  InputFile input(path, max_file_size);
  std::string bytes;
  input.read_into(bytes, std::min<std::size_t>(8, input.size()));
  const std::size_t header_size = header_length(bytes, input.size(), path);
  input.read_into(bytes, header_size);
  File file = from_header(std::string_view(bytes).substr(8), input.size() - 8 - header_size, path);
  // Only now that the header's tensors are known to cover the file exactly: the data.
  bytes.reserve(input.size());
  input.read_into(bytes, input.size() - bytes.size());
  file.set_bytes(std::move(bytes));
  return file;
}

File File::parse(std::string bytes, std::string label) {
  const std::size_t header_size = header_length(bytes, bytes.size(), label);
  File file = from_header(std::string_view(bytes).substr(8, header_size), bytes.size() - 8 - header_size, std::move(label));
  file.set_bytes(std::move(bytes));
  return file;
}

void File::set_bytes(std::string bytes) {
  bytes_ = std::move(bytes);
  for (const auto& [name, e] : entries_) {
    if (e.dtype != Dtype::boolean) continue;
    const char* source = data_of(e);
    for (std::size_t i = 0; i < e.end - e.begin; ++i) {
      const auto byte = static_cast<unsigned char>(source[i]);
      if (byte > 1) {
        fail(label_, "tensor '", name, "': BOOL element ", i, " (byte ", data_start_ + e.begin + i, " of the file) is ",
             static_cast<int>(byte), ", not 0 or 1");
      }
    }
  }
}

File File::from_header(std::string_view header_text, std::size_t data_size, std::string label) {
  File file;
  file.label_ = std::move(label);
  const std::string& name = file.label_;
  file.data_start_ = 8 + header_text.size();
  require_utf8(header_text, name + " (header)");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  } catch (const nlohmann::json::exception& e) {
    fail(name, "the header is not valid JSON (", e.what(), ")");
  }
  if (!header.is_object()) fail(name, "the header is not a JSON object");
  std::size_t data_end = 0;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(name, "__metadata__ is not an object");
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string()) fail(name, "metadata '", meta_key, "' is not a string");
        file.metadata_[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    const Entry& entry = file.entries_.emplace(key, parse_entry(name, key, value, data_size)).first->second;
    data_end = std::max(data_end, entry.end);
  }
  // As the reference implementation requires: the tensors end where the file ends, so that a
  // file padded with (or swapped for) gigabytes of something else is refused before it is read.
  if (data_end != data_size) {
    fail(name, "the tensors end at byte ", data_end, " of the data section, but the file holds ", data_size,
         " data bytes after the header");
  }
  // No two tensors may share bytes.
  std::vector<std::pair<const std::string*, const Entry*>> by_offset;
  for (const auto& [key, entry] : file.entries_) {
    if (entry.end > entry.begin) by_offset.emplace_back(&key, &entry);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
  for (std::size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i].second->begin < by_offset[i - 1].second->end) {
      fail(name, "tensors '", *by_offset[i - 1].first, "' and '", *by_offset[i].first, "' overlap in the data section");
    }
  }
  return file;
}

std::vector<std::string> File::names() const {
  std::vector<std::string> result;
  for (const auto& [key, entry] : entries_) result.push_back(key);
  return result;
}

const Entry& File::entry(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) fail(label_, "has no tensor '", name, "'");
  return it->second;
}

const Entry& File::entry_of(const std::string& name, bool (*accepts)(Dtype), const char* wanted) const {
  const Entry& e = entry(name);
  if (!accepts(e.dtype)) fail(label_, "tensor '", name, "' is ", dtype_name(e.dtype), ", not ", wanted);
  return e;
}

namespace {

constexpr const char* floating_dtypes = "a floating-point tensor (F32, F64, BF16 or F16)";
constexpr const char* integer_dtypes = "an integer tensor (I64, I32 or I8)";

// The dtype stored as T; BF16 and F16 are both stored as std::uint16_t (stores_as).
template <class T>
constexpr Dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return Dtype::f32;
  else if constexpr (std::is_same_v<T, double>) return Dtype::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return Dtype::i64;
  else if constexpr (std::is_same_v<T, std::int32_t>) return Dtype::i32;
  else if constexpr (std::is_same_v<T, std::int8_t>) return Dtype::i8;
  else if constexpr (std::is_same_v<T, bool>) return Dtype::boolean;
  else static_assert(sizeof(T) == 0, "no dtype is stored as T");
}
static_assert(sizeof(bool) == 1, "BOOL elements are single bytes");

template <class T>
bool stores_as(Dtype dtype) {
  if constexpr (std::is_same_v<T, std::uint16_t>) {
    return dtype == Dtype::bf16 || dtype == Dtype::f16;
  } else {
    return dtype == dtype_of<T>();
  }
}

// `count` elements stored as Stored at `source`, each converted by `convert` and cast to T.
template <class Stored, class T, class Convert>
void convert_into(const char* source, std::size_t count, T* out, Convert convert) {
  for (std::size_t i = 0; i < count; ++i) {
    Stored v;
    std::memcpy(&v, source + sizeof(Stored) * i, sizeof(Stored));
    out[i] = static_cast<T>(convert(v));
  }
}

constexpr auto unchanged = [](auto v) { return v; };

// Index of the first element whose exponent bits (`exponent_mask`) are all set, NaN or infinity.
template <class Stored>
std::optional<std::size_t> first_with_full_exponent(const char* source, std::size_t count, Stored exponent_mask) {
  for (std::size_t i = 0; i < count; ++i) {
    Stored v;
    std::memcpy(&v, source + sizeof(Stored) * i, sizeof(Stored));
    if ((v & exponent_mask) == exponent_mask) return i;
  }
  return std::nullopt;
}

}  // namespace

template <class T>
Array<T> File::floats(const std::string& name) const {
  const Entry& e = entry_of(name, is_floating, floating_dtypes);
  Array<T> result = Array<T>::from_shape(e.shape);
  const char* source = data_of(e);
  switch (e.dtype) {
    case Dtype::f32: convert_into<float>(source, result.size(), result.data(), unchanged); break;
    case Dtype::f64: convert_into<double>(source, result.size(), result.data(), unchanged); break;
    case Dtype::bf16: convert_into<std::uint16_t>(source, result.size(), result.data(), bf16_to_float); break;
    case Dtype::f16: convert_into<std::uint16_t>(source, result.size(), result.data(), f16_to_float); break;
    default: break;  // not floating point: refused above
  }
  return result;
}

Indices File::integers(const std::string& name) const {
  const Entry& e = entry_of(name, is_integer, integer_dtypes);
  Indices result = Indices::from_shape(e.shape);
  const char* source = data_of(e);
  switch (e.dtype) {
    case Dtype::i64: convert_into<std::int64_t>(source, result.size(), result.data(), unchanged); break;
    case Dtype::i32: convert_into<std::int32_t>(source, result.size(), result.data(), unchanged); break;
    case Dtype::i8: convert_into<std::int8_t>(source, result.size(), result.data(), unchanged); break;
    default: break;  // not an integer: refused above
  }
  return result;
}

template <class T>
Array<T> File::stored(const std::string& name) const {
  const char* wanted = "BF16 or F16";
  if constexpr (!std::is_same_v<T, std::uint16_t>) wanted = dtype_name(dtype_of<T>());
  const Entry& e = entry_of(name, stores_as<T>, wanted);
  Array<T> result = Array<T>::from_shape(e.shape);
  std::memcpy(result.data(), data_of(e), e.end - e.begin);
  return result;
}

std::optional<std::size_t> File::first_non_finite(const std::string& name) const {
  const Entry& e = entry_of(name, is_floating, floating_dtypes);
  const char* source = data_of(e);
  const std::size_t count = (e.end - e.begin) / dtype_size(e.dtype);
  switch (e.dtype) {
    case Dtype::f32: return first_with_full_exponent<std::uint32_t>(source, count, 0x7F800000);
    case Dtype::f64: return first_with_full_exponent<std::uint64_t>(source, count, 0x7FF0000000000000);
    case Dtype::bf16: return first_with_full_exponent<std::uint16_t>(source, count, 0x7F80);
    case Dtype::f16: return first_with_full_exponent<std::uint16_t>(source, count, 0x7C00);
    default: return std::nullopt;  // not floating point: refused above
  }
}

template Array<float> File::floats<float>(const std::string&) const;
template Array<double> File::floats<double>(const std::string&) const;
template Array<float> File::stored<float>(const std::string&) const;
template Array<double> File::stored<double>(const std::string&) const;
template Array<std::uint16_t> File::stored<std::uint16_t>(const std::string&) const;
template Array<std::int64_t> File::stored<std::int64_t>(const std::string&) const;
template Array<std::int32_t> File::stored<std::int32_t>(const std::string&) const;
template Array<std::int8_t> File::stored<std::int8_t>(const std::string&) const;
template Array<bool> File::stored<bool>(const std::string&) const;

void Writer::add_bytes(const std::string& name, Dtype dtype, const Shape& shape, std::string bytes) {
  if (name.empty() || name == "__metadata__") throw std::invalid_argument("safetensors: invalid tensor name '" + name + "'");
  if (!tensors_.emplace(name, Pending{dtype, shape, std::move(bytes)}).second) {
    throw std::invalid_argument("safetensors: tensor '" + name + "' added twice");
  }
}

namespace {
// The bytes of `values`, each converted by `convert` and stored as Stored.
template <class Stored, class T, class Convert>
std::string converted_bytes(const Array<T>& values, Convert convert) {
  std::string bytes(values.size() * sizeof(Stored), '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    const Stored v = convert(values.data()[i]);
    std::memcpy(bytes.data() + sizeof(Stored) * i, &v, sizeof(Stored));
  }
  return bytes;
}
}  // namespace

template <class T>
void Writer::add_floats(const std::string& name, const Array<T>& values, Dtype stored_as) {
  // Doubles become BF16 or F16 through float, as PyTorch's casts round them.
  const auto through_float = [](auto convert) { return [convert](T v) { return convert(static_cast<float>(v)); }; };
  std::string bytes;
  switch (stored_as) {
    case Dtype::f32: bytes = converted_bytes<float>(values, [](T v) { return static_cast<float>(v); }); break;
    case Dtype::f64: bytes = converted_bytes<double>(values, [](T v) { return static_cast<double>(v); }); break;
    case Dtype::bf16: bytes = converted_bytes<std::uint16_t>(values, through_float(float_to_bf16)); break;
    case Dtype::f16: bytes = converted_bytes<std::uint16_t>(values, through_float(float_to_f16)); break;
    default:
      throw std::invalid_argument("safetensors: tensor '" + name + "' cannot hold floating-point values as " +
                                  dtype_name(stored_as) + "; they are stored as F32, F64, BF16 or F16");
  }
  add_bytes(name, stored_as, values.shape(), std::move(bytes));
}

template <class T>
void Writer::add_as_stored(const std::string& name, const Array<T>& values) {
  add_bytes(name, dtype_of<T>(), values.shape(),
            std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T)));
}

void Writer::add(const std::string& name, const Array<float>& values, Dtype stored_as) {
  add_floats(name, values, stored_as);
}
void Writer::add(const std::string& name, const Array<double>& values, Dtype stored_as) {
  add_floats(name, values, stored_as);
}
void Writer::add(const std::string& name, const Indices& values) { add_as_stored(name, values); }
void Writer::add(const std::string& name, const Array<std::int32_t>& values) { add_as_stored(name, values); }
void Writer::add(const std::string& name, const Array<std::int8_t>& values) { add_as_stored(name, values); }
void Writer::add(const std::string& name, const Mask& values) { add_as_stored(name, values); }

void Writer::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

std::string Writer::serialize() const {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::size_t offset = 0;
  for (const auto& [name, tensor] : tensors_) {
    header[name] = {{"dtype", dtype_name(tensor.dtype)},
                    {"shape", std::vector<std::size_t>(tensor.shape.begin(), tensor.shape.end())},
                    {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data section to 8 bytes, as the reference writer does
  const std::uint64_t header_size = text.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &header_size, 8);
  out += text;
  for (const auto& [name, tensor] : tensors_) out += tensor.bytes;
  return out;
}

void Writer::write(const std::string& path) const { write_file_atomically(path, serialize()); }

}  // namespace xgrad::safetensors
