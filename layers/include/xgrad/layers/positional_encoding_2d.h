#pragma once
// Positions on a 2-D grid of regions (a feature map's cells, an image's patches), added to the
// regions' vectors [B, height * width, dim] in row-major order, so that attention over the
// regions can tell where each one lies.
//
// Sinusoidal: DETR's convention (PositionEmbeddingSine without normalisation), with positions
// counted from 0: channels [0, dim/2) encode the row and [dim/2, dim) the column, each half
// with the 1-D encoding of width d = dim/2 (SinusoidalPositionalEncoding, positional_encoding.h):
//   half[2i] = sin(p / 10000^(2i/d)), half[2i+1] = cos(p / 10000^(2i/d)).
// Learned: one table [height * width, dim] (`pos_embed`, as timm's ViT, without its batch axis,
// and drawn as timm draws it, not as nn.Embedding like LearnedPositionalEncoding's), or a table
// per axis whose rows are summed, row_embed [height, dim] + col_embed [width, dim]: fewer
// parameters, and a row's cells share what they learn about the row.

#include <cstddef>

#include "xgrad/layers/module.h"

namespace xgrad::nn {

// The sinusoidal encodings of a height x width grid: [height * width, dim]; dim must be a
// positive multiple of 4 (std::invalid_argument naming dim otherwise).
template <class T>
Array<T> sinusoidal_positions_2d(std::size_t height, std::size_t width, std::size_t dim);

struct PositionalEncoding2dOptions {
  std::size_t height = 0;  // grid rows
  std::size_t width = 0;   // grid columns
  std::size_t dim = 0;     // channels of each region's vector
};

// x [B, height * width, dim] -> x + the fixed sinusoidal encodings. No parameters, nothing saved.
template <class T = float>
class SinusoidalPositionalEncoding2d : public Module<T> {
 public:
  explicit SinusoidalPositionalEncoding2d(const PositionalEncoding2dOptions& options);
  Tensor<T> forward(const Tensor<T>& x) const;
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  const PositionalEncoding2dOptions& options() const noexcept { return options_; }
  const Tensor<T>& encodings() const noexcept { return encodings_; }  // [height * width, dim]

 private:
  PositionalEncoding2dOptions options_;
  Tensor<T> encodings_;
};

struct LearnedPositionalEncoding2dOptions {
  std::size_t height = 0;
  std::size_t width = 0;
  std::size_t dim = 0;
  // A table per axis (row_embed + col_embed) instead of one per cell (pos_embed).
  bool per_axis = false;
};

// x [B, height * width, dim] -> x + the learned encodings; tables drawn from N(0, 0.02^2), as
// timm draws ViT's (timm truncates at two standard deviations).
template <class T = float>
class LearnedPositionalEncoding2d : public Module<T> {
 public:
  explicit LearnedPositionalEncoding2d(const LearnedPositionalEncoding2dOptions& options);
  Tensor<T> forward(const Tensor<T>& x) const;
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  // The encodings [height * width, dim], in the graph of the tables.
  Tensor<T> encodings() const;
  const LearnedPositionalEncoding2dOptions& options() const noexcept { return options_; }

  Tensor<T> pos_embed;  // [height * width, dim]; undefined with per_axis
  Tensor<T> row_embed;  // [height, dim]; only with per_axis
  Tensor<T> col_embed;  // [width, dim]; only with per_axis

 private:
  LearnedPositionalEncoding2dOptions options_;
};

}  // namespace xgrad::nn
