#pragma once
// Weight matrices stored with fewer bytes per value, for inference: batch-1 decoding reads
// every weight once per token, so its speed is the speed of reading them, and int8 or bfloat16
// weights read 4 or 2 times fewer bytes than float32 (CTranslate2's and Marian's int8
// decoding, PyTorch's quantize_dynamic).
//
// int8: each row of W is rounded to integers in [-127, 127] with its own scale max|w| / 127
// (symmetric, per output channel). A product quantises each row of x the same way when it
// runs ("dynamic" quantisation) and sums the integer products exactly in 32 bits, so every
// instruction set gives the same result; the scales turn the sums back into floats. Where
// AVX-512 VNNI is active when the matrix is made, it also keeps W in the VNNI kernel's panels
// of 16 rows (a second int8 copy): batch-1 products then stream W at the memory's speed.
// bf16: W and each row of x are rounded to bfloat16 (to nearest, ties to even) and their
// products, exact in float, are summed in float.
//
// Storage in safetensors: a bf16 matrix is a BF16 tensor; an int8 matrix `NAME` is an I8
// tensor and an F32 tensor `NAME_scale` of one scale per row.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xgrad/framework/safetensors.h"
#include "xgrad/framework/tensor.h"

namespace xgrad {

enum class WeightFormat { float32, bf16, int8 };

const char* weight_format_name(WeightFormat format);  // "float32", "bf16", "int8"
// std::invalid_argument naming `name` and the three formats for another name.
WeightFormat weight_format_from_string(const std::string& name);

// The suffix of the tensor that holds an int8 matrix's row scales.
inline constexpr const char* scale_suffix = "_scale";

// A matrix W [rows, columns] rounded to a weight format once, for many products y = x W^T.
class QuantizedMatrix {
 public:
  // `weight` [rows, columns] rounded to `format` (bf16 or int8; std::invalid_argument for
  // float32, or for a weight that is not a finite matrix). An int8 row of zeros has scale 0.
  QuantizedMatrix(const Array<float>& weight, WeightFormat format);
  // Tensor `name` of a safetensors file as stored there: BF16, or I8 with its F32
  // `name_scale`; file_error naming the file and the tensor when the scales are missing,
  // have another shape, or are negative or not finite.
  static QuantizedMatrix read(const safetensors::File& file, const std::string& name);

  WeightFormat format() const noexcept { return format_; }
  std::size_t rows() const noexcept { return rows_; }
  std::size_t columns() const noexcept { return columns_; }

  // The values the products use, as floats: what a float32 model with these weights holds.
  Array<float> dequantized() const;
  // Adds the matrix to a file being written as `name` (and `name_scale` for int8).
  void write(safetensors::Writer& writer, const std::string& name) const;

  // y[i][j] += sum_l x[i][l] W[j][l] for i < m, with each row of x rounded as the format
  // says; x is m x columns(), y m x rows(). A row of x that holds a NaN or an infinity gives a
  // row that is not finite, as a float product would: NaN for int8, whose rounding cannot
  // scale it; for bf16 what float arithmetic gives.
  void multiply_add(std::size_t m, const float* x, float* y) const;

 private:
  QuantizedMatrix(WeightFormat format, std::size_t rows, std::size_t columns);
  // int8, where AVX-512 VNNI is active: the row sums of W and W's panels, which its kernel reads.
  void prepare_vnni_kernel();

  WeightFormat format_;
  std::size_t rows_, columns_;
  std::unique_ptr<std::int8_t[]> int8_;      // int8: rows x columns
  std::unique_ptr<float[]> scales_;          // int8: one per row
  std::unique_ptr<std::int32_t[]> row_sums_; // int8 on VNNI: one per row
  std::unique_ptr<std::int8_t[]> vnni_panels_;  // int8 on VNNI: W again, in the kernel's order
  std::unique_ptr<std::uint16_t[]> bf16_;    // bf16: rows x columns, bit patterns
};

// y = x W^T + b with W quantised: x [..., columns], bias [rows] or undefined. For inference:
// it records no graph (require_inference). shape_error when the shapes do not fit.
Tensor<float> linear(const Tensor<float>& x, const QuantizedMatrix& weight, const Tensor<float>& bias = {});

// Products with quantised weights have no gradient: std::logic_error naming `operation` and
// the format when grad mode is on and one of `inputs` requires grad.
void require_inference(const char* operation, WeightFormat format, const std::vector<Tensor<float>>& inputs);

// A copy of a weights file in which every int8 matrix (an I8 `NAME` with its `NAME_scale`)
// is its F32 dequantised values: what a float32 model loads. Other tensors are kept as they
// are (BF16 loads as floats). file_error as QuantizedMatrix::read says, or for an I8 tensor
// that is not a matrix.
safetensors::File dequantized(const safetensors::File& file);

}  // namespace xgrad
