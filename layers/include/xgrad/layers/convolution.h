#pragma once
// The image layers over NCHW batches, as PyTorch's: Conv2d (parameters `weight` [out, in, kH, kW]
// and `bias` [out], PyTorch's default initialisation), MaxPool2d and AvgPool2d (no parameters),
// and PatchEmbedding, which cuts an image into patches and projects each to a vector as ViT does
// (timm's `proj.weight` and `proj.bias`).

#include <cstddef>

#include "xgrad/framework/convolution.h"
#include "xgrad/framework/pooling.h"
#include "xgrad/layers/module.h"

namespace xgrad::nn {

struct Conv2dOptions {
  std::size_t in_channels = 0;
  std::size_t out_channels = 0;
  Size2d kernel_size{3};
  Size2d stride{1};
  Size2d padding{0};
  Size2d dilation{1};
  bool bias = true;
};

template <class T = float>
class Conv2d : public Module<T> {
 public:
  // weight and bias uniform in +-1/sqrt(in_channels kH kW), as PyTorch initialises them.
  explicit Conv2d(const Conv2dOptions& options);

  // [B, in_channels, H, W] -> [B, out_channels, OH, OW] (xgrad::conv2d).
  Tensor<T> forward(const Tensor<T>& x) const;
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  const Conv2dOptions& options() const noexcept { return options_; }

  Tensor<T> weight;  // [out_channels, in_channels, kH, kW]
  Tensor<T> bias;    // [out_channels]; undefined when options.bias is false

 private:
  Conv2dOptions options_;
};

// A pooling op as a module without parameters: MaxPool2d and AvgPool2d below.
template <class T, class Options, Tensor<T> (*pool)(const Tensor<T>&, const Options&)>
class Pool2d : public Module<T> {
 public:
  explicit Pool2d(const Options& options = {}) : options_(options) {}
  Tensor<T> forward(const Tensor<T>& x) const { return pool(x, options_); }
  Tensor<T> operator()(const Tensor<T>& x) const { return forward(x); }
  const Options& options() const noexcept { return options_; }

 private:
  Options options_;
};

template <class T = float>
using MaxPool2d = Pool2d<T, MaxPool2dOptions, max_pool2d<T>>;
template <class T = float>
using AvgPool2d = Pool2d<T, AvgPool2dOptions, avg_pool2d<T>>;

struct PatchEmbeddingOptions {
  std::size_t in_channels = 0;
  std::size_t embed_dim = 0;
  Size2d patch_size{16};
  bool bias = true;
};

// [B, C, H, W] -> [B, regions, embed_dim]: a Conv2d whose kernel and stride are the patch size,
// its output grid flattened in row-major order (region r is grid row r / (W / patch width),
// column r % (W / patch width)).
template <class T = float>
class PatchEmbedding : public Module<T> {
 public:
  explicit PatchEmbedding(const PatchEmbeddingOptions& options);

  // An image whose sides are not multiples of the patch size is a shape_error (PyTorch's
  // convolution would drop the pixels left over).
  Tensor<T> forward(const Tensor<T>& images) const;
  Tensor<T> operator()(const Tensor<T>& images) const { return forward(images); }
  // The grid of regions an image of this height and width becomes: (H / patch height, W / patch width).
  Size2d grid_size(std::size_t height, std::size_t width) const;
  const PatchEmbeddingOptions& options() const noexcept { return options_; }

  Conv2d<T> proj;

 private:
  PatchEmbeddingOptions options_;
};

}  // namespace xgrad::nn
