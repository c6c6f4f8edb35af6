#pragma once
// An image classifier that looks at regions of the image, assembled from layers/:
//   stem: the image [B, C, H, W] becomes a grid of region vectors [B, regions, D]
//     convolution: `stages` stages, each `convolutions_per_stage` times Conv2d 3x3 (padding 1)
//       -> BatchNorm2d -> ReLU, then MaxPool2d 2; the channels double from stage to stage up
//       to D in the last, so 2 stages turn a 28 x 28 image into a 7 x 7 grid of D channels;
//     patches: PatchEmbedding (ViT's), one region per patch_size x patch_size patch;
//   -> + 2-D sinusoidal positions (DETR's), so that a region's vector says where it lies
//      (convolutions alone see only what is around them);
//   -> with encoder_layers > 0, a pre-norm TransformerEncoder in which the regions attend to
//      each other (multi-head self-attention);
//   -> pooling: a learned query attends over the regions with additive attention (Show,
//      Attend and Tell's attention over a CNN's grid); its weights are each region's share of
//      the summary, which is what a picture of where the model looked shows;
//   -> dropout -> Linear -> logits.
//
// Parameter names: stem.N.conv.* and stem.N.norm.* (N counts the convolutions over all
// stages; the norms' running_mean, running_var, num_batches_tracked are buffers) or
// patches.proj.*; encoder.layers.N.* and encoder.norm.*; query, pooling.query_projection.weight,
// pooling.key_projection.*, pooling.score.weight; output.weight and output.bias.

#include <cstddef>
#include <memory>
#include <string>

#include "xgrad/layers/attention.h"
#include "xgrad/layers/batch_norm.h"
#include "xgrad/layers/convolution.h"
#include "xgrad/layers/dropout.h"
#include "xgrad/layers/image_regions.h"
#include "xgrad/layers/linear.h"
#include "xgrad/layers/positional_encoding_2d.h"
#include "xgrad/layers/transformer.h"

namespace xgrad::models {

enum class ImageStem { convolution, patches };

std::string to_string(ImageStem stem);
ImageStem image_stem_from_string(const std::string& name);  // std::invalid_argument listing the choices

struct ImageClassifierOptions {
  std::size_t channels = 1;  // of the input images
  std::size_t height = 28;
  std::size_t width = 28;
  std::size_t classes = 10;
  ImageStem stem = ImageStem::convolution;
  std::size_t model_size = 64;              // D: the width of a region's vector; a multiple of 4
  std::size_t stages = 2;                   // convolution: halvings of the grid; D / 2^(stages-1) channels first
  std::size_t convolutions_per_stage = 1;   // convolution
  std::size_t patch_size = 4;               // patches: a region's side in pixels
  std::size_t encoder_layers = 1;           // self-attention layers over the regions (0: none)
  std::size_t heads = 4;                    // of the encoder's self-attention; must divide model_size
  std::size_t feedforward_size = 128;       // the encoder's inner width
  std::size_t attention_size = 64;          // the additive pooling's
  double dropout = 0.1;                     // in the encoder and before the output layer
};

// The options as JSON text and back (std::invalid_argument naming a missing or bad key, or
// an option that cannot work: a size of 0, heads not dividing model_size, an image that the
// stages or patches do not divide, a model_size that is not a multiple of 4).
std::string to_json(const ImageClassifierOptions& options);
ImageClassifierOptions image_classifier_options_from_json(const std::string& text);
// How many parameters the options ask for, which the configuration limits are checked against.
double estimated_parameters(const ImageClassifierOptions& options);

template <class T>
struct ImageClassification {
  Tensor<T> logits;     // [B, classes]
  Tensor<T> attention;  // [B, regions]: each region's pooling weight, regions in row-major grid order
};

// Conv2d -> BatchNorm2d -> ReLU: one convolution of the stem; with `pool`, a stage's last,
// followed by 2x2 max-pooling.
template <class T = float>
class ConvolutionBlock : public nn::Module<T> {
 public:
  ConvolutionBlock(std::size_t in_channels, std::size_t out_channels);
  Tensor<T> forward(const Tensor<T>& x, bool pool = false) const;

  nn::Conv2d<T> conv;  // 3x3, padding 1, no bias (the norm's shift replaces it)
  nn::BatchNorm2d<T> norm;
};

template <class T = float>
class ImageClassifier final : public nn::Module<T> {
 public:
  // std::invalid_argument naming the option for options that cannot work (as the JSON's).
  explicit ImageClassifier(const ImageClassifierOptions& options);

  // images [B, channels, height, width] (shape_error naming the model and both shapes otherwise).
  ImageClassification<T> forward(const Tensor<T>& images) const;
  // Mean cross-entropy of the batch's labels (ids in [0, classes)).
  Tensor<T> loss(const Tensor<T>& images, const Indices& labels, double label_smoothing = 0.0) const;
  // The grid of regions the attention weighs: (rows, columns).
  Size2d grid() const noexcept { return grid_; }
  // "image", as config.json records it.
  std::string architecture() const { return "image"; }
  std::string configuration() const { return to_json(options_); }
  const ImageClassifierOptions& options() const noexcept { return options_; }

  Tensor<T> query;  // [1, 1, attention_size]: the learned question the pooling asks of every region

 private:
  // [B, C, H, W] -> [B, regions, D].
  Tensor<T> regions(const Tensor<T>& images) const;

  ImageClassifierOptions options_;
  Size2d grid_;
  nn::ModuleList<T, ConvolutionBlock<T>> stem_;     // convolution only
  std::unique_ptr<nn::PatchEmbedding<T>> patches_;  // patches only
  nn::SinusoidalPositionalEncoding2d<T> positions_;
  std::unique_ptr<nn::TransformerEncoder<T>> encoder_;                // encoder_layers > 0 only
  nn::AdditiveAttention<T> pooling_;
  nn::Dropout<T> dropout_;
  nn::Linear<T> output_;
};

}  // namespace xgrad::models
