#include "xgrad/models/image_classifier.h"

#include <algorithm>

#include "classifier_pooling.h"
#include "transformer_parts.h"
#include "xgrad/framework/elementwise.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/layout.h"
#include "xgrad/framework/loss.h"
#include "xgrad/framework/pooling.h"

namespace xgrad::models {
namespace {

constexpr const char* model_name = "ImageClassifier";

const config::KindNames<ImageStem> stem_names{{ImageStem::convolution, "convolution"}, {ImageStem::patches, "patches"}};

// The stages of a convolution stem halve the grid; more than this would leave no grid of a
// large image either, and 2^stages must not overflow.
constexpr std::size_t max_stages = 12;

// Channels of the convolutions of stage `stage`: doubling up to model_size in the last.
std::size_t stage_channels(const ImageClassifierOptions& o, std::size_t stage) {
  return o.model_size >> (o.stages - 1 - stage);
}

// The grid the stem makes; for options not yet checked too (estimated_parameters), so no
// shift past the width of a size and no division by 0.
Size2d grid_of(const ImageClassifierOptions& o) {
  const std::size_t shrink = o.stem == ImageStem::convolution ? std::size_t{1} << std::min<std::size_t>(o.stages, 63)
                                                              : std::max<std::size_t>(o.patch_size, 1);
  return {o.height / shrink, o.width / shrink};
}

void validate(const ImageClassifierOptions& o) {
  config::check_size(model_name, "channels", o.channels, 4096);
  config::check_size(model_name, "height", o.height, config::max_size);
  config::check_size(model_name, "width", o.width, config::max_size);
  config::check_size(model_name, "classes", o.classes, config::max_vocabulary);
  config::check_size(model_name, "model_size", o.model_size, config::max_size);
  config::check_size(model_name, "stages", o.stages, max_stages);
  config::check_size(model_name, "convolutions_per_stage", o.convolutions_per_stage, 16);
  config::check_size(model_name, "patch_size", o.patch_size, config::max_size);
  config::check_size(model_name, "heads", o.heads, o.model_size);
  config::check_size(model_name, "feedforward_size", o.feedforward_size, config::max_size);
  config::check_size(model_name, "attention_size", o.attention_size, config::max_size);
  if (o.encoder_layers > 64) {
    throw std::invalid_argument(detail::message(model_name, ": encoder_layers is ", o.encoder_layers, "; expected 0 to 64"));
  }
  config::check_dropout(model_name, o.dropout);
  if (o.stem == ImageStem::convolution) {
    const std::size_t shrink = std::size_t{1} << o.stages, first = std::size_t{1} << (o.stages - 1);
    if (o.height % shrink != 0 || o.width % shrink != 0) {
      throw std::invalid_argument(detail::message(model_name, ": ", o.stages, " stages halve the grid ", o.stages,
                                                  " times, which a ", o.height, " x ", o.width,
                                                  " image does not allow; its sides must be multiples of ", shrink));
    }
    if (o.model_size % first != 0) {
      throw std::invalid_argument(detail::message(model_name, ": model_size ", o.model_size, " cannot be halved ",
                                                  o.stages - 1, " times for the first stages' channels"));
    }
  } else if (o.height % o.patch_size != 0 || o.width % o.patch_size != 0) {
    throw std::invalid_argument(detail::message(model_name, ": patch_size ", o.patch_size, " does not divide the ",
                                                o.height, " x ", o.width, " image"));
  }
  if (o.encoder_layers > 0 && o.model_size % o.heads != 0) {
    throw std::invalid_argument(detail::message(model_name, ": heads ", o.heads, " does not divide model_size ", o.model_size));
  }
  if (o.model_size % 4 != 0) {
    throw std::invalid_argument(detail::message(model_name, ": model_size ", o.model_size,
                                                " is not a multiple of 4, which 2-D positions need"));
  }
  config::check_parameter_count(model_name, estimated_parameters(o));
}

// The options of the encoder stack over the regions: pre-norm, as the Transformer classifier's.
nn::TransformerStackOptions encoder_options(const ImageClassifierOptions& o) {
  return {.layer = {.d_model = o.model_size,
                    .nhead = o.heads,
                    .dim_feedforward = o.feedforward_size,
                    .dropout = o.dropout,
                    .norm_first = true},
          .num_layers = o.encoder_layers,
          .final_norm = true};
}

}  // namespace

std::string to_string(ImageStem stem) { return config::name_of(stem, stem_names); }
ImageStem image_stem_from_string(const std::string& name) { return config::kind_named("stem", name, stem_names); }

void to_json(nlohmann::json& json, ImageStem stem) { json = to_string(stem); }
void from_json(const nlohmann::json& json, ImageStem& stem) { stem = image_stem_from_string(json.get<std::string>()); }

double estimated_parameters(const ImageClassifierOptions& o) {
  const double d = double(o.model_size), a = double(o.attention_size);
  double stem = 0;
  if (o.stem == ImageStem::convolution) {
    double in = double(o.channels);
    // Unchecked options may ask for any number of stages; past max_stages the channels shift out.
    for (std::size_t stage = 0; stage < std::min(o.stages, max_stages); ++stage) {
      const double out = double(o.model_size >> std::min(o.stages - 1 - stage, std::size_t{63}));
      for (std::size_t k = 0; k < o.convolutions_per_stage; ++k, in = out) stem += 9 * in * out + 5 * out;  // + the norm's
    }
  } else {
    stem = double(o.channels) * double(o.patch_size) * double(o.patch_size) * d + d;
  }
  // The fixed table of 2-D positions counts too: it is allocated like the parameters and grows
  // with the grid, which a configuration could make as large as it likes.
  const double positions = double(grid_of(o).height) * double(grid_of(o).width) * d;
  const double encoder =
      o.encoder_layers > 0 ? config::encoder_stack_parameters(o.model_size, o.feedforward_size, o.encoder_layers) : 0.0;
  const double pooling = a + a * a + d * a + a + a;
  return stem + positions + encoder + pooling + (d + 1) * double(o.classes);
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ImageClassifierOptions, channels, height, width, classes, stem, model_size, stages,
                                   convolutions_per_stage, patch_size, encoder_layers, heads, feedforward_size,
                                   attention_size, dropout)

std::string to_json(const ImageClassifierOptions& options) { return config::write(options); }

ImageClassifierOptions image_classifier_options_from_json(const std::string& text) {
  const ImageClassifierOptions options = config::read<ImageClassifierOptions>(text);
  validate(options);
  return options;
}

template <class T>
ConvolutionBlock<T>::ConvolutionBlock(std::size_t in_channels, std::size_t out_channels)
    : conv({.in_channels = in_channels, .out_channels = out_channels, .kernel_size = 3, .padding = 1, .bias = false}),
      norm({.num_features = out_channels}) {
  this->register_module("conv", conv);
  this->register_module("norm", norm);
}

template <class T>
Tensor<T> ConvolutionBlock<T>::forward(const Tensor<T>& x, bool pool) const {
  // Max-pooling and the ReLU commute (both keep order), so pooling first rectifies a quarter
  // of the values, with the same result and gradient.
  return pool ? relu(max_pool2d(norm(conv(x)), {.kernel_size = 2})) : relu(norm(conv(x)));
}

template <class T>
ImageClassifier<T>::ImageClassifier(const ImageClassifierOptions& options)
    : options_((validate(options), options)),
      grid_(grid_of(options)),
      positions_({.height = grid_.height, .width = grid_.width, .dim = options.model_size}),
      pooling_({.query_size = options.attention_size, .key_size = options.model_size, .attention_size = options.attention_size}),
      dropout_(options.dropout),
      output_({.in_features = options.model_size, .out_features = options.classes}) {
  if (options.stem == ImageStem::convolution) {
    std::size_t in = options.channels;
    for (std::size_t stage = 0; stage < options.stages; ++stage) {
      for (std::size_t k = 0; k < options.convolutions_per_stage; ++k) {
        stem_.emplace_back(in, stage_channels(options, stage));
        in = stage_channels(options, stage);
      }
    }
    this->register_module("stem", stem_);
  } else {
    patches_ = std::make_unique<nn::PatchEmbedding<T>>(nn::PatchEmbeddingOptions{
        .in_channels = options.channels, .embed_dim = options.model_size, .patch_size = options.patch_size});
    this->register_module("patches", *patches_);
  }
  if (options.encoder_layers > 0) {
    encoder_ = std::make_unique<nn::TransformerEncoder<T>>(encoder_options(options));
    this->register_module("encoder", *encoder_);
  }
  query = this->register_parameter("query", initial_pooling_query<T>(options.attention_size));
  this->register_module("pooling", pooling_);
  this->register_module("dropout", dropout_);
  this->register_module("output", output_);
}

template <class T>
Tensor<T> ImageClassifier<T>::regions(const Tensor<T>& images) const {
  const Shape& shape = images.shape();
  if (shape.size() != 4 || shape[1] != options_.channels || shape[2] != options_.height || shape[3] != options_.width) {
    throw shape_error(detail::message(model_name, ": images of shape ", shape, "; the model reads [B, ",
                                      options_.channels, ", ", options_.height, ", ", options_.width, "]"));
  }
  if (patches_) return (*patches_)(images);
  Tensor<T> x = images;
  for (std::size_t k = 0; k < stem_.size(); ++k) x = stem_[k].forward(x, (k + 1) % options_.convolutions_per_stage == 0);
  return nn::regions_of_grid(x);
}

template <class T>
ImageClassification<T> ImageClassifier<T>::forward(const Tensor<T>& images) const {
  Tensor<T> regions_seen = positions_(regions(images));
  if (encoder_) regions_seen = (*encoder_)(dropout_(regions_seen));
  // Every image has all its regions: no padding to mask.
  const Pooled<T> pooled =
      attention_pool(query, pooling_, regions_seen, std::vector<std::size_t>(images.shape()[0], grid_.height * grid_.width));
  return {output_(dropout_(pooled.summary)), pooled.weights};
}

template <class T>
Tensor<T> ImageClassifier<T>::loss(const Tensor<T>& images, const Indices& labels, double label_smoothing) const {
  return cross_entropy(forward(images).logits, labels, {.label_smoothing = label_smoothing});
}

template class ConvolutionBlock<float>;
template class ConvolutionBlock<double>;
template class ImageClassifier<float>;
template class ImageClassifier<double>;

}  // namespace xgrad::models
