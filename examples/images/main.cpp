// xgrad-images: trains, evaluates and runs an image classifier that attends over regions of
// the image (models/image_classifier.h): a convolutional stem (or ViT's patches) makes a grid
// of region vectors, self-attention may relate them, and a learned query's additive attention
// pools them; predict can draw where it looked.
//
//   xgrad-images train --images F --labels F --out DIR [--valid-split X] [--stem S] [...]
//   xgrad-images eval --model DIR --images F --labels F
//   xgrad-images predict --model DIR --images F [--labels F] [--first N] [--count N] [--attention-svg FILE]
//
// Images are IDX files as MNIST and Fashion-MNIST ship them, plain or gzip-compressed: grey
// bytes [N, height, width] and labels [N] (models/image_data.h). Training holds out a seeded
// --valid-split of its images to choose the kept weights. A model directory holds
// config.json (the model's options, "architecture": "image"), labels.json (the class names),
// model.safetensors (the weights with the best validation accuracy), checkpoint.safetensors
// (what --resume needs), log.csv, run.lock and run.json (run_directory.h); each is written
// atomically.

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <xgrad/framework.h>
#include <xgrad/models/image_classifier.h>
#include <xgrad/models/image_data.h>
#include <xgrad/models/metrics.h>
#include <xgrad/models/model_directory.h>

#include "cli.h"
#include "data_checks.h"
#include "svg.h"
#include "training_program.h"

namespace {

using namespace xgrad;
namespace fs = std::filesystem;

struct TrainFlags {
  fs::path images, labels;
  double valid_split = 0.1;
  std::string stem = "convolution";
  std::size_t model_size = 64, stages = 2, convolutions_per_stage = 1, patch_size = 4;
  std::size_t encoder_layers = 1, heads = 4, feedforward = 128, attention_size = 64;
  std::string class_names;  // comma-separated; empty: the label numbers
  bool flip = false;
  cli::TrainingFlags run{.epochs = 10, .batch = 64, .dropout = 0.1, .clip = 5.0};
};

struct UseFlags {
  fs::path model, images, labels, attention_svg;
  std::size_t threads = 2, batch = 256, first = 0, count = 10;
};

models::LabelledImages read_images(const fs::path& images, const fs::path& labels) {
  return cli::building("the images of " + images.string(),
                       [&] { return models::read_labelled_images(images.string(), labels.string()); });
}

// The images of `rows`, in that order.
models::LabelledImages subset(const models::LabelledImages& images, const std::vector<std::size_t>& rows) {
  models::LabelledImages chosen{.height = images.height, .width = images.width, .pixels = {}, .labels = {}};
  const std::size_t pixels = images.height * images.width;
  chosen.pixels.reserve(rows.size() * pixels);
  for (std::size_t row : rows) {
    const auto first = images.pixels.begin() + static_cast<std::ptrdiff_t>(row * pixels);
    chosen.pixels.insert(chosen.pixels.end(), first, first + static_cast<std::ptrdiff_t>(pixels));
    chosen.labels.push_back(images.labels[row]);
  }
  return chosen;
}

// A seeded random `fraction` of `data` moved into a new held-out set.
models::LabelledImages hold_out(models::LabelledImages& data, const fs::path& images_path, double fraction,
                                std::uint64_t seed) {
  std::vector<std::size_t> order(data.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  Generator generator(seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[generator.below(i)]);
  const auto held = static_cast<std::size_t>(fraction * double(order.size()));
  if (held == 0) {
    throw file_error(detail::message(images_path.string(), ": --valid-split ", fraction, " of its ", order.size(),
                                     " images holds out none for validation; give a larger --valid-split"));
  }
  std::vector<std::size_t> kept(order.begin() + static_cast<std::ptrdiff_t>(held), order.end());
  order.resize(held);
  std::sort(order.begin(), order.end());
  std::sort(kept.begin(), kept.end());
  models::LabelledImages held_out = subset(data, order);
  data = subset(data, kept);
  return held_out;
}

// A file_error unless every label of `data` names one of the model's `classes`.
void require_known_labels(const models::LabelledImages& data, const fs::path& labels_path, std::size_t classes) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data.labels[i] < 0 || static_cast<std::size_t>(data.labels[i]) >= classes) {
      throw file_error(detail::message(labels_path.string(), ": label ", data.labels[i], " of image ", i,
                                       "; the model knows ", classes, " classes (0 to ", classes - 1, ")"));
    }
  }
}

// A file_error unless the images have the size the model reads.
void require_model_size(const models::LabelledImages& data, const fs::path& images_path,
                        const models::ImageClassifierOptions& options) {
  if (data.height != options.height || data.width != options.width) {
    throw file_error(detail::message(images_path.string(), ": images of ", data.height, " x ", data.width,
                                     "; the model reads ", options.height, " x ", options.width));
  }
}

// The class names --class-names gives, or the numbers 0 to the largest label.
models::LabelSet class_names(const TrainFlags& flags, const models::LabelledImages& data) {
  const std::int64_t largest = *std::max_element(data.labels.begin(), data.labels.end());
  std::vector<std::string> names;
  if (flags.class_names.empty()) {
    for (std::int64_t label = 0; label <= largest; ++label) names.push_back(std::to_string(label));
  } else {
    std::istringstream list(flags.class_names);
    for (std::string name; std::getline(list, name, ',');) names.push_back(name);
    if (static_cast<std::int64_t>(names.size()) <= largest) {
      throw cli::UsageError(detail::message("--class-names gives ", names.size(), " names, but ", flags.labels.string(),
                                            " holds label ", largest, "; give one name for each of the classes 0 to ",
                                            largest));
    }
  }
  try {
    return models::LabelSet(std::move(names));
  } catch (const std::invalid_argument& e) {
    throw cli::UsageError(std::string("--class-names: ") + e.what());
  }
}

// The flags that decide the model: a resumed run must give the same.
std::vector<cli::ModelFlag> model_flags(const TrainFlags& flags) {
  std::vector<cli::ModelFlag> named{{"--stem", flags.stem}, {"--d-model", std::to_string(flags.model_size)}};
  if (flags.stem == "convolution") {
    named.insert(named.end(), {{"--stages", std::to_string(flags.stages)},
                                {"--convs-per-stage", std::to_string(flags.convolutions_per_stage)}});
  } else {
    named.push_back({"--patch-size", std::to_string(flags.patch_size)});
  }
  named.insert(named.end(), {{"--encoder-layers", std::to_string(flags.encoder_layers)},
                              {"--heads", std::to_string(flags.heads)},
                              {"--ff-size", std::to_string(flags.feedforward)},
                              {"--attention-size", std::to_string(flags.attention_size)},
                              {"--class-names", flags.class_names}});
  return named;
}

std::unique_ptr<models::ImageModel> load(const fs::path& dir, bool best_weights) {
  return cli::building("the model of " + dir.string(),
                       [&] { return models::load_image_model(models::ModelDirectory(dir), best_weights); });
}

// Each image of `batch` [B, 1, H, W] mirrored left to right with probability 1/2: clothes and
// shoes are the same class either way round.
void flip_some(Array<float>& batch, Generator& generator) {
  const std::size_t height = batch.shape()[2], width = batch.shape()[3];
  for (std::size_t image = 0; image < batch.shape()[0]; ++image) {
    if (generator.below(2) == 0) continue;
    float* pixels = batch.data() + image * height * width;
    for (std::size_t row = 0; row < height; ++row) std::reverse(pixels + row * width, pixels + (row + 1) * width);
  }
}

// The model's classification of `images` in batches (evaluation mode, no graph), passed to
// `use` with the rows of each batch.
template <class Use>
void classify_all(const models::ImageClassifier<float>& model, const models::LabelledImages& images, std::size_t batch,
                  Use&& use) {
  NoGradGuard no_graph;
  for (const models::Batch& rows : models::consecutive_batches(images.size(), batch)) {
    use(rows, model.forward(Tensor<float>(models::image_batch<float>(images, rows))));
  }
}

models::ConfusionMatrix confusion(const models::ImageClassifier<float>& model, const models::LabelledImages& images,
                                  std::size_t batch) {
  models::ConfusionMatrix matrix(model.options().classes);
  classify_all(model, images, batch, [&](const models::Batch& rows, const models::ImageClassification<float>& result) {
    const Indices predicted = argmax(result.logits, -1);
    for (std::size_t i = 0; i < rows.size(); ++i) matrix.add(images.labels[rows[i]], predicted(i));
  });
  return matrix;
}

int train(const TrainFlags& flags) {
  set_num_threads(static_cast<int>(flags.run.threads));
  cli::RunDirectory directory(flags.run.out,
                              {models::model_file::config, models::model_file::labels, models::model_file::weights},
                              flags.run.resume, model_flags(flags));
  models::LabelledImages train_data = read_images(flags.images, flags.labels);
  const models::LabelledImages valid_data = hold_out(train_data, flags.images, flags.valid_split, flags.run.seed);
  manual_seed(flags.run.seed);
  const std::unique_ptr<models::ImageModel> loaded = cli::begin_run<models::ImageModel>(
      directory, flags.run.resume, [&] { return load(directory.path(), false); },
      [&] {
        models::LabelSet labels = class_names(flags, train_data);
        const models::ImageClassifierOptions options{.channels = 1,
                                                     .height = train_data.height,
                                                     .width = train_data.width,
                                                     .classes = labels.size(),
                                                     .stem = models::image_stem_from_string(flags.stem),
                                                     .model_size = flags.model_size,
                                                     .stages = flags.stages,
                                                     .convolutions_per_stage = flags.convolutions_per_stage,
                                                     .patch_size = flags.patch_size,
                                                     .encoder_layers = flags.encoder_layers,
                                                     .heads = flags.heads,
                                                     .feedforward_size = flags.feedforward,
                                                     .attention_size = flags.attention_size,
                                                     .dropout = flags.run.dropout};
        return cli::new_model<models::ImageModel>(
            model_flags(flags), [&] { return std::make_unique<models::ImageClassifier<float>>(options); },
            std::move(labels));
      },
      [&](const models::ImageModel& built) {
        built.labels.save(directory.file(models::model_file::labels));
        write_file_atomically(directory.file(models::model_file::config), models::image_configuration(*built.model));
      });
  models::ImageClassifier<float>& model = *loaded->model;
  require_model_size(train_data, flags.images, model.options());
  require_known_labels(train_data, flags.labels, model.options().classes);
  std::printf("%zu training and %zu validation images of %zu x %zu; %zu classes, a %zu x %zu grid of regions\n",
              train_data.size(), valid_data.size(), train_data.height, train_data.width, model.options().classes,
              model.grid().height, model.grid().width);

  // Every image is one example of the same size: the sampler's batches are plain random ones.
  const std::vector<std::size_t> sizes(train_data.size(), 1);
  return cli::train_model(
      model, flags.run, directory,
      {.lengths = sizes,
       .validation_columns = cli::classification_columns,
       .validate = [&] { return cli::classification_validation(confusion(model, valid_data, 256)); },
       .step =
           [&](const models::Batch& rows) {
             Array<float> images = models::image_batch<float>(train_data, rows);
             if (flags.flip) flip_some(images, default_generator());
             const Tensor<float> loss =
                 model.loss(Tensor<float>(std::move(images)), models::label_batch(train_data, rows), flags.run.label_smoothing);
             return training::StepOutput{loss, rows.size(), rows.size()};
           },
       .describe_best = cli::describe_accuracy});
}

// The model of --model for images of this size and labels, in evaluation mode.
std::unique_ptr<models::ImageModel> load_for(const UseFlags& flags, const models::LabelledImages& data) {
  std::unique_ptr<models::ImageModel> loaded = load(flags.model, true);
  loaded->model->eval();
  require_model_size(data, flags.images, loaded->model->options());
  if (!flags.labels.empty()) require_known_labels(data, flags.labels, loaded->model->options().classes);
  return loaded;
}

int evaluate(const UseFlags& flags) {
  set_num_threads(static_cast<int>(flags.threads));
  const models::LabelledImages data = read_images(flags.images, flags.labels);
  const std::unique_ptr<models::ImageModel> loaded = load_for(flags, data);
  const models::ConfusionMatrix matrix = cli::building("the predictions for " + flags.images.string(),
                                                       [&] { return confusion(*loaded->model, data, flags.batch); });
  std::printf("%zu images from %s\naccuracy %.2f%%, macro-F1 %.4f\n\n%s\nconfusion matrix (rows: true class, columns: "
              "predicted)\n",
              data.size(), flags.images.c_str(), 100 * matrix.accuracy(), matrix.macro_f1(),
              matrix.report(loaded->labels.names()).c_str());
  const std::size_t classes = matrix.classes();
  for (std::size_t truth = 0; truth < classes; ++truth) {
    std::printf("%-12s", loaded->labels.name(static_cast<std::int64_t>(truth)).c_str());
    for (std::size_t predicted = 0; predicted < classes; ++predicted) {
      std::printf(" %5zu", matrix.count(static_cast<std::int64_t>(truth), static_cast<std::int64_t>(predicted)));
    }
    std::printf("\n");
  }
  return 0;
}

// The images without labels: predict needs none.
models::LabelledImages read_unlabelled_images(const fs::path& images) {
  models::IdxArray array = cli::building("the images of " + images.string(), [&] {
    return models::read_idx(images.string(), 3);
  });
  return {.height = array.dimensions[1],
          .width = array.dimensions[2],
          .pixels = std::move(array.values),
          .labels = std::vector<std::int64_t>(array.dimensions[0], 0)};
}

int predict(const UseFlags& flags) {
  cli::refuse_unwritable_output_file("--attention-svg", flags.attention_svg);
  set_num_threads(static_cast<int>(flags.threads));
  const bool labelled = !flags.labels.empty();
  const models::LabelledImages all = labelled ? read_images(flags.images, flags.labels) : read_unlabelled_images(flags.images);
  if (flags.first >= all.size() || flags.count > all.size() - flags.first) {
    throw cli::UsageError(detail::message("--first ", flags.first, " --count ", flags.count, " reaches past the ",
                                          all.size(), " images of ", flags.images.string()));
  }
  std::vector<std::size_t> rows(flags.count);
  for (std::size_t i = 0; i < flags.count; ++i) rows[i] = flags.first + i;
  const models::LabelledImages chosen = subset(all, rows);
  const std::unique_ptr<models::ImageModel> loaded = load_for(flags, chosen);
  const models::ImageClassifier<float>& model = *loaded->model;
  const Size2d grid = model.grid();
  std::vector<cli::AttendedImage> pictures;
  classify_all(model, chosen, flags.batch, [&](const models::Batch& batch, const models::ImageClassification<float>& result) {
    const Tensor<float> probabilities = softmax(result.logits, -1);
    const Indices predicted = argmax(result.logits, -1);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const std::size_t row = batch[i];
      const std::string& label = loaded->labels.name(predicted(i));
      const double probability = probabilities.value()(i, predicted(i));
      std::printf("%zu\t%s\t%.4f", rows[row], label.c_str(), probability);
      if (labelled) std::printf("\t%s", loaded->labels.name(chosen.labels[row]).c_str());
      std::printf("\n");
      if (!flags.attention_svg.empty()) {
        const std::size_t pixels = chosen.height * chosen.width, regions = grid.height * grid.width;
        const auto image = chosen.pixels.begin() + static_cast<std::ptrdiff_t>(row * pixels);
        const float* weights = result.attention.data() + i * regions;
        char caption[160];
        std::snprintf(caption, sizeof caption, "#%zu: %s (%.2f)%s%s", rows[row], label.c_str(), probability,
                      labelled ? ", truly " : "", labelled ? loaded->labels.name(chosen.labels[row]).c_str() : "");
        pictures.push_back({.height = chosen.height,
                            .width = chosen.width,
                            .pixels = std::vector<std::uint8_t>(image, image + static_cast<std::ptrdiff_t>(pixels)),
                            .grid_rows = grid.height,
                            .grid_columns = grid.width,
                            .weights = std::vector<float>(weights, weights + regions),
                            .caption = caption});
      }
    }
    cli::flush_standard_output();  // a reader sees each batch's answers as they come, and a lost write stops the program
  });
  if (!flags.attention_svg.empty()) {
    write_file_atomically(flags.attention_svg, cli::image_attention_svg(pictures));
    std::fprintf(stderr, "attention over each image written to %s\n", flags.attention_svg.c_str());
  }
  return 0;
}

void declare_use_flags(cli::Command& command, UseFlags& flags) {
  command.path("--model", flags.model, "DIR", "model directory").required();
  command.path("--images", flags.images, "FILE", "IDX images [N, height, width] of the size the model reads").required();
  command.size("--threads", flags.threads, "N", "threads for matrix products").range(1, 256);
  command.size("--batch", flags.batch, "N", "images per batch").range(1, 65536);
}

}  // namespace

int main(int argc, char** argv) {
  cli::Program program("xgrad-images",
                       "Trains and runs an image classifier that attends over regions of the image (IDX files, as "
                       "MNIST and Fashion-MNIST ship them).");
  TrainFlags train_flags;
  cli::Command& train_command = program.subcommand("train", "Train a classifier on labelled IDX images.");
  train_command.path("--images", train_flags.images, "FILE", "training images (IDX, [N, height, width] bytes)").required();
  train_command.path("--labels", train_flags.labels, "FILE", "their labels (IDX, [N] bytes)").required();
  cli::declare_run_flags(train_command, train_flags.run, "images");
  train_command.real("--valid-split", train_flags.valid_split, "X", "fraction of the images held out for validation")
      .above(0, 0.9);
  train_command.choice("--stem", train_flags.stem, {"convolution", "patches"},
                       "regions from convolution stages, or from patches (ViT)");
  train_command.size("--d-model", train_flags.model_size, "N", "width of a region's vector (the last stage's channels)")
      .range(1, 4096);
  train_command.size("--stages", train_flags.stages, "N", "convolution: stages, each halving the grid").range(1, 8);
  train_command.size("--convs-per-stage", train_flags.convolutions_per_stage, "N", "convolution: 3x3 convolutions a stage")
      .range(1, 8);
  train_command.size("--patch-size", train_flags.patch_size, "N", "patches: a region's side in pixels").range(1, 4096);
  train_command.only_with("--stages", "--stem", "convolution");
  train_command.only_with("--convs-per-stage", "--stem", "convolution");
  train_command.only_with("--patch-size", "--stem", "patches");
  train_command.size("--encoder-layers", train_flags.encoder_layers, "N",
                     "self-attention layers over the regions, with 2-D positions (0: none)")
      .range(0, 64);
  train_command.size("--heads", train_flags.heads, "N", "self-attention heads (they must divide --d-model)").range(1, 256);
  train_command.size("--ff-size", train_flags.feedforward, "N", "inner width of the self-attention layers' feed-forward")
      .range(1, 65536);
  train_command.size("--attention-size", train_flags.attention_size, "N", "size of the additive attention that pools the regions")
      .range(1, 4096);
  train_command.text("--class-names", train_flags.class_names, "A,B,...",
                     "names of the classes 0, 1, ... (default: the numbers)");
  train_command.flag("--flip", train_flags.flip, "mirror each training image left to right with probability 1/2");

  UseFlags eval_flags;
  cli::Command& eval_command =
      program.subcommand("eval", "Accuracy, macro-F1, per-class scores and the confusion matrix of labelled images.");
  declare_use_flags(eval_command, eval_flags);
  eval_command.path("--labels", eval_flags.labels, "FILE", "their labels (IDX, [N] bytes)").required();

  UseFlags predict_flags;
  cli::Command& predict_command = program.subcommand(
      "predict", "Classify images --first to --first + --count - 1 (index, class and probability per line).");
  declare_use_flags(predict_command, predict_flags);
  predict_command.path("--labels", predict_flags.labels, "FILE", "their labels, to print the true class beside each");
  predict_command.size("--first", predict_flags.first, "N", "index of the first image to classify");
  predict_command.size("--count", predict_flags.count, "N", "how many images to classify").range(1, 1000000);
  predict_command.path("--attention-svg", predict_flags.attention_svg, "FILE",
                       "draw each image with the attention over its regions laid over it");

  return cli::run_main(program, argc, argv, [&](const std::string& subcommand) {
    if (subcommand == "train") return train(train_flags);
    if (subcommand == "eval") return evaluate(eval_flags);
    return predict(predict_flags);
  });
}
