#include "xgrad/models/model_directory.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/file_io.h"
#include "xgrad/framework/utf8.h"
#include "xgrad/layers/module.h"

namespace xgrad::models {
namespace {

template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw file_error(detail::message(std::forward<Parts>(parts)...));
}

// config.json's text, checked for size and encoding.
std::string configuration_text(const ModelSource& files) {
  std::string text = files.text(model_file::config, max_configuration_file_size);
  require_utf8(text, files.label(model_file::config));
  return text;
}

// The configuration, with the parser's std::invalid_argument (naming the key) turned into a
// file_error naming the file, and its size checked against the limits before any allocation.
template <class Options>
Options read_configuration(const ModelSource& files, const std::string& text, Options (*parse)(const std::string&),
                           const ModelLimits& limits) {
  const std::string label = files.label(model_file::config);
  Options options;
  try {
    options = parse(text);
  } catch (const std::invalid_argument& e) {
    fail(label, ": ", e.what());
  }
  if (const double parameters = estimated_parameters(options); parameters > limits.max_parameters) {
    fail(label, ": asks for about ", parameters, " parameters; the limit is ", limits.max_parameters);
  }
  return options;
}

constexpr const char* architecture_key = "architecture";

// A configuration's architecture, one of `known`, and the options' text without it; a
// configuration without the key is an RNN's (as written before there was a choice).
std::pair<std::string, std::string> split_architecture(const ModelSource& files, const std::string& text,
                                                       const std::vector<std::string>& known) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(files.label(model_file::config), ": model configuration: ", e.what());
  }
  const auto is_known = [&](const std::string& name) { return std::find(known.begin(), known.end(), name) != known.end(); };
  std::string expected;
  for (const std::string& name : known) expected += (expected.empty() ? "\"" : " or \"") + name + "\"";
  if (!json.is_object() || !json.contains(architecture_key)) {
    if (is_known("rnn")) return {"rnn", text};
    fail(files.label(model_file::config), ": no \"", architecture_key, "\" key; expected ", expected);
  }
  const nlohmann::json& architecture = json[architecture_key];
  if (!architecture.is_string() || !is_known(architecture.get<std::string>())) {
    fail(files.label(model_file::config), ": \"", architecture_key, "\" is ", architecture.dump(), "; expected ", expected);
  }
  std::string name = architecture.get<std::string>();
  json.erase(architecture_key);
  return {std::move(name), json.dump()};
}

// Runs `build`, naming the configuration when the model it describes cannot be built: the
// layers' constructors find the sizes that do not fit together (a local attention window of
// 0, dot attention between unequal sizes) and throw std::invalid_argument.
template <class Build>
auto built_from_configuration(const ModelSource& files, Build&& build) {
  try {
    return build();
  } catch (const std::invalid_argument& e) {
    fail(files.label(model_file::config), ": ", e.what());
  }
}

Vocabulary read_vocabulary(const ModelSource& files, const char* name, const std::vector<std::string>& specials) {
  const auto read_neighbour = [&](const std::string& neighbour, std::size_t max_bytes) {
    return NamedBytes{files.text(neighbour, max_bytes), files.label(neighbour)};
  };
  return Vocabulary::from_json(files.text(name, max_vocabulary_file_size), files.label(name), specials, read_neighbour);
}

// A vocabulary or label file must have as many entries as the configuration built the model for.
void check_count(const ModelSource& files, const char* name, std::size_t count, const char* key, std::size_t configured) {
  if (count != configured) {
    fail(files.label(name), ": ", count, " entries, but ", files.label(model_file::config), " has \"", key, "\": ", configured,
         "; the files belong to different models");
  }
}

// A special id of the configuration must be where the vocabulary holds that token.
void check_special(const ModelSource& files, const char* name, const Vocabulary& vocabulary, std::string_view token,
                   const char* key, std::int64_t configured) {
  if (vocabulary.id(token) != configured) {
    fail(files.label(name), ": ", token, " has id ", vocabulary.id(token), ", but ", files.label(model_file::config),
         " has \"", key, "\": ", configured, "; the files belong to different models");
  }
}

// The format a weights file's metadata names (float32 without it); file_error for another name.
WeightFormat stored_weight_format(const safetensors::File& weights) {
  const auto found = weights.metadata().find(weight_format_metadata);
  if (found == weights.metadata().end()) return WeightFormat::float32;
  try {
    return weight_format_from_string(found->second);
  } catch (const std::invalid_argument& e) {
    fail(weights.label(), ": metadata \"", weight_format_metadata, "\": ", e.what());
  }
}

// A quantised file loads as its dequantised values, and the model then multiplies in its format.
template <class Model>
void load_weights(const ModelSource& files, Model& model) {
  safetensors::File weights = files.tensors(model_file::weights);
  const WeightFormat format = stored_weight_format(weights);
  if (format != WeightFormat::float32) weights = dequantized(weights);
  const std::vector<std::string> problems = nn::state_dict_mismatches(model, weights);
  if (!problems.empty()) {
    std::string message = weights.label() + ": does not fit the model that " + files.label(model_file::config) + " describes:";
    for (const std::string& problem : problems) message += "\n  " + problem;
    throw file_error(message);
  }
  nn::load_state_dict(model, weights);
  if (format != WeightFormat::float32) model.set_weight_format(format);
}

}  // namespace

std::string ModelDirectory::label(const std::string& name) const { return (std::filesystem::path(directory_) / name).string(); }

std::string ModelDirectory::text(const std::string& name, std::size_t max_bytes) const {
  return read_file(label(name), max_bytes);
}

safetensors::File ModelDirectory::tensors(const std::string& name) const { return safetensors::File::read(label(name)); }

std::string ModelFilesInMemory::label(const std::string& name) const { return label_ + "/" + name; }

const std::string& ModelFilesInMemory::bytes(const std::string& name) const {
  const auto found = files_.find(name);
  if (found == files_.end()) fail(label(name), ": no such file");
  return found->second;
}

std::string ModelFilesInMemory::text(const std::string& name, std::size_t max_bytes) const {
  const std::string& contents = bytes(name);
  if (contents.size() > max_bytes) {
    fail(label(name), ": ", contents.size(), " bytes exceeds the limit of ", max_bytes, " bytes for this file");
  }
  return contents;
}

safetensors::File ModelFilesInMemory::tensors(const std::string& name) const {
  return safetensors::File::parse(bytes(name), label(name));
}

namespace {

// The vocabularies checked against the configuration, then the model of that architecture.
template <class Model, class Options>
std::unique_ptr<TranslationModel> load_translation(const ModelSource& files, const Options& options, bool with_weights) {
  const std::vector<std::string> specials = translation_specials();
  Vocabulary source = read_vocabulary(files, model_file::source_vocabulary, specials);
  check_count(files, model_file::source_vocabulary, source.size(), "source_vocabulary", options.source_vocabulary);
  check_special(files, model_file::source_vocabulary, source, pad_token, "pad_id", options.pad_id);
  Vocabulary target = read_vocabulary(files, model_file::target_vocabulary, specials);
  check_count(files, model_file::target_vocabulary, target.size(), "target_vocabulary", options.target_vocabulary);
  check_special(files, model_file::target_vocabulary, target, pad_token, "pad_id", options.pad_id);
  check_special(files, model_file::target_vocabulary, target, start_token, "sos_id", options.sos_id);
  check_special(files, model_file::target_vocabulary, target, end_token, "eos_id", options.eos_id);
  auto loaded = built_from_configuration(files, [&] {
    return std::unique_ptr<TranslationModel>(
        new TranslationModel{std::move(source), std::move(target), std::make_unique<Model>(options)});
  });
  if (with_weights) load_weights(files, *loaded->model);
  return loaded;
}

}  // namespace

namespace {

std::string with_architecture(const std::string& configuration, const std::string& architecture) {
  nlohmann::json json = nlohmann::json::parse(configuration);
  json[architecture_key] = architecture;
  return json.dump(2) + "\n";
}

// The vocabulary and labels checked against the configuration, then the model of that architecture.
template <class Model, class Options>
std::unique_ptr<ClassificationModel> load_classification(const ModelSource& files, const Options& options,
                                                         bool with_weights) {
  Vocabulary vocabulary = read_vocabulary(files, model_file::vocabulary, classification_specials());
  check_count(files, model_file::vocabulary, vocabulary.size(), "vocabulary", options.vocabulary);
  check_special(files, model_file::vocabulary, vocabulary, pad_token, "pad_id", options.pad_id);
  LabelSet labels = LabelSet::from_json(files.text(model_file::labels, max_vocabulary_file_size), files.label(model_file::labels));
  check_count(files, model_file::labels, labels.size(), "classes", options.classes);
  auto loaded = built_from_configuration(files, [&] {
    return std::unique_ptr<ClassificationModel>(
        new ClassificationModel{std::move(vocabulary), std::move(labels), std::make_unique<Model>(options)});
  });
  if (with_weights) load_weights(files, *loaded->model);
  return loaded;
}

}  // namespace

std::string translation_configuration(const Translator<float>& model) {
  return with_architecture(model.configuration(), model.architecture());
}

std::string classification_configuration(const Classifier<float>& model) {
  return with_architecture(model.configuration(), model.architecture());
}

std::string image_configuration(const ImageClassifier<float>& model) {
  return with_architecture(model.configuration(), model.architecture());
}

void write_quantized_weights(const nn::Module<float>& model, WeightFormat format, const std::string& path) {
  safetensors::Writer writer;
  for (const auto& [name, tensor] : model.state_dict()) {
    if (tensor.dim() == 2) {
      QuantizedMatrix(tensor.value(), format).write(writer, name);
    } else {
      writer.add(name, tensor.value());
    }
  }
  writer.set_metadata(weight_format_metadata, weight_format_name(format));
  writer.write(path);
}

std::unique_ptr<TranslationModel> load_translation_model(const ModelSource& files, bool with_weights,
                                                         const ModelLimits& limits) {
  const auto [architecture, options_text] = split_architecture(files, configuration_text(files), {"rnn", "transformer"});
  if (architecture == "transformer") {
    return load_translation<TransformerTranslator<float>>(
        files, read_configuration(files, options_text, transformer_translator_options_from_json, limits), with_weights);
  }
  return load_translation<Seq2Seq<float>>(files, read_configuration(files, options_text, seq2seq_options_from_json, limits),
                                          with_weights);
}

std::unique_ptr<ClassificationModel> load_classification_model(const ModelSource& files, bool with_weights,
                                                               const ModelLimits& limits) {
  const auto [architecture, options_text] = split_architecture(files, configuration_text(files), {"rnn", "transformer"});
  if (architecture == "transformer") {
    return load_classification<TransformerClassifier<float>>(
        files, read_configuration(files, options_text, transformer_classifier_options_from_json, limits), with_weights);
  }
  return load_classification<SequenceClassifier<float>>(
      files, read_configuration(files, options_text, classifier_options_from_json, limits), with_weights);
}

std::unique_ptr<ImageModel> load_image_model(const ModelSource& files, bool with_weights, const ModelLimits& limits) {
  const std::string options_text = split_architecture(files, configuration_text(files), {"image"}).second;
  const ImageClassifierOptions options =
      read_configuration(files, options_text, image_classifier_options_from_json, limits);
  LabelSet labels = LabelSet::from_json(files.text(model_file::labels, max_vocabulary_file_size), files.label(model_file::labels));
  check_count(files, model_file::labels, labels.size(), "classes", options.classes);
  auto loaded = built_from_configuration(files, [&] {
    return std::unique_ptr<ImageModel>(new ImageModel{std::move(labels), std::make_unique<ImageClassifier<float>>(options)});
  });
  if (with_weights) load_weights(files, *loaded->model);
  return loaded;
}

}  // namespace xgrad::models
