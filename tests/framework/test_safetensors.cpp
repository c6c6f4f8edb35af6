// safetensors: round trips, byte-level layout, and refusal of corrupt files; atomic writes.
#define BOOST_TEST_MODULE safetensors
#include "xgrad_test.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/stat.h>

using xgrad::testing::TempDir;
using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::fixture;
using xgrad::testing::random_tensor;

namespace {

// A file from a header text and a data section, written byte by byte as another writer would.
std::string raw_file(const std::string& header, const std::string& data, std::uint64_t claimed_length = 0) {
  const std::uint64_t length = claimed_length != 0 ? claimed_length : header.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &length, 8);
  return bytes + header + data;
}

std::string floats_bytes(std::initializer_list<float> values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), std::data(values), bytes.size());
  return bytes;
}

void expect_refused(const std::string& bytes, const std::string& fragment) {
  try {
    safetensors::File::parse(bytes, "bad.safetensors");
    BOOST_ERROR("a corrupt file was accepted; expected: " << fragment);
  } catch (const file_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("bad.safetensors") != std::string::npos, message);
    BOOST_TEST(message.find(fragment) != std::string::npos, message);
  }
}

// The message of the file_error that `read` throws; fails the test when it throws none.
template <class Read>
std::string error_of(Read read) {
  try {
    read();
  } catch (const file_error& e) {
    return e.what();
  }
  BOOST_ERROR("no file_error");
  return "";
}

bool is_bf16_nan(std::uint16_t bits) { return (bits & 0x7F80) == 0x7F80 && (bits & 0x7F) != 0; }
bool is_f16_nan(std::uint16_t bits) { return (bits & 0x7C00) == 0x7C00 && (bits & 0x3FF) != 0; }

}  // namespace

BOOST_AUTO_TEST_CASE(round_trip_of_every_dtype_and_metadata) {
  TempDir dir;
  const Array<float> weights = xt::cast<float>(random_tensor({3, 4}, 1).value());
  const Array<double> doubles = random_tensor({2, 1, 5}, 2).value();
  const Indices ids{{4, -1}, {7, 0}};
  safetensors::Writer writer;
  writer.add("layer.weight", weights);
  writer.add("doubles", doubles);
  writer.add("ids", ids);
  writer.add("empty", Array<float>::from_shape({0, 3}));
  writer.add("scalar", Array<double>(2.5));
  writer.set_metadata("format", "xgrad");
  const std::string path = (dir.path / "model.safetensors").string();
  writer.write(path);

  const safetensors::File file = safetensors::File::read(path);
  BOOST_TEST(file.names() == (std::vector<std::string>{"doubles", "empty", "ids", "layer.weight", "scalar"}));
  check_close(file.floats<float>("layer.weight"), weights, 0.0);
  check_close(file.floats<double>("doubles"), doubles, 0.0);
  check_close(file.floats<float>("doubles"), doubles, 1e-7);  // converted on request
  BOOST_TEST(file.integers("ids") == ids);
  BOOST_TEST(to_string(file.entry("empty").shape) == "[0, 3]");
  BOOST_TEST(file.floats<double>("scalar")() == 2.5);
  BOOST_TEST(file.metadata().at("format") == "xgrad");
  BOOST_CHECK_THROW(file.entry("missing"), file_error);
  BOOST_CHECK_THROW(file.integers("doubles"), file_error);
  BOOST_CHECK_THROW(file.floats<float>("ids"), file_error);
}

BOOST_AUTO_TEST_CASE(layout_matches_the_format) {
  safetensors::Writer writer;
  writer.add("a", Array<float>{1.0f, 2.0f});
  const std::string bytes = writer.serialize();
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  BOOST_TEST(header_length % 8 == 0u);  // padded so that the data section is aligned
  const std::string header = bytes.substr(8, header_length);
  BOOST_TEST(header.find(R"("a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]})") != std::string::npos, header);
  BOOST_TEST(bytes.substr(8 + header_length) == floats_bytes({1.0f, 2.0f}));
}

BOOST_AUTO_TEST_CASE(reads_a_file_from_another_writer) {
  // Written as PyTorch's tooling writes: unpadded header, keys in any order, metadata present.
  const std::string header = R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                             R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const safetensors::File file = safetensors::File::parse(raw_file(header, floats_bytes({1, 2, 3})), "other.safetensors");
  check_close(file.floats<float>("a"), Array<float>{1, 2}, 0.0);
  check_close(file.floats<float>("b"), Array<float>{3}, 0.0);
}

BOOST_AUTO_TEST_CASE(corrupt_files_are_refused_with_a_reason) {
  const std::string good_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data = floats_bytes({1, 2});
  BOOST_CHECK_NO_THROW(safetensors::File::parse(raw_file(good_header, data), "good"));
  expect_refused("abc", "8-byte header length");
  expect_refused(raw_file(good_header, data).substr(0, 20), "runs past the end");               // truncated header
  expect_refused(raw_file(good_header, data, 1ull << 40), "exceeds the limit");                   // huge header length
  expect_refused(raw_file(good_header, data.substr(0, 4)), "data section");                       // truncated data
  expect_refused(raw_file(R"({"a":{"dtype":"F32",)", ""), "not valid JSON");
  expect_refused(raw_file(R"([1,2])", ""), "not a JSON object");
  expect_refused(raw_file(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", data),
                 "dtype U8; supported are F32, F64, BF16, F16, I64, I32, I8 and BOOL");
  expect_refused(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data), "needs 3 x 4 bytes");
  expect_refused(raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data), "non-negative");
  expect_refused(raw_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}})", data),
                 "more elements than memory");
  expect_refused(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data), "do not lie inside");
  expect_refused(raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", data), "no \"data_offsets\"");
  expect_refused(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          data),
                 "overlap");
  expect_refused(raw_file(R"({"__metadata__":{"k":1}})", ""), "metadata 'k'");
  // The tensors must end where the file ends, as the reference implementation requires.
  expect_refused(raw_file(good_header, data + "trailing"), "the tensors end at byte 8 of the data section");
  expect_refused(raw_file("{\"a\xff\":1}", ""), "(header):1:4: invalid UTF-8 (byte 0xFF)");
}

// What File::read opens must be a regular file of a sane size, checked before its bytes are
// read: a symlink to /dev/zero would otherwise be read until memory runs out, and a FIFO
// would block the program.
BOOST_AUTO_TEST_CASE(only_regular_files_of_a_bounded_size_are_read) {
  TempDir dir;
  std::filesystem::create_symlink("/dev/zero", dir.file("zero.safetensors"));
  BOOST_REQUIRE(::mkfifo(dir.file("fifo.safetensors").c_str(), 0600) == 0);
  std::filesystem::create_directory(dir.file("directory.safetensors"));
  for (const auto& [name, kind] : {std::pair{"zero.safetensors", "a character device"}, {"fifo.safetensors", "a FIFO"},
                                   {"directory.safetensors", "a directory"}}) {
    try {
      safetensors::File::read(dir.file(name));
      BOOST_ERROR(name << " was read");
    } catch (const file_error& e) {
      const std::string message = e.what();
      BOOST_TEST(message.find(name) != std::string::npos, message);
      BOOST_TEST(message.find(std::string("not a regular file (") + kind) != std::string::npos, message);
    }
  }
  const std::string small = dir.write("small.txt", "12345678901");
  BOOST_TEST(read_file(small, 11) == "12345678901");
  try {
    read_file(small, 10);
    BOOST_ERROR("a file over its limit was read");
  } catch (const file_error& e) {
    BOOST_TEST(std::string(e.what()).find("11 bytes exceeds the limit of 10 bytes") != std::string::npos, e.what());
  }
}

// File::read checks the header against the file before it reads the data, and refuses what
// parse refuses.
BOOST_AUTO_TEST_CASE(reading_a_file_checks_the_header_before_the_data) {
  TempDir dir;
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const safetensors::File good = safetensors::File::read(dir.write("good.safetensors", raw_file(header, floats_bytes({1, 2}))));
  check_close(good.floats<float>("a"), Array<float>{1, 2});
  const std::string padded = dir.write("padded.safetensors", raw_file(header, floats_bytes({1, 2}) + std::string(4096, 'x')));
  try {
    safetensors::File::read(padded);
    BOOST_ERROR("a file with bytes past its tensors was read");
  } catch (const file_error& e) {
    const std::string message = e.what();
    BOOST_TEST(message.find("padded.safetensors") != std::string::npos, message);
    BOOST_TEST(message.find("holds 4104 data bytes") != std::string::npos, message);
  }
}

BOOST_AUTO_TEST_CASE(non_finite_values_are_found_where_they_are) {
  const std::string header = R"({"f":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                             R"("d":{"dtype":"F64","shape":[2],"data_offsets":[16,32]},)"
                             R"("i":{"dtype":"I64","shape":[1],"data_offsets":[32,40]},)"
                             R"("g":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})";
  const double doubles[] = {1.0, -std::numeric_limits<double>::infinity()};
  std::string data = floats_bytes({1, 2, std::numeric_limits<float>::quiet_NaN(), 4});
  data.append(reinterpret_cast<const char*>(doubles), 16);
  data.append(8, '\0');
  const safetensors::File file = safetensors::File::parse(raw_file(header, data), "nan.safetensors");
  BOOST_TEST(file.first_non_finite("f").value_or(99) == 2u);
  BOOST_TEST(file.first_non_finite("d").value_or(99) == 1u);
  BOOST_TEST(!file.first_non_finite("g").has_value());
  BOOST_CHECK_THROW(file.first_non_finite("i"), file_error);
}

BOOST_AUTO_TEST_CASE(atomic_write_replaces_the_file_whole) {
  TempDir dir;
  const std::string path = (dir.path / "file.txt").string();
  write_file_atomically(path, "first version");
  write_file_atomically(path, "second");
  BOOST_TEST(read_file(path) == "second");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path)) ++entries;
  BOOST_TEST(entries == 1u);  // no temporary left behind
  // A write that cannot happen leaves the old file as it was.
  BOOST_CHECK_THROW(write_file_atomically((dir.path / "missing-dir" / "x").string(), "data"), file_error);
  BOOST_CHECK_THROW(read_file((dir.path / "absent").string()), file_error);
}

// Output flags accept what a shell redirection accepts: a link is written through to its
// target, a device or FIFO is written in place (renaming over /dev/null would replace it, or
// fail), and a full device is an error naming the file.
BOOST_AUTO_TEST_CASE(atomic_write_follows_links_and_writes_devices_and_fifos_in_place) {
  TempDir dir;
  namespace fs = std::filesystem;
  fs::create_directory(dir.path / "real");
  fs::create_symlink("real/target.txt", dir.path / "link.txt");  // relative, and dangling until written
  write_file_atomically(dir.file("link.txt"), "through the link");
  BOOST_TEST(fs::is_symlink(dir.path / "link.txt"));
  BOOST_TEST(read_file(dir.file("real/target.txt")) == "through the link");
  write_file_atomically(dir.file("link.txt"), "again");
  BOOST_TEST(fs::is_symlink(dir.path / "link.txt"));
  BOOST_TEST(read_file(dir.file("real/target.txt")) == "again");

  const std::string fifo = dir.file("pipe");
  BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string received;
  std::thread reader([&] { received = xgrad::testing::read_until_end(fifo); });
  write_file_atomically(fifo, "into the pipe");
  ::close(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK));  // a reader still waiting (nothing was written) sees the end
  reader.join();
  BOOST_TEST(received == "into the pipe");
  BOOST_TEST(fs::is_fifo(fifo));

  write_file_atomically("/dev/null", "discarded");
  BOOST_TEST(fs::is_character_file("/dev/null"));
  try {
    write_file_atomically("/dev/full", "no room");
    BOOST_FAIL("writing to /dev/full succeeded");
  } catch (const file_error& e) {
    BOOST_TEST(std::string(e.what()).find("/dev/full") != std::string::npos, e.what());
  }
  try {
    write_file_atomically(dir.file("real"), "a directory");
    BOOST_FAIL("a directory was replaced");
  } catch (const file_error& e) {
    BOOST_TEST(std::string(e.what()).find("directory") != std::string::npos, e.what());
  }
  BOOST_TEST(fs::is_directory(dir.path / "real"));
}

BOOST_AUTO_TEST_CASE(stale_temporaries_of_killed_writes_are_removed_and_nothing_else) {
  TempDir dir;
  auto touch = [&](const std::string& name) { std::ofstream(dir.path / name) << "x"; };
  for (const char* name : {".model.safetensors.tmp-a1B2c3", ".log.csv.tmp-zzzzzz", "file.txt", ".hidden",
                           "notes.tmp-abcdef", ".x.tmp-toolong", ".tmp-abcdef"}) {
    touch(name);
  }
  remove_stale_temporaries(dir.path.string());
  std::set<std::string> left;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path)) left.insert(entry.path().filename().string());
  BOOST_TEST((left == std::set<std::string>{"file.txt", ".hidden", "notes.tmp-abcdef", ".x.tmp-toolong", ".tmp-abcdef"}));
  remove_stale_temporaries((dir.path / "absent").string());  // nothing to clean is not an error
}

// dtypes.safetensors (tests/fixtures/fixtures_dtypes.py) holds BF16 and F16 tensors as PyTorch
// stores them and PyTorch's conversions of them to float: reading them gives the same bits,
// NaN payloads, infinities, subnormals and -0 included.
BOOST_AUTO_TEST_CASE(bf16_and_f16_read_as_pytorch_converts_them) {
  const safetensors::File file = fixture("dtypes");
  const Array<float> source = file.floats<float>("source");
  for (const auto& [stored, expected] : {std::pair{"as_bf16", "bf16_as_f32"}, {"as_f16", "f16_as_f32"}}) {
    BOOST_TEST_CONTEXT(stored) {
      const Array<float> read = file.floats<float>(stored), pytorch = file.floats<float>(expected);
      const Array<double> read_double = file.floats<double>(stored);
      BOOST_TEST_REQUIRE(read.shape() == pytorch.shape());
      std::size_t negative_zeros = 0, subnormals = 0, infinities = 0, nans = 0;
      for (std::size_t i = 0; i < read.size(); ++i) {
        const float value = read.data()[i];
        BOOST_TEST(std::bit_cast<std::uint32_t>(value) == std::bit_cast<std::uint32_t>(pytorch.data()[i]),
                   "element " << i);
        BOOST_TEST((std::isnan(value) ? std::isnan(read_double.data()[i]) : read_double.data()[i] == value),
                   "element " << i);
        negative_zeros += value == 0 && std::signbit(value);
        subnormals += std::fpclassify(value) == FP_SUBNORMAL;
        infinities += std::isinf(value);
        nans += std::isnan(value);
      }
      // The fixture covers what it claims to (float subnormals come from BF16 only).
      BOOST_TEST(negative_zeros > 0u);
      BOOST_TEST(infinities > 0u);
      BOOST_TEST(nans > 0u);
      BOOST_TEST((subnormals > 0u) == (std::string(stored) == "as_bf16"));
      std::size_t first_non_finite = 0;
      while (std::isfinite(read.data()[first_non_finite])) ++first_non_finite;
      BOOST_TEST(file.first_non_finite(stored).value_or(0) == first_non_finite);
    }
  }
  // The F16 values include half subnormals (2^-24 .. 2^-14), read exactly.
  const Array<float> f16 = file.floats<float>("as_f16");
  BOOST_TEST(std::count(f16.begin(), f16.end(), 0x1p-24f) > 0);
  BOOST_TEST(source.size() == f16.size());
}

// xgrad's writer rounds float to BF16 and F16 bit for bit as PyTorch's tensor.to(...) does,
// doubles through float as PyTorch does, and what it writes reads back as PyTorch reads it.
BOOST_AUTO_TEST_CASE(the_writer_rounds_to_bf16_and_f16_as_pytorch_does) {
  const safetensors::File file = fixture("dtypes");
  safetensors::Writer writer;
  writer.add("bf16", file.floats<float>("source"), safetensors::Dtype::bf16);
  writer.add("f16", file.floats<float>("source"), safetensors::Dtype::f16);
  writer.add("f64_bf16", file.floats<double>("source_f64"), safetensors::Dtype::bf16);
  writer.add("f64_f16", file.floats<double>("source_f64"), safetensors::Dtype::f16);
  const safetensors::File written = safetensors::File::parse(writer.serialize(), "written");
  for (const auto& [ours, pytorch] : {std::pair{"bf16", "as_bf16"}, {"f64_bf16", "f64_as_bf16"}}) {
    BOOST_TEST((written.entry(ours).dtype == safetensors::Dtype::bf16));
    const Array<std::uint16_t> a = written.stored<std::uint16_t>(ours), b = file.stored<std::uint16_t>(pytorch);
    BOOST_TEST_REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      // PyTorch's NaN bits depend on its kernels (0xFFFF with AVX2, 0x7FC0 without); ours are
      // c10::BFloat16's 0x7FC0.
      if (is_bf16_nan(b.data()[i])) {
        BOOST_TEST(a.data()[i] == 0x7FC0, ours << " element " << i);
      } else {
        BOOST_TEST(a.data()[i] == b.data()[i], ours << " element " << i);
      }
    }
  }
  for (const auto& [ours, pytorch] : {std::pair{"f16", "as_f16"}, {"f64_f16", "f64_as_f16"}}) {
    BOOST_TEST((written.entry(ours).dtype == safetensors::Dtype::f16));
    BOOST_TEST(written.stored<std::uint16_t>(ours) == file.stored<std::uint16_t>(pytorch), ours);
  }
  // Every BF16 and F16 value survives float and back; a NaN stays a NaN.
  for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const auto b = static_cast<std::uint16_t>(bits);
    const std::uint16_t bf16 = safetensors::float_to_bf16(safetensors::bf16_to_float(b));
    const std::uint16_t f16 = safetensors::float_to_f16(safetensors::f16_to_float(b));
    if (is_bf16_nan(b)) {
      BOOST_TEST(bf16 == 0x7FC0);
    } else if (bf16 != b) {
      BOOST_ERROR("BF16 " << bits << " came back as " << bf16);
    }
    if (is_f16_nan(b)) {
      BOOST_TEST(f16 == (b & 0x8000) + 0x7E00);
    } else if (f16 != b) {
      BOOST_ERROR("F16 " << bits << " came back as " << f16);
    }
  }
  BOOST_CHECK_THROW(writer.add("as_i8", Array<float>{1}, safetensors::Dtype::i8), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(integers_and_masks_read_as_pytorch_stores_them) {
  const safetensors::File file = fixture("dtypes");
  BOOST_TEST(file.integers("i8") == file.integers("i8_as_i64"));
  BOOST_TEST(file.integers("i32") == file.integers("i32_as_i64"));
  const Array<std::int8_t> i8 = file.stored<std::int8_t>("i8");
  BOOST_TEST(to_string(i8.shape()) == "[16, 16]");
  for (std::size_t i = 0; i < i8.size(); ++i) BOOST_TEST(int{i8.data()[i]} == static_cast<int>(i) - 128);
  const Indices i32_widened = xt::cast<std::int64_t>(file.stored<std::int32_t>("i32"));
  BOOST_TEST(i32_widened == file.integers("i32_as_i64"));
  const Mask mask = file.stored<bool>("mask");
  BOOST_TEST(mask == xt::not_equal(file.integers("mask_as_i64"), 0));
  BOOST_TEST(xt::any(mask));
  BOOST_TEST(!xt::all(mask));

  // Each accessor refuses the other dtypes, naming the tensor, its dtype and what it reads.
  const std::string not_float = error_of([&] { file.floats<float>("mask"); });
  BOOST_TEST(not_float.find("tensor 'mask' is BOOL, not a floating-point tensor (F32, F64, BF16 or F16)") !=
                 std::string::npos,
             not_float);
  const std::string not_integer = error_of([&] { file.integers("as_f16"); });
  BOOST_TEST(not_integer.find("tensor 'as_f16' is F16, not an integer tensor (I64, I32 or I8)") != std::string::npos,
             not_integer);
  const std::string not_i8 = error_of([&] { file.stored<std::int8_t>("as_bf16"); });
  BOOST_TEST(not_i8.find("tensor 'as_bf16' is BF16, not I8") != std::string::npos, not_i8);
  const std::string not_16_bits = error_of([&] { file.stored<std::uint16_t>("source"); });
  BOOST_TEST(not_16_bits.find("tensor 'source' is F32, not BF16 or F16") != std::string::npos, not_16_bits);
  BOOST_CHECK_THROW(file.integers("mask"), file_error);
  BOOST_CHECK_THROW(file.first_non_finite("i8"), file_error);

  // What the writer stores reads back the same, as the dtype written.
  safetensors::Writer writer;
  writer.add("i8", i8);
  writer.add("i32", file.stored<std::int32_t>("i32"));
  writer.add("mask", mask);
  const safetensors::File written = safetensors::File::parse(writer.serialize(), "written");
  BOOST_TEST((written.entry("i8").dtype == safetensors::Dtype::i8));
  BOOST_TEST((written.entry("i32").dtype == safetensors::Dtype::i32));
  BOOST_TEST((written.entry("mask").dtype == safetensors::Dtype::boolean));
  BOOST_TEST(written.stored<std::int8_t>("i8") == i8);
  BOOST_TEST(written.integers("i32") == file.integers("i32_as_i64"));
  BOOST_TEST(written.stored<bool>("mask") == mask);
}

BOOST_AUTO_TEST_CASE(corrupt_files_of_the_new_dtypes_are_refused) {
  const std::string four(4, '\0');
  for (const auto& [spec, fragment] :
       {std::pair{R"("BF16","shape":[3])", "BF16 of shape [3] needs 3 x 2 bytes but data_offsets span 4"},
        {R"("F16","shape":[1])", "F16 of shape [1] needs 1 x 2 bytes"},
        {R"("I32","shape":[2])", "I32 of shape [2] needs 2 x 4 bytes"},
        {R"("I8","shape":[2,1])", "I8 of shape [2, 1] needs 2 x 1 bytes"},
        {R"("BOOL","shape":[5])", "BOOL of shape [5] needs 5 x 1 bytes"}}) {
    expect_refused(raw_file(std::string(R"({"a":{"dtype":)") + spec + R"(,"data_offsets":[0,4]}})", four), fragment);
  }
  // A BOOL byte other than 0 or 1, named by element and by its place in the file, by parse and by read.
  const std::string header = R"({"m":{"dtype":"BOOL","shape":[2,2],"data_offsets":[0,4]}})";
  const std::string bad_bool = raw_file(header, std::string("\1\0\2\1", 4));
  const std::string where =
      "tensor 'm': BOOL element 2 (byte " + std::to_string(8 + header.size() + 2) + " of the file) is 2, not 0 or 1";
  expect_refused(bad_bool, where);
  TempDir dir;
  const std::string read_error = error_of([&] { safetensors::File::read(dir.write("mask.safetensors", bad_bool)); });
  BOOST_TEST(read_error.find("mask.safetensors: " + where) != std::string::npos, read_error);
  BOOST_CHECK_NO_THROW(safetensors::File::parse(raw_file(header, std::string("\1\0\0\1", 4)), "good"));
}
