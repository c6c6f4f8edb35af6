// The IDX reader: plain and gzip-compressed files, every malformed header and data length with
// its message, the bound on what a header or a gzip bomb can make it allocate, batches, where
// Fashion-MNIST is found, and the real files when Debian's dataset-fashion-mnist is installed.
#define BOOST_TEST_MODULE image_data
#include <zlib.h>

#include <cstdlib>
#include <optional>

#include "xgrad/models/image_data.h"
#include "idx_files.h"
#include "xgrad_test.h"

using namespace xgrad;
using namespace xgrad::models;
using xgrad::testing::check_close;
using xgrad::testing::error_message;
using xgrad::testing::idx;
using xgrad::testing::TempDir;

namespace {

std::string counting_bytes(std::size_t count) {
  std::string values(count, '\0');
  for (std::size_t i = 0; i < count; ++i) values[i] = char((i * 37) % 256);
  return values;
}

// `bytes` as a gzip file (zlib's deflate with a gzip header and trailer).
std::string gzip(const std::string& bytes) {
  z_stream stream{};
  BOOST_TEST_REQUIRE(deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string compressed(deflateBound(&stream, static_cast<uLong>(bytes.size())) + 32, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(compressed.data());
  stream.avail_out = static_cast<uInt>(compressed.size());
  BOOST_TEST_REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  compressed.resize(stream.total_out);
  deflateEnd(&stream);
  return compressed;
}

const std::string images_3x2x4 = idx(idx_images_magic, {3, 2, 4}, counting_bytes(24));
const std::string labels_3 = idx(idx_labels_magic, {3}, std::string{char(7), char(0), char(9)});

// The message parse_idx gives for `bytes` read as images (or with `rank` dimensions).
std::string refusal(const std::string& bytes, std::size_t rank = 3, std::size_t max_values = default_max_idx_values) {
  return error_message<file_error>([&] { parse_idx(bytes, "f.idx", rank, max_values); });
}

// Sets XGRAD_DATA for the scope, then restores what it was.
class ScopedDataDirectory {
 public:
  explicit ScopedDataDirectory(const std::string& value) {
    if (const char* old = std::getenv("XGRAD_DATA")) previous_ = old;
    ::setenv("XGRAD_DATA", value.c_str(), 1);
  }
  ~ScopedDataDirectory() {
    if (previous_) {
      ::setenv("XGRAD_DATA", previous_->c_str(), 1);
    } else {
      ::unsetenv("XGRAD_DATA");
    }
  }
  ScopedDataDirectory(const ScopedDataDirectory&) = delete;
  ScopedDataDirectory& operator=(const ScopedDataDirectory&) = delete;

 private:
  std::optional<std::string> previous_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(reads_plain_and_compressed_files) {
  TempDir dir;
  for (const bool compressed : {false, true}) {
    BOOST_TEST_CONTEXT("compressed " << compressed) {
      const auto contents = [&](const std::string& bytes) { return compressed ? gzip(bytes) : bytes; };
      const LabelledImages data = read_labelled_images(dir.write("images", contents(images_3x2x4)),
                                                       dir.write("labels", contents(labels_3)));
      BOOST_TEST(data.size() == 3u);
      BOOST_TEST(data.height == 2u);
      BOOST_TEST(data.width == 4u);
      const std::string expected = counting_bytes(24);
      BOOST_TEST(std::string(data.pixels.begin(), data.pixels.end()) == expected);
      BOOST_TEST(data.labels == (std::vector<std::int64_t>{7, 0, 9}));
    }
  }
  // A gzip-compressed file is recognised by its first bytes, not by its name.
  BOOST_TEST(read_idx(dir.write("plain.gz", labels_3), 1).values == (std::vector<std::uint8_t>{7, 0, 9}));
  BOOST_TEST(read_idx(dir.write("compressed", gzip(labels_3)), 1).dimensions == (Shape{3}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(batches_scale_pixels_to_the_unit_interval) {
  TempDir dir;
  const LabelledImages data = read_labelled_images(dir.write("images", images_3x2x4), dir.write("labels", labels_3));
  const Array<double> batch = image_batch<double>(data, {2, 0});
  BOOST_TEST(batch.shape() == (Shape{2, 1, 2, 4}), boost::test_tools::per_element());
  // Image 2 starts at value 16 of the counting bytes: (16 * 37) % 256 = 80.
  BOOST_TEST(batch(0, 0, 0, 0) == 80.0 / 255.0);
  BOOST_TEST(batch(1, 0, 0, 1) == 37.0 / 255.0);
  BOOST_TEST(label_batch(data, {2, 0}) == (Indices{9, 7}));
  BOOST_TEST(error_message<index_error>([&] { image_batch<float>(data, {1, 3}); }) ==
             "image batch: row 3 at position 1 is outside the 3 images");
  BOOST_CHECK_THROW(label_batch(data, {5}), index_error);
}

BOOST_AUTO_TEST_CASE(each_fault_of_a_header_is_named) {
  BOOST_TEST(refusal(std::string("\0\0", 2)) ==
             "f.idx: the file ends after 2 bytes; expected an IDX magic number of 4 bytes");
  BOOST_TEST(refusal(idx(0x01000803, {3, 2, 4}, counting_bytes(24))) ==
             "f.idx: magic number 0x01000803 is not an IDX magic number; expected 0x00000803");
  BOOST_TEST(refusal(idx(0x00000d03, {3, 2, 4}, counting_bytes(96))) ==
             "f.idx: magic number 0x00000d03 declares data type 0d; expected 08 (unsigned bytes), magic number "
             "0x00000803");
  BOOST_TEST(refusal(labels_3) ==
             "f.idx: magic number 0x00000801 declares 1 dimensions; expected 3, magic number 0x00000803");
  BOOST_TEST(refusal(images_3x2x4, 1) ==
             "f.idx: magic number 0x00000803 declares 3 dimensions; expected 1, magic number 0x00000801");
  BOOST_TEST(refusal(images_3x2x4.substr(0, 10)) == "f.idx: the header ends after 6 of the 12 bytes of its 3 dimensions");
  BOOST_TEST(refusal(idx(idx_images_magic, {3, 0, 4}, "")) == "f.idx: dimension 1 (rows) is 0; expected a positive extent");
  BOOST_TEST(refusal(idx(idx_labels_magic, {0}, ""), 1) == "f.idx: dimension 0 (count) is 0; expected a positive extent");
}

BOOST_AUTO_TEST_CASE(a_header_cannot_make_the_reader_allocate_without_limit) {
  // 2^96 values: refused at the first dimension that passes the limit, before any product
  // could overflow.
  BOOST_TEST(refusal(idx(idx_images_magic, {0xffffffff, 0xffffffff, 0xffffffff}, "")) ==
             "f.idx: dimensions [4294967295]... make more than 1073741824 values, the most this reader accepts");
  BOOST_TEST(refusal(idx(idx_images_magic, {0x10000, 0x10000, 0x10000}, "")) ==
             "f.idx: dimensions [65536, 65536]... make more than 1073741824 values, the most this reader accepts");
  BOOST_TEST(refusal(images_3x2x4, 3, 20) == "f.idx: dimensions [3, 2, 4] make more than 20 values, the most this "
                                             "reader accepts");
  // Within the limit, the declared size must be what the file holds, checked before allocating.
  BOOST_TEST(refusal(idx(idx_images_magic, {1000, 1000, 1000}, counting_bytes(24))) ==
             "f.idx: dimensions [1000, 1000, 1000] declare 1000000000 values of one byte, but the data hold 24 bytes");
  BOOST_TEST(refusal(gzip(idx(idx_images_magic, {1000, 1000, 1000}, counting_bytes(24)))) ==
             "f.idx: dimensions [1000, 1000, 1000] declare 1000000000 values of one byte, but the data hold 24 bytes");
  // A gzip bomb: 64 MB of zeros behind a header of 24 values is inflated only one byte past them.
  BOOST_TEST(refusal(gzip(idx(idx_images_magic, {3, 2, 4}, std::string(std::size_t{64} << 20, '\0')))) ==
             "f.idx: dimensions [3, 2, 4] declare 24 values of one byte, but the data hold more bytes");
}

BOOST_AUTO_TEST_CASE(the_data_must_have_the_declared_length) {
  BOOST_TEST(refusal(images_3x2x4.substr(0, images_3x2x4.size() - 1)) ==
             "f.idx: dimensions [3, 2, 4] declare 24 values of one byte, but the data hold 23 bytes");
  BOOST_TEST(refusal(images_3x2x4 + "x") ==
             "f.idx: dimensions [3, 2, 4] declare 24 values of one byte, but the data hold 25 bytes");
  BOOST_TEST(refusal(gzip(images_3x2x4.substr(0, images_3x2x4.size() - 1))) ==
             "f.idx: dimensions [3, 2, 4] declare 24 values of one byte, but the data hold 23 bytes");
  BOOST_TEST(refusal(gzip(images_3x2x4 + "x")) ==
             "f.idx: dimensions [3, 2, 4] declare 24 values of one byte, but the data hold more bytes");
}

BOOST_AUTO_TEST_CASE(faults_of_the_compression_are_named) {
  const std::string compressed = gzip(images_3x2x4);
  BOOST_TEST(refusal(compressed.substr(0, compressed.size() - 4)) ==
             "f.idx: the gzip stream is truncated (it ends before its trailer)");
  BOOST_TEST(refusal(compressed.substr(0, 12)) == "f.idx: the gzip stream is truncated (it ends before its trailer)");
  std::string wrong_checksum = compressed;
  wrong_checksum[wrong_checksum.size() - 8] ^= 0x55;  // the trailer's CRC-32
  BOOST_TEST(refusal(wrong_checksum) == "f.idx: the gzip data are corrupt (zlib: incorrect data check)");
  BOOST_TEST(refusal(compressed + "abc") == "f.idx: 3 bytes follow the end of the gzip stream; expected none");
}

BOOST_AUTO_TEST_CASE(images_and_labels_must_be_as_many) {
  TempDir dir;
  const std::string images = dir.write("images", images_3x2x4);
  const std::string labels = dir.write("labels", idx(idx_labels_magic, {2}, "ab"));
  BOOST_TEST(error_message<file_error>([&] { read_labelled_images(images, labels); }) ==
             images + " holds 3 images but " + labels + " holds 2 labels; expected one label per image");
  // Each file's own faults name it.
  BOOST_TEST(error_message<file_error>([&] { read_labelled_images(labels, images); }) ==
             labels + ": magic number 0x00000801 declares 1 dimensions; expected 3, magic number 0x00000803");
  BOOST_CHECK_THROW(read_labelled_images(dir.file("absent"), labels), file_error);
}

BOOST_AUTO_TEST_CASE(fashion_mnist_is_found_through_xgrad_data_first) {
  TempDir dir;
  std::filesystem::create_directories(dir.path / "fashion-mnist");
  const auto put = [&](const std::string& name) { dir.write("fashion-mnist/" + name, labels_3); };
  put("train-images-idx3-ubyte");
  put("train-labels-idx1-ubyte.gz");
  put("t10k-images-idx3-ubyte.gz");
  put("t10k-labels-idx1-ubyte");
  const std::string directory = (dir.path / "fashion-mnist").string();
  {
    const ScopedDataDirectory data(dir.path.string());
    const std::optional<FashionMnistFiles> files = find_fashion_mnist();
    BOOST_TEST_REQUIRE(files.has_value());
    BOOST_TEST(files->train_images == directory + "/train-images-idx3-ubyte");
    BOOST_TEST(files->train_labels == directory + "/train-labels-idx1-ubyte.gz");
    BOOST_TEST(files->test_images == directory + "/t10k-images-idx3-ubyte.gz");
    BOOST_TEST(files->test_labels == directory + "/t10k-labels-idx1-ubyte");
  }
  // Both forms present: the compressed one, as Fashion-MNIST ships.
  put("train-images-idx3-ubyte.gz");
  BOOST_TEST(fashion_mnist_files(directory)->train_images == directory + "/train-images-idx3-ubyte.gz");
  // A directory without all four files does not count; the search moves on to Debian's.
  std::filesystem::remove(dir.path / "fashion-mnist" / "t10k-labels-idx1-ubyte");
  BOOST_TEST(!fashion_mnist_files(directory).has_value());
  const ScopedDataDirectory data(dir.path.string());
  const std::optional<FashionMnistFiles> fallback = find_fashion_mnist();
  BOOST_TEST(fallback.has_value() == fashion_mnist_files(std::string(debian_fashion_mnist_directory)).has_value());
  if (fallback) BOOST_TEST(fallback->train_images.starts_with(std::string(debian_fashion_mnist_directory)));
}

BOOST_AUTO_TEST_CASE(the_real_fashion_mnist_training_set) {
  const std::optional<FashionMnistFiles> files = fashion_mnist_files(std::string(debian_fashion_mnist_directory));
  if (!files) {
    BOOST_TEST_MESSAGE("skipped: Fashion-MNIST is not in " << debian_fashion_mnist_directory
                                                           << " (apt-get install dataset-fashion-mnist; make test does)");
    return;
  }
  const LabelledImages train = read_labelled_images(files->train_images, files->train_labels);
  BOOST_TEST(train.size() == 60000u);
  BOOST_TEST(train.height == 28u);
  BOOST_TEST(train.width == 28u);
  BOOST_TEST(train.pixels.size() == 60000u * 28 * 28);
  // Ten classes of 6000 images each.
  std::vector<std::size_t> per_class(10, 0);
  std::size_t outside = 0;
  for (const std::int64_t label : train.labels) {
    if (label < 0 || label > 9) {
      ++outside;
    } else {
      ++per_class[static_cast<std::size_t>(label)];
    }
  }
  BOOST_TEST(outside == 0u, outside << " labels lie outside 0..9");
  BOOST_TEST(per_class == std::vector<std::size_t>(10, 6000), boost::test_tools::per_element());
}
