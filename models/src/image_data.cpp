#include "xgrad/models/image_data.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/file_io.h"

namespace xgrad::models {
namespace {

constexpr std::uint8_t idx_unsigned_byte = 0x08;
// Values inflated or copied at a time: the data grow as they arrive, never to what a header
// claims before the file has shown it holds that much.
constexpr std::size_t read_chunk = std::size_t{1} << 20;

std::string hex(std::uint32_t value) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text = "0x00000000";
  for (std::size_t i = 0; i < 8; ++i) text[9 - i] = digits[(value >> (4 * i)) & 0xf];
  return text;
}

// The bytes of an IDX file in order, inflated on the way when they are gzip-compressed.
class IdxStream {
 public:
  IdxStream(std::string_view bytes, const std::string& label) : bytes_(bytes), label_(label) {
    compressed_ = bytes.size() >= 2 && static_cast<std::uint8_t>(bytes[0]) == 0x1f &&
                  static_cast<std::uint8_t>(bytes[1]) == 0x8b;
    if (!compressed_) return;
    std::memset(&zlib_, 0, sizeof zlib_);
    if (inflateInit2(&zlib_, 16 + MAX_WBITS) != Z_OK) {  // 16: a gzip header and trailer around the data
      throw file_error(detail::message(label_, ": cannot start gzip decompression (zlib: out of memory)"));
    }
  }
  ~IdxStream() {
    if (compressed_) inflateEnd(&zlib_);
  }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;

  bool compressed() const noexcept { return compressed_; }
  // Bytes left in a plain file (what a compressed one holds is known only by inflating it).
  std::size_t plain_remaining() const noexcept { return bytes_.size() - position_; }

  // Writes up to `count` next bytes to `out`; fewer only where the data end.
  std::size_t read(std::uint8_t* out, std::size_t count) {
    if (!compressed_) {
      const std::size_t n = std::min(count, plain_remaining());
      std::memcpy(out, bytes_.data() + position_, n);
      position_ += n;
      return n;
    }
    std::size_t produced = 0;
    while (produced < count && !stream_ended_) {
      const std::size_t input_left = bytes_.size() - position_;
      zlib_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes_.data() + position_));
      zlib_.avail_in = static_cast<uInt>(std::min<std::size_t>(input_left, std::numeric_limits<uInt>::max()));
      zlib_.next_out = out + produced;
      zlib_.avail_out = static_cast<uInt>(std::min<std::size_t>(count - produced, std::numeric_limits<uInt>::max()));
      const uInt offered_in = zlib_.avail_in, offered_out = zlib_.avail_out;
      const int status = inflate(&zlib_, Z_NO_FLUSH);
      position_ += offered_in - zlib_.avail_in;
      produced += offered_out - zlib_.avail_out;
      if (status == Z_STREAM_END) {
        stream_ended_ = true;
        if (position_ != bytes_.size()) {
          throw file_error(detail::message(label_, ": ", bytes_.size() - position_,
                                           " bytes follow the end of the gzip stream; expected none"));
        }
      } else if (status == Z_BUF_ERROR && position_ == bytes_.size()) {
        throw file_error(detail::message(label_, ": the gzip stream is truncated (it ends before its trailer)"));
      } else if (status != Z_OK && status != Z_BUF_ERROR) {
        throw file_error(detail::message(label_, ": the gzip data are corrupt (zlib: ",
                                         zlib_.msg != nullptr ? zlib_.msg : "error " + std::to_string(status), ")"));
      }
    }
    return produced;
  }

 private:
  std::string_view bytes_;
  const std::string& label_;
  std::size_t position_ = 0;
  bool compressed_ = false;
  bool stream_ended_ = false;
  z_stream zlib_;
};

std::uint32_t big_endian(const std::uint8_t* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

// What dimension `axis` of an IDX array of `rank` dimensions counts, for messages.
std::string dimension_name(std::size_t rank, std::size_t axis) {
  static const char* const image_axes[] = {"count", "rows", "columns"};
  std::string name = detail::message("dimension ", axis);
  if (rank == 3) return name + " (" + image_axes[axis] + ")";
  if (rank == 1) return name + " (count)";
  return name;
}

}  // namespace

IdxArray parse_idx(std::string_view bytes, const std::string& label, std::size_t rank, std::size_t max_values) {
  IdxStream stream(bytes, label);
  std::uint8_t magic_bytes[4];
  const std::size_t magic_read = stream.read(magic_bytes, 4);
  if (magic_read < 4) {
    throw file_error(detail::message(label, ": the file ends after ", magic_read,
                                     " bytes; expected an IDX magic number of 4 bytes"));
  }
  const std::uint32_t magic = big_endian(magic_bytes);
  const std::uint32_t expected_magic = (std::uint32_t{idx_unsigned_byte} << 8) | static_cast<std::uint32_t>(rank);
  if (magic_bytes[0] != 0 || magic_bytes[1] != 0) {
    throw file_error(detail::message(label, ": magic number ", hex(magic),
                                     " is not an IDX magic number; expected ", hex(expected_magic)));
  }
  if (magic_bytes[2] != idx_unsigned_byte) {
    throw file_error(detail::message(label, ": magic number ", hex(magic), " declares data type ",
                                     hex(magic_bytes[2]).substr(8), "; expected 08 (unsigned bytes), magic number ",
                                     hex(expected_magic)));
  }
  if (magic_bytes[3] != rank) {
    throw file_error(detail::message(label, ": magic number ", hex(magic), " declares ", int(magic_bytes[3]),
                                     " dimensions; expected ", rank, ", magic number ", hex(expected_magic)));
  }
  std::vector<std::uint8_t> header(4 * rank);
  const std::size_t header_read = stream.read(header.data(), header.size());
  if (header_read < header.size()) {
    throw file_error(detail::message(label, ": the header ends after ", header_read, " of the ", header.size(),
                                     " bytes of its ", rank, " dimensions"));
  }
  IdxArray array;
  std::size_t count = 1;
  for (std::size_t axis = 0; axis < rank; ++axis) {
    const std::uint32_t extent = big_endian(header.data() + 4 * axis);
    if (extent == 0) {
      throw file_error(detail::message(label, ": ", dimension_name(rank, axis), " is 0; expected a positive extent"));
    }
    array.dimensions.push_back(extent);
    // Checked per factor: a product of 32-bit extents can overflow 64 bits.
    if (count > max_values / extent) {
      throw file_error(detail::message(label, ": dimensions ", array.dimensions, (axis + 1 < rank ? "..." : ""),
                                       " make more than ", max_values, " values, the most this reader accepts"));
    }
    count *= extent;
  }
  const auto wrong_length = [&](const std::string& held) {
    return file_error(detail::message(label, ": dimensions ", array.dimensions, " declare ", count,
                                      " values of one byte, but the data hold ", held));
  };
  if (!stream.compressed() && stream.plain_remaining() != count) {
    throw wrong_length(detail::message(stream.plain_remaining(), " bytes"));
  }
  while (array.values.size() < count) {
    const std::size_t held = array.values.size();
    const std::size_t wanted = std::min(read_chunk, count - held);
    array.values.resize(held + wanted);
    const std::size_t got = stream.read(array.values.data() + held, wanted);
    if (got < wanted) throw wrong_length(detail::message(held + got, " bytes"));
  }
  std::uint8_t extra = 0;
  if (stream.read(&extra, 1) != 0) throw wrong_length("more bytes");
  return array;
}

IdxArray read_idx(const std::string& path, std::size_t rank, std::size_t max_values) {
  return parse_idx(read_file(path), path, rank, max_values);
}

LabelledImages read_labelled_images(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx(images_path, 3);
  const IdxArray labels = read_idx(labels_path, 1);
  if (images.dimensions[0] != labels.dimensions[0]) {
    throw file_error(detail::message(images_path, " holds ", images.dimensions[0], " images but ", labels_path,
                                     " holds ", labels.dimensions[0], " labels; expected one label per image"));
  }
  LabelledImages result;
  result.height = images.dimensions[1];
  result.width = images.dimensions[2];
  result.pixels = std::move(images.values);
  result.labels.assign(labels.values.begin(), labels.values.end());
  return result;
}

namespace {
void check_rows(const LabelledImages& images, const Batch& rows) {
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] >= images.size()) {
      throw index_error(detail::message("image batch: row ", rows[i], " at position ", i, " is outside the ",
                                        images.size(), " images"));
    }
  }
}
}  // namespace

template <class T>
Array<T> image_batch(const LabelledImages& images, const Batch& rows) {
  check_rows(images, rows);
  const std::size_t pixels = images.height * images.width;
  Array<T> batch = Array<T>::from_shape({rows.size(), 1, images.height, images.width});
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::uint8_t* from = images.pixels.data() + rows[i] * pixels;
    T* to = batch.data() + i * pixels;
    for (std::size_t p = 0; p < pixels; ++p) to[p] = static_cast<T>(from[p]) / T(255);
  }
  return batch;
}

Indices label_batch(const LabelledImages& images, const Batch& rows) {
  check_rows(images, rows);
  Indices labels = Indices::from_shape({rows.size()});
  for (std::size_t i = 0; i < rows.size(); ++i) labels(i) = images.labels[rows[i]];
  return labels;
}

std::optional<FashionMnistFiles> fashion_mnist_files(const std::filesystem::path& directory) {
  const auto locate = [&](const std::string& name) -> std::optional<std::string> {
    for (const std::string& candidate : {name + ".gz", name}) {
      std::error_code error;
      if (std::filesystem::is_regular_file(directory / candidate, error)) return (directory / candidate).string();
    }
    return std::nullopt;
  };
  auto train_images = locate("train-images-idx3-ubyte"), train_labels = locate("train-labels-idx1-ubyte");
  auto test_images = locate("t10k-images-idx3-ubyte"), test_labels = locate("t10k-labels-idx1-ubyte");
  if (!train_images || !train_labels || !test_images || !test_labels) return std::nullopt;
  return FashionMnistFiles{*train_images, *train_labels, *test_images, *test_labels};
}

std::optional<FashionMnistFiles> find_fashion_mnist() {
  if (const char* data = std::getenv("XGRAD_DATA"); data != nullptr && *data != '\0') {
    if (auto files = fashion_mnist_files(std::filesystem::path(data) / "fashion-mnist")) return files;
  }
  return fashion_mnist_files(std::filesystem::path(debian_fashion_mnist_directory));
}

template Array<float> image_batch(const LabelledImages&, const Batch&);
template Array<double> image_batch(const LabelledImages&, const Batch&);

}  // namespace xgrad::models
