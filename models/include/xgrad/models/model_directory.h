#pragma once
// Model directories as the example programs write them, read back with every file checked
// on its own and against the others before the model is built:
//   translation:    config.json (naming the architecture), source.vocab.json,
//                   target.vocab.json, model.safetensors
//   classification: config.json (naming the architecture), vocab.json, labels.json,
//                   model.safetensors
//   (with subword vocabularies, also subword.model: the SentencePiece model they name)
//   images:         config.json (architecture "image"), labels.json, model.safetensors
// Each file must be a regular file under its size limit and UTF-8 where it is text; the
// vocabularies and labels must have the sizes the configuration says, and their special
// tokens the ids the configuration's pad_id, sos_id and eos_id say; the configuration must
// ask for no more than ModelLimits::max_parameters; the weights must have exactly the shapes
// of the model the configuration describes and be finite. Every failure is a file_error
// naming the file (both files when two disagree). The vocabularies also record the text
// normalisation they were built with (vocabulary.h), so a loaded model reads text as in training.
// Weights quantised for inference (write_quantized_weights) load as their rounded values, and
// the model runs its products in their format (Module::set_weight_format).

#include <map>
#include <memory>
#include <string>

#include "xgrad/framework/safetensors.h"
#include "xgrad/models/classifier.h"
#include "xgrad/models/image_classifier.h"
#include "xgrad/models/seq2seq.h"
#include "xgrad/models/transformer_classifier.h"
#include "xgrad/models/transformer_translator.h"
#include "xgrad/models/vocabulary.h"

namespace xgrad::models {

namespace model_file {
inline constexpr const char* config = "config.json";
inline constexpr const char* source_vocabulary = "source.vocab.json";
inline constexpr const char* target_vocabulary = "target.vocab.json";
inline constexpr const char* vocabulary = "vocab.json";
inline constexpr const char* labels = "labels.json";
inline constexpr const char* weights = "model.safetensors";
// The SentencePiece model that subword vocabularies name (vocabulary.h).
inline constexpr const char* subword_model = subword_model_file_name;
}  // namespace model_file

// The metadata key of model.safetensors that names its weights' format (quantized.h):
// "int8" or "bf16"; float32 without it.
inline constexpr const char* weight_format_metadata = "weight_format";

// Configuration files larger than this are refused unread (a real one has a few hundred bytes).
inline constexpr std::size_t max_configuration_file_size = 1 << 20;

// Where the files of a model come from.
class ModelSource {
 public:
  virtual ~ModelSource() = default;
  // How messages name the file `name`.
  virtual std::string label(const std::string& name) const = 0;
  // Its bytes; file_error when it is missing or larger than `max_bytes`.
  virtual std::string text(const std::string& name, std::size_t max_bytes) const = 0;
  virtual safetensors::File tensors(const std::string& name) const = 0;
};

// The files of a directory, read with read_file and safetensors::File::read.
class ModelDirectory final : public ModelSource {
 public:
  explicit ModelDirectory(std::string directory) : directory_(std::move(directory)) {}
  std::string label(const std::string& name) const override;
  std::string text(const std::string& name, std::size_t max_bytes) const override;
  safetensors::File tensors(const std::string& name) const override;

 private:
  std::string directory_;
};

// Files held in memory, by name (for tests and fuzzing); `label` prefixes their names.
class ModelFilesInMemory final : public ModelSource {
 public:
  ModelFilesInMemory(std::string label, std::map<std::string, std::string> files)
      : label_(std::move(label)), files_(std::move(files)) {}
  std::string label(const std::string& name) const override;
  std::string text(const std::string& name, std::size_t max_bytes) const override;
  safetensors::File tensors(const std::string& name) const override;

 private:
  const std::string& bytes(const std::string& name) const;
  std::string label_;
  std::map<std::string, std::string> files_;
};

struct ModelLimits {
  // A configuration asking for more parameters (estimated_parameters) is refused before
  // anything is allocated.
  double max_parameters = max_model_parameters;
};

struct TranslationModel {
  Vocabulary source, target;
  std::unique_ptr<Translator<float>> model;  // a Seq2Seq or a TransformerTranslator
};

// config.json's text for a translation model: its options with "architecture" (the
// model's, Translator::architecture) added. A configuration without that key is an RNN's
// (as written before there was a choice).
std::string translation_configuration(const Translator<float>& model);

struct ClassificationModel {
  Vocabulary vocabulary;
  LabelSet labels;
  std::unique_ptr<Classifier<float>> model;  // a SequenceClassifier or a TransformerClassifier
};

// config.json's text for a classifier, as translation_configuration's: without "architecture"
// it is an RNN's.
std::string classification_configuration(const Classifier<float>& model);

struct ImageModel {
  LabelSet labels;  // the class names
  std::unique_ptr<ImageClassifier<float>> model;
};

// config.json's text for an image classifier: its options with "architecture": "image".
std::string image_configuration(const ImageClassifier<float>& model);

// Writes the model's weights to `path` for inference in `format` (int8 or bf16): every weight
// matrix (each parameter of two dimensions) as quantized.h stores it, the rest in F32, with
// the format in the metadata; atomically.
void write_quantized_weights(const nn::Module<float>& model, WeightFormat format, const std::string& path);

// Without `with_weights` the model keeps its fresh initialisation (a resumed run loads its
// weights from the checkpoint).
std::unique_ptr<TranslationModel> load_translation_model(const ModelSource& files, bool with_weights,
                                                         const ModelLimits& limits = {});
std::unique_ptr<ClassificationModel> load_classification_model(const ModelSource& files, bool with_weights,
                                                               const ModelLimits& limits = {});
// A configuration of another architecture (a text classifier's directory) is a file_error
// naming config.json, the architecture it holds and "image".
std::unique_ptr<ImageModel> load_image_model(const ModelSource& files, bool with_weights, const ModelLimits& limits = {});

}  // namespace xgrad::models
