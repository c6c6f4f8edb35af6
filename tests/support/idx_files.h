#pragma once
// IDX files as MNIST ships them, made by tests: a header of its own (to break it), or a whole
// data set written out for a program to read.

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "xgrad/models/image_data.h"

namespace xgrad::testing {

inline std::string big_endian(std::uint32_t value) {
  return {char(value >> 24), char((value >> 16) & 0xff), char((value >> 8) & 0xff), char(value & 0xff)};
}

// An IDX file: the magic number, the dimensions, then the values as they are given.
inline std::string idx(std::uint32_t magic, const std::vector<std::uint32_t>& dimensions, const std::string& values) {
  std::string bytes = big_endian(magic);
  for (const std::uint32_t extent : dimensions) bytes += big_endian(extent);
  return bytes + values;
}

// The images as the two uncompressed IDX files of MNIST: images [N, height, width] and labels [N].
inline void write_idx(const models::LabelledImages& images, const std::string& images_path, const std::string& labels_path) {
  const auto count = static_cast<std::uint32_t>(images.size());
  std::ofstream(images_path, std::ios::binary)
      << idx(models::idx_images_magic,
             {count, static_cast<std::uint32_t>(images.height), static_cast<std::uint32_t>(images.width)},
             std::string(images.pixels.begin(), images.pixels.end()));
  std::string labels;
  for (std::int64_t label : images.labels) labels.push_back(static_cast<char>(label));
  std::ofstream(labels_path, std::ios::binary) << idx(models::idx_labels_magic, {count}, labels);
}

}  // namespace xgrad::testing
