// Loading model directories as the programs do: every file is checked on its own (a regular
// file, a size limit, UTF-8, finite weights) and against the others (vocabulary and label
// counts, special ids and weight shapes against the configuration), and the message names
// the files that disagree.
#define BOOST_TEST_MODULE model_directory
#include "xgrad_test.h"

#include <sys/stat.h>

#include <filesystem>
#include <limits>

#include "xgrad/models/model_directory.h"

using xgrad::testing::error_message;
using xgrad::testing::TempDir;
using namespace xgrad;
using namespace xgrad::models;
namespace file = models::model_file;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const Seq2SeqOptions translation_options{.source_vocabulary = 6, .target_vocabulary = 7, .embedding_size = 3,
                                         .encoder_hidden = 2, .decoder_hidden = 4, .attention_heads = 2};
const ClassifierOptions classification_options{.vocabulary = 5, .classes = 3, .embedding_size = 3, .hidden_size = 2,
                                               .attention_size = 2, .attention_heads = 2};

Vocabulary vocabulary(const std::vector<std::string>& specials, std::size_t size) {
  std::vector<std::string> tokens;
  // Appended rather than "w" + ...: GCC 12 warns falsely (-Wrestrict) on the inlined concatenation.
  for (std::size_t i = specials.size(); i < size; ++i) tokens.push_back(std::string("w").append(std::to_string(i)));
  return Vocabulary(specials, tokens);
}

// The bytes of model.safetensors for `model`.
std::string weights_of(const nn::Module<float>& model) {
  safetensors::Writer weights;
  nn::write_state_dict(model, weights);
  return weights.serialize();
}

// A translation model directory as xgrad-translate writes it.
std::map<std::string, std::string> translation_files() {
  return {{file::config, to_json(translation_options)},
          {file::source_vocabulary, vocabulary(translation_specials(), 6).to_json()},
          {file::target_vocabulary, vocabulary(translation_specials(), 7).to_json()},
          {file::weights, weights_of(Seq2Seq<float>(translation_options))}};
}

std::map<std::string, std::string> classification_files() {
  return {{file::config, to_json(classification_options)},
          {file::vocabulary, vocabulary(classification_specials(), 5).to_json()},
          {file::labels, LabelSet({"a", "b", "c"}).to_json()},
          {file::weights, weights_of(SequenceClassifier<float>(classification_options))}};
}

void write_directory(const TempDir& dir, const std::map<std::string, std::string>& files) {
  for (const auto& [name, contents] : files) dir.write(name, contents);
}

std::string translation_error(std::map<std::string, std::string> files) {
  return error_message<file_error>([&] { load_translation_model(ModelFilesInMemory("m", std::move(files)), true); });
}

std::string classification_error(std::map<std::string, std::string> files) {
  return error_message<file_error>([&] { load_classification_model(ModelFilesInMemory("m", std::move(files)), true); });
}

}  // namespace

// config.json names the architecture; one written before there was a choice is an RNN's.
BOOST_AUTO_TEST_CASE(the_configuration_names_the_architecture) {
  std::map<std::string, std::string> files = translation_files();
  files[file::config] = translation_configuration(Seq2Seq<float>(translation_options));
  BOOST_TEST(contains(files[file::config], "\"architecture\": \"rnn\""), files[file::config]);
  BOOST_TEST(load_translation_model(ModelFilesInMemory("m", files), true)->model->architecture() == "rnn");
  const std::string with_architecture = files[file::config];
  files[file::config].replace(with_architecture.find("\"rnn\""), 5, "\"lstm\"");
  const std::string message = translation_error(files);
  BOOST_TEST(contains(message, "m/config.json: \"architecture\" is \"lstm\"; expected"), message);
}

// So does a classifier's; one written before there was a choice is an RNN's.
BOOST_AUTO_TEST_CASE(a_classifier_configuration_names_the_architecture) {
  std::map<std::string, std::string> files = classification_files();
  BOOST_TEST(!contains(files[file::config], "architecture"), files[file::config]);
  BOOST_TEST(load_classification_model(ModelFilesInMemory("m", files), true)->model->architecture() == "rnn");
  BOOST_TEST(contains(classification_configuration(SequenceClassifier<float>(classification_options)),
                      "\"architecture\": \"rnn\""));

  const TransformerClassifierOptions options{.vocabulary = 5, .classes = 3, .model_size = 4, .heads = 2,
                                             .feedforward_size = 3, .encoder_layers = 1,
                                             .pooling = TransformerPooling::mean};
  const TransformerClassifier<float> transformer(options);
  files[file::config] = classification_configuration(transformer);
  files[file::weights] = weights_of(transformer);
  BOOST_TEST(contains(files[file::config], "\"architecture\": \"transformer\""), files[file::config]);
  const auto loaded = load_classification_model(ModelFilesInMemory("m", files), true);
  BOOST_TEST(loaded->model->architecture() == "transformer");
  BOOST_TEST(to_json(dynamic_cast<const TransformerClassifier<float>&>(*loaded->model).options()) == to_json(options));
  const std::string transformer_config = files[file::config];

  files[file::weights] = weights_of(SequenceClassifier<float>(classification_options));
  const std::string rnn_weights = classification_error(files);
  BOOST_TEST(contains(rnn_weights, "m/model.safetensors: does not fit the model that m/config.json describes"), rnn_weights);
  files[file::config].replace(transformer_config.find("\"transformer\""), 13, "\"cnn\"");
  const std::string unknown = classification_error(files);
  BOOST_TEST(contains(unknown, "m/config.json: \"architecture\" is \"cnn\"; expected"), unknown);
  files[file::config] = transformer_config;
  files[file::vocabulary] = vocabulary(classification_specials(), 4).to_json();
  BOOST_TEST(contains(classification_error(files), "m/vocab.json: 4 entries, but m/config.json has \"vocabulary\": 5"));
}

BOOST_AUTO_TEST_CASE(a_directory_the_programs_write_loads) {
  TempDir dir;
  write_directory(dir, translation_files());
  const auto translation = load_translation_model(ModelDirectory(dir.path.string()), true);
  BOOST_TEST(translation->source.size() == 6u);
  BOOST_TEST(translation->model->architecture() == "rnn");
  BOOST_TEST(dynamic_cast<const Seq2Seq<float>&>(*translation->model).options().target_vocabulary == 7u);
  TempDir other;
  write_directory(other, classification_files());
  const auto classification = load_classification_model(ModelDirectory(other.path.string()), true);
  BOOST_TEST(classification->labels.size() == 3u);
}

BOOST_AUTO_TEST_CASE(vocabularies_and_labels_must_fit_the_configuration) {
  std::map<std::string, std::string> files = translation_files();
  files[file::target_vocabulary] = vocabulary(translation_specials(), 9).to_json();
  const std::string target = translation_error(files);
  BOOST_TEST(contains(target, "m/target.vocab.json: 9 entries, but m/config.json has \"target_vocabulary\": 7"), target);

  files = translation_files();
  files[file::source_vocabulary] = files[file::target_vocabulary];
  BOOST_TEST(contains(translation_error(files), "m/source.vocab.json: 7 entries, but m/config.json has \"source_vocabulary\": 6"));

  files = translation_files();
  Seq2SeqOptions moved_eos = translation_options;
  moved_eos.eos_id = 1;
  files[file::config] = to_json(moved_eos);
  BOOST_TEST(contains(translation_error(files), "m/target.vocab.json: <eos> has id 3, but m/config.json has \"eos_id\": 1"));

  files = classification_files();
  files[file::labels] = LabelSet({"a", "b"}).to_json();
  const std::string labels = classification_error(files);
  BOOST_TEST(contains(labels, "m/labels.json: 2 entries, but m/config.json has \"classes\": 3"), labels);

  files = classification_files();
  files[file::vocabulary] = vocabulary(classification_specials(), 4).to_json();
  BOOST_TEST(contains(classification_error(files), "m/vocab.json: 4 entries, but m/config.json has \"vocabulary\": 5"));
}

// The pad id the batches use comes from the vocabularies, the one the model masks from the
// configuration: a directory where they differ would train or decode with padding taken as a word.
BOOST_AUTO_TEST_CASE(a_pad_id_that_differs_from_the_vocabularys_pad_is_refused_naming_both) {
  std::map<std::string, std::string> files = translation_files();
  Seq2SeqOptions moved_pad = translation_options;
  moved_pad.pad_id = 2;
  files[file::config] = to_json(moved_pad);
  const std::string translation = translation_error(files);
  BOOST_TEST(contains(translation, "m/source.vocab.json: <pad> has id 0, but m/config.json has \"pad_id\": 2"), translation);

  files = classification_files();
  ClassifierOptions moved = classification_options;
  moved.pad_id = 1;
  files[file::config] = to_json(moved);
  const std::string classification = classification_error(files);
  BOOST_TEST(contains(classification, "m/vocab.json: <pad> has id 0, but m/config.json has \"pad_id\": 1"), classification);
}

// The programs write the options' default ids beside vocabularies built with these specials.
BOOST_AUTO_TEST_CASE(the_default_special_ids_are_where_the_programs_specials_put_them) {
  const Vocabulary translation(translation_specials(), {});
  const Seq2SeqOptions seq2seq{};
  BOOST_TEST(translation.id(pad_token) == seq2seq.pad_id);
  BOOST_TEST(translation.id(start_token) == seq2seq.sos_id);
  BOOST_TEST(translation.id(end_token) == seq2seq.eos_id);
  BOOST_TEST(Vocabulary(classification_specials(), {}).id(pad_token) == ClassifierOptions{}.pad_id);
}

BOOST_AUTO_TEST_CASE(a_saved_model_reads_text_with_the_rule_and_ids_it_was_built_with) {
  TempDir dir;
  std::map<std::string, std::string> files = translation_files();
  const Vocabulary source =
      Vocabulary::build({{"Ein", "Hund", "ein", "HUND", "bellt"}}, {.specials = translation_specials(), .max_size = 6});
  files[file::source_vocabulary] = source.to_json();
  write_directory(dir, files);
  const auto loaded = load_translation_model(ModelDirectory(dir.path.string()), true);
  BOOST_TEST((loaded->source.normalization() == TextNormalization::lowercase_latin1_v1));
  BOOST_TEST((loaded->target.normalization() == TextNormalization::lowercase_latin1_v1));
  BOOST_TEST(loaded->source.tokens() == source.tokens());
  BOOST_TEST(loaded->source.encode({"EIN", "hund", "Bellt"}) == (std::vector<TokenId>{4, 5, 1}));
  BOOST_TEST(loaded->source.id(pad_token) == loaded->model->pad_id());
  BOOST_TEST(loaded->target.id(pad_token) == loaded->model->pad_id());
}

// A subword vocabulary's file names the SentencePiece model beside it, which is read from the
// same source, counted against the configuration and named when it is missing or broken.
BOOST_AUTO_TEST_CASE(subword_vocabularies_read_their_model_from_the_directory) {
  const std::vector<Tokens> corpus{{"ein", "hund", "rennt"}, {"zwei", "hunde", "rennen"}, {"ein", "mann", "rennt"}};
  const Vocabulary pieces = Vocabulary::train_subwords(
      corpus, {.algorithm = SubwordAlgorithm::bpe, .vocabulary_size = 20, .specials = classification_specials()},
      TextNormalization::lowercase_latin1_v1, "the corpus");
  ClassifierOptions options = classification_options;
  options.vocabulary = pieces.size();
  std::map<std::string, std::string> files{{file::config, to_json(options)},
                                           {file::vocabulary, pieces.to_json()},
                                           {file::subword_model, pieces.subword_model()->serialized()},
                                           {file::labels, LabelSet({"a", "b", "c"}).to_json()},
                                           {file::weights, weights_of(SequenceClassifier<float>(options))}};
  const auto loaded = load_classification_model(ModelFilesInMemory("m", files), true);
  BOOST_TEST(loaded->vocabulary.tokens() == pieces.tokens());
  BOOST_TEST(loaded->vocabulary.encode({"Zwei", "Männer"}) == pieces.encode({"zwei", "männer"}));

  files[file::subword_model] = "broken";
  BOOST_TEST(contains(classification_error(files), "m/subword.model: not a SentencePiece model"));
  files.erase(file::subword_model);
  BOOST_TEST(contains(classification_error(files), "m/subword.model: no such file"));
}

// Directories written before the rule was recorded load, reading text as the programs did then.
BOOST_AUTO_TEST_CASE(a_directory_without_a_recorded_rule_loads_with_the_old_one) {
  const auto without_rule = [](const std::string& json) {
    const std::string key = "\"normalization\": \"lowercase-latin1-v1\",";
    const std::size_t at = json.find(key);
    BOOST_TEST_REQUIRE(at != std::string::npos);
    return json.substr(0, at) + json.substr(at + key.size());
  };
  std::map<std::string, std::string> files = classification_files();
  files[file::vocabulary] = without_rule(files[file::vocabulary]);
  const auto loaded = load_classification_model(ModelFilesInMemory("m", files), true);
  BOOST_TEST((loaded->vocabulary.normalization() == unrecorded_text_normalization));
  BOOST_TEST(loaded->vocabulary.encode({"W3"}) == (std::vector<TokenId>{3}));

  files = translation_files();
  files[file::source_vocabulary] = without_rule(files[file::source_vocabulary]);
  files[file::target_vocabulary] = without_rule(files[file::target_vocabulary]);
  BOOST_TEST((load_translation_model(ModelFilesInMemory("m", files), true)->target.normalization() ==
              unrecorded_text_normalization));
}

BOOST_AUTO_TEST_CASE(weights_must_fit_the_configuration) {
  // The weights of a model with a larger output layer, beside vocabularies and a configuration that agree.
  ClassifierOptions larger = classification_options;
  larger.classes = 4;
  std::map<std::string, std::string> files = classification_files();
  files[file::weights] = weights_of(SequenceClassifier<float>(larger));
  const std::string message = classification_error(files);
  BOOST_TEST(contains(message, "m/model.safetensors: does not fit the model that m/config.json describes"), message);
  BOOST_TEST(contains(message, "key 'output.weight': the file has shape [4, 4] but the module expects [3, 4]"), message);
}

BOOST_AUTO_TEST_CASE(non_finite_weights_name_the_file_and_the_tensor) {
  Seq2Seq<float> model(translation_options);
  model.named_parameters()[0].second.mutable_value().data()[1] = std::numeric_limits<float>::quiet_NaN();
  const std::string name = model.named_parameters()[0].first;
  std::map<std::string, std::string> files = translation_files();
  files[file::weights] = weights_of(model);
  const std::string message = translation_error(files);
  BOOST_TEST(contains(message, "m/model.safetensors: tensor '" + name + "' holds a NaN or infinite value (element 1"), message);
}

BOOST_AUTO_TEST_CASE(configurations_over_the_limits_are_refused_before_anything_is_built) {
  const std::string limited = error_message<file_error>([&] {
    load_translation_model(ModelFilesInMemory("m", translation_files()), true, {.max_parameters = 100});
  });
  BOOST_TEST(contains(limited, "m/config.json: asks for about "), limited);
  BOOST_TEST(contains(limited, "the limit is 100"), limited);
  std::map<std::string, std::string> files = translation_files();
  files[file::config] = std::string(max_configuration_file_size + 1, ' ');
  BOOST_TEST(contains(translation_error(files), "m/config.json: 1048577 bytes exceeds the limit of 1048576 bytes"));
  files[file::config] = "{\"source_vocabulary\": \"\xff\"}";
  BOOST_TEST(contains(translation_error(files), "m/config.json:1:24: invalid UTF-8"));
  files[file::config] = "{\"source_vocabulary\": 12";
  const std::string broken = translation_error(files);
  BOOST_TEST(contains(broken, "m/config.json: model configuration: "), broken);
  files.erase(file::config);
  BOOST_TEST(contains(translation_error(files), "m/config.json: no such file"));
}

// Sizes that do not fit together are found by the layers as the model is built; the message
// names the configuration (found by fuzz_model_directory: a local-p window of 0).
BOOST_AUTO_TEST_CASE(a_configuration_whose_model_cannot_be_built_is_named) {
  std::map<std::string, std::string> files = translation_files();
  Seq2SeqOptions no_window = translation_options;
  no_window.attention = AttentionKind::local_predictive;
  no_window.local_window = 0;
  files[file::config] = to_json(no_window);
  const std::string message = translation_error(files);
  BOOST_TEST(contains(message, "m/config.json: LocalAttention (local-p): window = 0 must be positive"), message);
}

// A model file replaced by a device or a pipe is refused unread: /dev/zero would otherwise be
// read until memory runs out, and a FIFO would never end.
BOOST_AUTO_TEST_CASE(files_that_are_not_regular_files_are_refused_unread) {
  const std::pair<const char*, const char*> replacements[] = {
      {file::weights, "zero"}, {file::config, "fifo"}, {file::source_vocabulary, "zero"}, {file::target_vocabulary, "fifo"}};
  for (const auto& [name, kind] : replacements) {
    TempDir dir;
    write_directory(dir, translation_files());
    std::filesystem::remove(dir.file(name));
    if (std::string(kind) == "zero") {
      std::filesystem::create_symlink("/dev/zero", dir.file(name));
    } else {
      BOOST_TEST_REQUIRE(::mkfifo(dir.file(name).c_str(), 0600) == 0);
    }
    const std::string message = error_message<file_error>([&] { load_translation_model(ModelDirectory(dir.path.string()), true); });
    BOOST_TEST(contains(message, dir.file(name) + ": not a regular file"), message);
  }
}
