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

std::size_t dtype_size(Dtype dtype) { return dtype == Dtype::f32 ? 4 : 8; }

template <class... Parts>
[[noreturn]] void fail(const std::string& label, Parts&&... parts) {
  throw file_error(detail::message(label, ": ", std::forward<Parts>(parts)...));
}

Dtype parse_dtype(const std::string& label, const std::string& name, const nlohmann::json& value) {
  if (!value.is_string()) fail(label, "tensor '", name, "' has a dtype that is not a string");
  const std::string text = value.get<std::string>();
  if (text == "F32") return Dtype::f32;
  if (text == "F64") return Dtype::f64;
  if (text == "I64") return Dtype::i64;
  fail(label, "tensor '", name, "' has dtype ", text, "; supported are F32, F64 and I64");
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

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::f32: return "F32";
    case Dtype::f64: return "F64";
    case Dtype::i64: return "I64";
  }
  return "?";
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
  file.bytes_ = std::move(bytes);
  return file;
}

File File::parse(std::string bytes, std::string label) {
  const std::size_t header_size = header_length(bytes, bytes.size(), label);
  File file = from_header(std::string_view(bytes).substr(8, header_size), bytes.size() - 8 - header_size, std::move(label));
  file.bytes_ = std::move(bytes);
  return file;
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

template <class T>
Array<T> File::floats(const std::string& name) const {
  const Entry& e = entry(name);
  Array<T> result = Array<T>::from_shape(e.shape);
  const char* source = bytes_.data() + data_start_ + e.begin;
  if (e.dtype == Dtype::i64) fail(label_, "tensor '", name, "' is I64, not a floating-point tensor");
  if ((e.dtype == Dtype::f32) == std::is_same_v<T, float>) {
    std::memcpy(result.data(), source, e.end - e.begin);
  } else if (e.dtype == Dtype::f32) {
    for (std::size_t i = 0; i < result.size(); ++i) {
      float v;
      std::memcpy(&v, source + 4 * i, 4);
      result.data()[i] = static_cast<T>(v);
    }
  } else {
    for (std::size_t i = 0; i < result.size(); ++i) {
      double v;
      std::memcpy(&v, source + 8 * i, 8);
      result.data()[i] = static_cast<T>(v);
    }
  }
  return result;
}

Indices File::integers(const std::string& name) const {
  const Entry& e = entry(name);
  if (e.dtype != Dtype::i64) fail(label_, "tensor '", name, "' is ", dtype_name(e.dtype), ", not I64");
  Indices result = Indices::from_shape(e.shape);
  std::memcpy(result.data(), bytes_.data() + data_start_ + e.begin, e.end - e.begin);
  return result;
}

namespace {
template <class Stored>
std::optional<std::size_t> first_non_finite_of(const char* source, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    Stored v;
    std::memcpy(&v, source + sizeof(Stored) * i, sizeof(Stored));
    if (!std::isfinite(v)) return i;
  }
  return std::nullopt;
}
}  // namespace

std::optional<std::size_t> File::first_non_finite(const std::string& name) const {
  const Entry& e = entry(name);
  const char* source = bytes_.data() + data_start_ + e.begin;
  const std::size_t count = (e.end - e.begin) / dtype_size(e.dtype);
  switch (e.dtype) {
    case Dtype::f32: return first_non_finite_of<float>(source, count);
    case Dtype::f64: return first_non_finite_of<double>(source, count);
    case Dtype::i64: break;
  }
  fail(label_, "tensor '", name, "' is I64, not a floating-point tensor");
}

template Array<float> File::floats<float>(const std::string&) const;
template Array<double> File::floats<double>(const std::string&) const;

void Writer::add_bytes(const std::string& name, Dtype dtype, const Shape& shape, const void* data, std::size_t size) {
  if (name.empty() || name == "__metadata__") throw std::invalid_argument("safetensors: invalid tensor name '" + name + "'");
  if (!tensors_.emplace(name, Pending{dtype, shape, std::string(static_cast<const char*>(data), size)}).second) {
    throw std::invalid_argument("safetensors: tensor '" + name + "' added twice");
  }
}

void Writer::add(const std::string& name, const Array<float>& values) {
  add_bytes(name, Dtype::f32, values.shape(), values.data(), values.size() * 4);
}
void Writer::add(const std::string& name, const Array<double>& values) {
  add_bytes(name, Dtype::f64, values.shape(), values.data(), values.size() * 8);
}
void Writer::add(const std::string& name, const Indices& values) {
  add_bytes(name, Dtype::i64, values.shape(), values.data(), values.size() * 8);
}

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
