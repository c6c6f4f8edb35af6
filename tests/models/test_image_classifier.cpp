// The image classifier that attends over regions: it learns which quadrant of a noisy image
// holds a bright square to >= 99% in seconds, with the attention of the convolutional model
// peaking on the square's region or a neighbour that sees it, and through self-attention over
// the regions with either stem; save -> load gives identical predictions (batch norm's running
// statistics included); gradients are correct; options and inputs that cannot work are refused.
#define BOOST_TEST_MODULE image_classifier
#include "xgrad_test.h"

#include "square_task.h"
#include "xgrad/framework/gradcheck.h"
#include "xgrad/framework/optim.h"
#include "xgrad/models/image_classifier.h"
#include "xgrad/models/model_directory.h"

using namespace xgrad;
using namespace xgrad::models;
using namespace xgrad::testing::squares;
using xgrad::testing::error_message;

namespace {

ImageClassifierOptions small_options(ImageStem stem = ImageStem::convolution, std::size_t encoder_layers = 0) {
  return {.height = side, .width = side, .classes = classes, .stem = stem, .model_size = 16, .encoder_layers = encoder_layers,
          .heads = 2, .feedforward_size = 32, .attention_size = 16, .dropout = 0.0};
}

struct Learned {
  double accuracy;  // on held-out images
  // For each class, the share of its held-out images whose attention peaks on a region the
  // square is in, or next to one (within `margin` regions).
  std::vector<double> peaks;
};

// Trains `model` with Adam for `epochs` passes over 2000 images, 50 a batch, and measures it
// on 400 others.
Learned learn_squares(ImageClassifier<float>& model, double lr, int epochs, std::size_t margin) {
  Generator data(2);
  const SquareImages train = square_images(2000, data);
  const SquareImages held_out = square_images(400, data);
  optim::Adam<float> adam(model.named_parameters(), {.lr = lr});
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (const Batch& rows : consecutive_batches(train.images.size(), 50)) {
      Tensor<float> loss = model.loss(Tensor<float>(image_batch<float>(train.images, rows)), label_batch(train.images, rows));
      loss.backward();
      adam.step();
      adam.zero_grad();
    }
  }
  model.eval();
  const Batch all = consecutive_batches(held_out.images.size(), held_out.images.size())[0];
  const ImageClassification<float> result = model.forward(Tensor<float>(image_batch<float>(held_out.images, all)));
  const Indices predicted = argmax(result.logits, -1);
  const std::size_t regions = model.grid().height * model.grid().width, region_side = side / model.grid().height;
  BOOST_TEST_REQUIRE((result.attention.shape() == Shape{all.size(), regions}));
  std::size_t correct = 0;
  std::vector<double> peaks_on_square(classes, 0.0), images_of_class(classes, 0.0);
  for (std::size_t i = 0; i < all.size(); ++i) {
    correct += predicted(i) == held_out.images.labels[i];
    const float* weights = result.attention.data() + i * regions;
    const auto peak = static_cast<std::size_t>(std::max_element(weights, weights + regions) - weights);
    const auto label = static_cast<std::size_t>(held_out.images.labels[i]);
    peaks_on_square[label] += square_near_region(held_out, i, peak, region_side, margin);
    images_of_class[label] += 1;
  }
  for (std::size_t c = 0; c < classes; ++c) peaks_on_square[c] /= images_of_class[c];
  return {double(correct) / double(all.size()), peaks_on_square};
}

}  // namespace

// Convolutions alone: a region's vector sees 3 pixels past its 4 x 4 block (two 3x3
// convolutions, each followed by a 2x2 max-pool), so the attention peaks on the square's region
// or on a neighbour whose receptive field holds it. It does so for every class but at most one:
// the model may recognise one quadrant by the absence of a square in the others, and then its
// attention rests on a place of its own choosing (the bottom row, with this seed).
BOOST_AUTO_TEST_CASE(learns_the_quadrant_of_a_square_and_attends_to_it) {
  manual_seed(1);
  ImageClassifier<float> model(small_options(ImageStem::convolution, 0));
  const Learned learned = learn_squares(model, 0.01, 3, 1);
  std::size_t attended_classes = 0;
  for (std::size_t c = 0; c < classes; ++c) {
    BOOST_TEST_MESSAGE("class " << c << ": attention peaks on or next to the square in " << learned.peaks[c]);
    attended_classes += learned.peaks[c] >= 0.95;
  }
  BOOST_TEST_MESSAGE("accuracy " << learned.accuracy);
  BOOST_TEST(learned.accuracy >= 0.99);
  BOOST_TEST(attended_classes >= classes - 1);
}

// With self-attention the regions exchange what they hold, so the pooling may read the square
// from anywhere: accuracy alone, through both stems.
BOOST_AUTO_TEST_CASE(learns_the_quadrant_through_self_attention_over_the_regions) {
  for (ImageStem stem : {ImageStem::convolution, ImageStem::patches}) {
    BOOST_TEST_CONTEXT(to_string(stem)) {
      manual_seed(1);
      ImageClassifier<float> model(small_options(stem, 1));
      const Learned learned = learn_squares(model, 0.01, 3, 0);
      BOOST_TEST_MESSAGE(to_string(stem) << " + self-attention: accuracy " << learned.accuracy);
      BOOST_TEST(learned.accuracy >= 0.99);
    }
  }
}

BOOST_AUTO_TEST_CASE(save_and_load_give_identical_predictions) {
  testing::TempDir dir;
  Generator data(5);
  const SquareImages made = square_images(20, data);
  const Tensor<float> images(image_batch<float>(made.images, consecutive_batches(20, 20)[0]));
  manual_seed(6);
  ImageClassifier<float> saved(small_options(ImageStem::convolution, 1));
  {
    // A step in training mode moves batch norm's running statistics away from their start.
    optim::Adam<float> adam(saved.named_parameters(), {.lr = 0.01});
    Tensor<float> loss = saved.loss(images, label_batch(made.images, consecutive_batches(20, 20)[0]));
    loss.backward();
    adam.step();
  }
  saved.eval();
  nn::save_state_dict(saved, dir.file("images.safetensors"));
  manual_seed(7);
  ImageClassifier<float> loaded(image_classifier_options_from_json(to_json(saved.options())));
  loaded.eval();
  BOOST_TEST(saved.forward(images).logits.value() != loaded.forward(images).logits.value());
  nn::load_state_dict(loaded, dir.file("images.safetensors"));
  const ImageClassification<float> before = saved.forward(images), after = loaded.forward(images);
  BOOST_TEST(before.logits.value() == after.logits.value());
  BOOST_TEST(before.attention.value() == after.attention.value());
}

BOOST_AUTO_TEST_CASE(gradients_through_both_stems) {
  Generator data(8);
  const SquareImages made = square_images(3, data);
  const Batch rows{0, 1, 2};
  const Tensor<double> images(image_batch<double>(made.images, rows));
  const Indices labels = label_batch(made.images, rows);
  for (ImageStem stem : {ImageStem::convolution, ImageStem::patches}) {
    BOOST_TEST_CONTEXT(to_string(stem)) {
      manual_seed(9);
      ImageClassifier<double> model({.height = 8, .width = 8, .classes = 3, .stem = stem, .model_size = 4,
                                     .patch_size = 4, .encoder_layers = 1, .heads = 2, .feedforward_size = 3,
                                     .attention_size = 3, .dropout = 0.0});
      // The 8 x 8 top-left corners of the square images.
      const Tensor<double> corners(slice(slice(images, 2, 0, 8), 3, 0, 8).value(), true);
      const GradcheckResult result =
          gradcheck([&](const std::vector<Tensor<double>>& x) { return model.loss(x[0], labels, 0.1); }, {corners},
                    {.names = model.named_parameters()});
      BOOST_TEST(result.passed, result.report);
    }
  }
}

BOOST_AUTO_TEST_CASE(configuration_and_input_errors) {
  const ImageClassifierOptions options = small_options(ImageStem::patches, 2);
  BOOST_TEST(to_json(image_classifier_options_from_json(to_json(options))) == to_json(options));
  BOOST_CHECK_THROW(image_stem_from_string("pixels"), std::invalid_argument);
  const auto refusal = [](const auto& change) {
    ImageClassifierOptions bad = small_options(ImageStem::convolution, 1);
    change(bad);
    return error_message<std::invalid_argument>([&] { image_classifier_options_from_json(to_json(bad)); });
  };
  BOOST_TEST(refusal([](auto& o) { o.classes = 0; }).find("classes is 0") != std::string::npos);
  BOOST_TEST(refusal([](auto& o) { o.heads = 3; }).find("heads 3 does not divide model_size 16") != std::string::npos);
  BOOST_TEST(refusal([](auto& o) { o.stages = 5; }).find("sides must be multiples of 32") != std::string::npos);
  BOOST_TEST(refusal([](auto& o) { o.model_size = 18, o.heads = 1, o.stages = 3; }).find("model_size 18 cannot be halved") != std::string::npos);
  BOOST_TEST(refusal([](auto& o) { o.model_size = 6, o.stages = 1, o.heads = 1, o.encoder_layers = 0; })
                 .find("not a multiple of 4") != std::string::npos);
  BOOST_TEST(refusal([](auto& o) { o.stem = ImageStem::patches, o.patch_size = 5; }).find("patch_size 5 does not divide") !=
             std::string::npos);
  BOOST_TEST(refusal([](auto& o) { o.model_size = 60000, o.encoder_layers = 64, o.stages = 1; }).find("parameters") !=
             std::string::npos);

  ImageClassifier<float> model(small_options());
  const std::string wrong_size = error_message<shape_error>([&] { model.forward(Tensor<float>::zeros({2, 1, 16, 15})); });
  BOOST_TEST(wrong_size.find("[2, 1, 16, 15]; the model reads [B, 1, 16, 16]") != std::string::npos, wrong_size);
  BOOST_CHECK_THROW(model.loss(Tensor<float>::zeros({1, 1, 16, 16}), Indices{4}), index_error);
}

BOOST_AUTO_TEST_CASE(a_model_directory_of_another_architecture_is_refused) {
  ImageClassifier<float> model(small_options());
  const std::string labels = LabelSet({"a", "b", "c", "d"}).to_json();
  std::string text_classifier = image_configuration(model);
  text_classifier.replace(text_classifier.find("\"image\""), 7, "\"rnn\"");
  const ModelFilesInMemory files("m", {{"config.json", text_classifier}, {"labels.json", labels}});
  const std::string refused = error_message<file_error>([&] { load_image_model(files, false); });
  BOOST_TEST(refused.find("m/config.json: \"architecture\" is \"rnn\"; expected \"image\"") != std::string::npos, refused);
  const ModelFilesInMemory unnamed("m", {{"config.json", to_json(model.options())}, {"labels.json", labels}});
  const std::string no_key = error_message<file_error>([&] { load_image_model(unnamed, false); });
  BOOST_TEST(no_key.find("m/config.json: no \"architecture\" key; expected \"image\"") != std::string::npos, no_key);
  const ModelFilesInMemory image_for_text("m", {{"config.json", image_configuration(model)}, {"labels.json", labels}});
  const std::string for_text = error_message<file_error>([&] { load_classification_model(image_for_text, false); });
  BOOST_TEST(for_text.find("\"architecture\" is \"image\"; expected \"rnn\" or \"transformer\"") != std::string::npos,
             for_text);
  const ModelFilesInMemory three_labels("m", {{"config.json", image_configuration(model)},
                                              {"labels.json", LabelSet({"a", "b", "c"}).to_json()}});
  const std::string miscounted = error_message<file_error>([&] { load_image_model(three_labels, false); });
  BOOST_TEST(miscounted.find("m/labels.json: 3 entries, but m/config.json has \"classes\": 4") != std::string::npos, miscounted);
  const ModelFilesInMemory image_files("m", {{"config.json", image_configuration(model)}, {"labels.json", labels}});
  const Size2d grid = load_image_model(image_files, false)->model->grid();
  BOOST_TEST((grid.height == 4 && grid.width == 4));
}
