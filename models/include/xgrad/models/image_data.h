#pragma once
// Grey images with a class each, as MNIST and Fashion-MNIST ship them: IDX files, plain or
// gzip-compressed, one of images [N, rows, columns] and one of labels [N], all unsigned bytes.
//
// IDX: a big-endian magic number 0x0000TTRR (TT the data type, 0x08 for unsigned bytes; RR
// the number of dimensions), RR big-endian 32-bit dimensions, then the values in row-major
// order. Every fault of a file is a file_error naming the file, the field and what was
// expected, found before anything of the file's declared size is allocated: a header cannot
// make the reader allocate more than the file holds, nor a gzip bomb more than the header
// declares (and at most max_values).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/framework/tensor.h"
#include "xgrad/models/batching.h"

namespace xgrad::models {

// The IDX magic numbers of the two files of an image dataset.
inline constexpr std::uint32_t idx_images_magic = 0x00000803;  // unsigned bytes, 3 dimensions
inline constexpr std::uint32_t idx_labels_magic = 0x00000801;  // unsigned bytes, 1 dimension

// The most values an IDX file may declare unless its reader names another limit: 20 times
// Fashion-MNIST's training images, small enough that a mistaken file cannot exhaust memory.
inline constexpr std::size_t default_max_idx_values = std::size_t{1} << 30;

// An IDX array of unsigned bytes.
struct IdxArray {
  Shape dimensions;
  std::vector<std::uint8_t> values;  // row-major, element_count(dimensions) of them
};

// The array an IDX file's bytes hold: gzip-compressed when they start with gzip's magic bytes
// (1f 8b), plain otherwise. It must hold unsigned bytes in `rank` dimensions, each positive,
// whose product is at most max_values and is exactly the number of values that follow the
// header. `label` names the file in messages.
IdxArray parse_idx(std::string_view bytes, const std::string& label, std::size_t rank,
                   std::size_t max_values = default_max_idx_values);
// The same for the file at `path` (file_error naming it when it cannot be read).
IdxArray read_idx(const std::string& path, std::size_t rank, std::size_t max_values = default_max_idx_values);

struct LabelledImages {
  std::size_t height = 0;
  std::size_t width = 0;
  std::vector<std::uint8_t> pixels;  // [count, height, width], 0 (background) to 255
  std::vector<std::int64_t> labels;  // [count], 0 to 255
  std::size_t size() const noexcept { return labels.size(); }
};

// The images of an IDX file of magic 0x00000803 with the labels of one of magic 0x00000801;
// images and labels of different counts are a file_error naming both files and both counts.
LabelledImages read_labelled_images(const std::string& images_path, const std::string& labels_path);

// The images of `rows` as a batch [rows.size(), 1, height, width] of pixels scaled to [0, 1].
// A row past the end is an index_error.
template <class T>
Array<T> image_batch(const LabelledImages& images, const Batch& rows);
// Their labels [rows.size()].
Indices label_batch(const LabelledImages& images, const Batch& rows);

// Fashion-MNIST's four files, each `<name>.gz` or, decompressed, `<name>`.
struct FashionMnistFiles {
  std::string train_images, train_labels, test_images, test_labels;
};

// The directory where Debian's dataset-fashion-mnist package installs the files.
inline constexpr std::string_view debian_fashion_mnist_directory = "/usr/share/datasets/fashion-mnist";

// Where Fashion-MNIST is: $XGRAD_DATA/fashion-mnist when XGRAD_DATA is set and that
// directory holds the four files, else Debian's directory when it does; nullopt otherwise.
std::optional<FashionMnistFiles> find_fashion_mnist();
// The four files in `directory` (compressed preferred); nullopt unless all four are there.
std::optional<FashionMnistFiles> fashion_mnist_files(const std::filesystem::path& directory);

}  // namespace xgrad::models
