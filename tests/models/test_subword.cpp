#define BOOST_TEST_MODULE subword
#include "xgrad_test.h"

#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "xgrad/framework/file_io.h"
#include "xgrad/models/subword.h"
#include "xgrad/models/vocabulary.h"

using xgrad::testing::error_message;
using xgrad::testing::TempDir;
using namespace xgrad;
using namespace xgrad::models;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Multi30K-like German in corpus form: compounds of a few stems, so that subwords have
// something to share. "hundehütte" occurs once.
const std::vector<std::string> corpus_lines = {
    "ein hund rennt über die wiese .",
    "zwei hunde spielen im park .",
    "ein kleiner hund schläft in der hundehütte .",
    "eine katze sitzt auf dem dach .",
    "zwei katzen spielen mit einem ball .",
    "ein mann spielt fußball im park .",
    "zwei männer spielen fußball auf der wiese .",
    "eine frau liest ein buch im garten .",
    "ein junge rennt mit einem hund durch den garten .",
    "ein mädchen spielt mit einer katze .",
    "die hunde rennen über den strand .",
    "ein mann mit einem hut liest eine zeitung .",
    "eine gruppe von männern spielt im park .",
    "ein kind schläft auf dem sofa .",
    "zwei frauen sitzen im garten und lesen .",
    "der hund spielt mit einem ball im garten .",
};

std::vector<Tokens> corpus() {
  std::vector<Tokens> sentences;
  for (const std::string& line : corpus_lines) sentences.push_back(split_tokens(line));
  return sentences;
}

SubwordModel trained(SubwordAlgorithm algorithm, std::size_t size = 60,
                     const std::vector<std::string>& specials = translation_specials()) {
  return SubwordModel::train(corpus(), {.algorithm = algorithm, .vocabulary_size = size, .specials = specials}, "the corpus");
}

Vocabulary subword_vocabulary(SubwordAlgorithm algorithm) {
  return Vocabulary::from_subword_model(trained(algorithm), translation_specials(), TextNormalization::lowercase_latin1_v1,
                                        "the model");
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_trained_model_numbers_the_specials_as_xgrad_and_round_trips_text) {
  for (const SubwordAlgorithm algorithm : {SubwordAlgorithm::unigram, SubwordAlgorithm::bpe}) {
    BOOST_TEST_CONTEXT(to_string(algorithm)) {
      const Vocabulary vocabulary = subword_vocabulary(algorithm);
      BOOST_TEST(vocabulary.size() == 60u);
      BOOST_TEST(vocabulary.special_count() == 4u);
      BOOST_TEST(vocabulary.id("<pad>") == 0);
      BOOST_TEST(vocabulary.unknown_id() == 1);
      BOOST_TEST(vocabulary.id("<sos>") == 2);
      BOOST_TEST(vocabulary.id("<eos>") == 3);
      std::vector<Tokens> sentences = corpus();
      sentences.push_back(split_tokens("ein hundeball spielt im katzenpark ."));  // words never seen, letters seen
      for (const Tokens& words : sentences) {
        const std::vector<TokenId> ids = vocabulary.encode(words);
        BOOST_TEST(ids.size() >= words.size());
        BOOST_TEST(std::count(ids.begin(), ids.end(), vocabulary.unknown_id()) == 0);
        BOOST_TEST(std::none_of(ids.begin(), ids.end(), [&](TokenId id) { return vocabulary.is_special(id); }));
        BOOST_TEST(vocabulary.decode(ids) == words);
        BOOST_TEST(vocabulary.held_tokens(ids) == vocabulary.segmented(words));
      }
      // The vocabulary's rule applies before the pieces, as for words.
      BOOST_TEST(vocabulary.decode(vocabulary.encode({"EIN", "Hund"})) == (Tokens{"ein", "hund"}));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_rare_word_becomes_pieces_where_a_word_vocabulary_has_unk) {
  const Vocabulary words = Vocabulary::build(corpus(), {.specials = translation_specials(), .min_frequency = 2});
  const Vocabulary pieces = subword_vocabulary(SubwordAlgorithm::unigram);
  const Tokens sentence = split_tokens("ein kleiner hund schläft in der hundehütte .");
  const std::vector<TokenId> word_ids = words.encode(sentence);
  BOOST_TEST(std::count(word_ids.begin(), word_ids.end(), words.unknown_id()) == 3);  // kleiner, schläft, hundehütte
  const std::vector<TokenId> piece_ids = pieces.encode(sentence);
  BOOST_TEST(std::count(piece_ids.begin(), piece_ids.end(), pieces.unknown_id()) == 0);
  BOOST_TEST(pieces.decode(piece_ids) == sentence);
  // A letter the corpus never had is the one thing left unknown, and reads as <unk>.
  const std::vector<TokenId> unseen = pieces.encode({"ein", "qxz"});
  BOOST_TEST(std::count(unseen.begin(), unseen.end(), pieces.unknown_id()) >= 1);
  BOOST_TEST(contains(join_tokens(pieces.decode(unseen)), "<unk>"));
}

BOOST_AUTO_TEST_CASE(the_same_corpus_gives_the_same_model) {
  for (const SubwordAlgorithm algorithm : {SubwordAlgorithm::unigram, SubwordAlgorithm::bpe}) {
    BOOST_TEST(trained(algorithm).serialized() == trained(algorithm).serialized(), to_string(algorithm));
  }
  BOOST_TEST(trained(SubwordAlgorithm::unigram).pieces() != trained(SubwordAlgorithm::bpe).pieces());
}

BOOST_AUTO_TEST_CASE(decoding_keeps_or_drops_the_specials_between_words) {
  const Vocabulary vocabulary = subword_vocabulary(SubwordAlgorithm::bpe);
  std::vector<TokenId> ids{2};
  for (const TokenId id : vocabulary.encode(split_tokens("zwei hunde"))) ids.push_back(id);
  ids.push_back(0);
  for (const TokenId id : vocabulary.encode(split_tokens("im park"))) ids.push_back(id);
  ids.push_back(3);
  for (const TokenId id : vocabulary.encode({"ball"})) ids.push_back(id);
  BOOST_TEST(vocabulary.decode(ids) == split_tokens("<sos> zwei hunde <pad> im park <eos> ball"));
  BOOST_TEST(vocabulary.decode(ids, {.drop_specials = true}) == split_tokens("zwei hunde im park ball"));
  BOOST_TEST(vocabulary.decode(ids, {.drop_specials = true, .stop_at = 3}) == split_tokens("zwei hunde im park"));
  BOOST_CHECK_THROW(vocabulary.decode(std::vector<TokenId>{4, 60}), index_error);
}

BOOST_AUTO_TEST_CASE(save_and_load_give_the_same_ids) {
  const TempDir dir;
  const Vocabulary vocabulary = subword_vocabulary(SubwordAlgorithm::unigram);
  const std::string path = (dir.path / "source.vocab.json").string();
  vocabulary.save(path);
  BOOST_TEST(std::filesystem::exists(dir.path / subword_model_file_name));
  const std::string json = read_file(path);
  BOOST_TEST(contains(json, "\"sentencepiece_model\": \"subword.model\""));
  BOOST_TEST(!contains(json, "\"tokens\""));  // the pieces are the model's: one place
  const Vocabulary loaded = Vocabulary::load(path, translation_specials());
  BOOST_TEST(loaded.subword_model() != nullptr);
  BOOST_TEST(loaded.subword_model()->serialized() == vocabulary.subword_model()->serialized());
  BOOST_TEST(loaded.tokens() == vocabulary.tokens());
  for (const Tokens& words : corpus()) BOOST_TEST(loaded.encode(words) == vocabulary.encode(words));
  // A word vocabulary's file stays as it was: tokens, and no model.
  const Vocabulary words = Vocabulary::build(corpus(), {.specials = translation_specials()});
  BOOST_TEST(!contains(words.to_json(), "sentencepiece_model"));
  BOOST_TEST(Vocabulary::from_json(words.to_json(), "w.json", translation_specials()).subword_model() == nullptr);
}

BOOST_AUTO_TEST_CASE(a_model_file_missing_corrupt_or_numbered_otherwise_is_refused_naming_it) {
  const TempDir dir;
  const std::string vocabulary_path = (dir.path / "vocab.json").string();
  const std::string model_path = (dir.path / subword_model_file_name).string();
  subword_vocabulary(SubwordAlgorithm::unigram).save(vocabulary_path);
  const std::string good_model = read_file(model_path);

  std::filesystem::remove(model_path);
  std::string message = error_message<file_error>([&] { Vocabulary::load(vocabulary_path, translation_specials()); });
  BOOST_TEST(contains(message, model_path), message);

  for (const std::string& corrupt : {std::string("not a model at all"), good_model.substr(0, good_model.size() / 2),
                                     std::string()}) {
    write_file_atomically(model_path, corrupt);
    message = error_message<file_error>([&] { Vocabulary::load(vocabulary_path, translation_specials()); });
    BOOST_TEST((contains(message, model_path + ": not a SentencePiece model") ||
                contains(message, model_path + ": a SentencePiece model without pieces")),
               message);
  }

  // A classifier's model (<pad> <unk> only) where a translator needs <sos> and <eos>.
  const SubwordModel classifier_model = trained(SubwordAlgorithm::unigram, 60, classification_specials());
  message = error_message<file_error>([&] {
    Vocabulary::from_subword_model(classifier_model, translation_specials(), TextNormalization::lowercase_latin1_v1,
                                   "c.model");
  });
  BOOST_TEST(contains(message, "c.model: id 2 is"), message);
  BOOST_TEST(contains(message, "<pad>, <unk>, <sos>, <eos>"), message);
  // The other way round fits: a translator's model serves a classifier.
  BOOST_TEST(Vocabulary::from_subword_model(trained(SubwordAlgorithm::unigram), classification_specials(),
                                            TextNormalization::lowercase_latin1_v1, "t.model")
                 .special_count() == 2u);

  // SentencePiece's own numbering (<unk> <s> </s> = 0 1 2, no <pad>), as spm_train writes it by default.
  struct Sentences final : sentencepiece::SentenceIterator {
    std::size_t next = 0;
    bool done() const override { return next >= corpus_lines.size(); }
    void Next() override { ++next; }
    const std::string& value() const override { return corpus_lines[next]; }
    sentencepiece::util::Status status() const override { return {}; }
  } sentences;
  std::string default_numbering;
  const std::unordered_map<std::string, std::string> arguments{
      {"vocab_size", "60"}, {"minloglevel", "2"}, {"normalization_rule_name", "identity"}};
  BOOST_TEST_REQUIRE(sentencepiece::SentencePieceTrainer::Train(arguments, &sentences, &default_numbering).ok());
  write_file_atomically(model_path, default_numbering);
  message = error_message<file_error>([&] { Vocabulary::load(vocabulary_path, translation_specials()); });
  BOOST_TEST(contains(message, model_path + ": id 0 is '<unk>' but xgrad needs the specials"), message);
  BOOST_TEST(contains(message, "spm_train --pad_id=0 --unk_id=1"), message);

  // spm_train's default normalisation (nmt_nfkc) comes as a character map of its own.
  sentences.next = 0;
  std::string normalising;
  const std::unordered_map<std::string, std::string> nfkc{{"vocab_size", "60"}, {"minloglevel", "2"}};
  BOOST_TEST_REQUIRE(sentencepiece::SentencePieceTrainer::Train(nfkc, &sentences, &normalising).ok());
  write_file_atomically(model_path, normalising);
  message = error_message<file_error>([&] { Vocabulary::load(vocabulary_path, translation_specials()); });
  BOOST_TEST(contains(message, model_path + ": not a SentencePiece model xgrad can use (it normalises text by rules "
                                            "of its own;"),
             message);
  BOOST_TEST(contains(message, "--normalization_rule_name=identity"), message);
}

// What SentencePiece would not survive is refused before it reads the model: a piece with a
// NUL byte (which aborts the process while SentencePiece builds its trie), a normaliser's
// character map (a trie it reads unchecked), and bytes that are no protocol buffer.
BOOST_AUTO_TEST_CASE(model_bytes_sentencepiece_would_not_survive_are_refused_first) {
  using namespace std::string_literals;
  const std::string nul_piece = "\x0a\x05\x0a\x03" "a\0b"s;                   // pieces { piece: "a\0b" }
  const std::string charsmap = "\x1a\x04\x12\x02xy"s;                         // normalizer_spec { precompiled_charsmap: "xy" }
  const std::string truncated = "\x0a\x09\x0a\x03" "abc"s;                        // a piece longer than the bytes left
  const std::string group = "\x0b\x0c"s;                                       // wire type 3, a group
  const std::vector<std::pair<std::string, std::string>> cases{
      {nul_piece, "m.model: not a SentencePiece model xgrad can use (piece 0 holds a NUL byte)"},
      {trained(SubwordAlgorithm::bpe).serialized() + nul_piece, "(piece 60 holds a NUL byte)"},
      {charsmap, "m.model: not a SentencePiece model xgrad can use (it normalises text by rules of its own"},
      {truncated, "m.model: not a SentencePiece model xgrad can use (its bytes do not parse as one)"},
      {group, "m.model: not a SentencePiece model xgrad can use (its bytes do not parse as one)"}};
  for (const auto& [bytes, expected] : cases) {
    const std::string message = error_message<file_error>([&] { SubwordModel::parse(bytes, "m.model"); });
    BOOST_TEST(contains(message, expected), message);
  }
}

BOOST_AUTO_TEST_CASE(a_vocabulary_file_may_name_only_a_file_beside_it) {
  const std::string start = R"({"format": "xgrad-vocabulary", "version": 1, "specials": ["<pad>", "<unk>"], )";
  for (const std::string name : {R"("../elsewhere.model")", R"("/etc/passwd")", R"("")", R"(7)", R"("..")"}) {
    const std::string message = error_message<file_error>([&] {
      Vocabulary::from_json(start + "\"sentencepiece_model\": " + name + "}", "v.json", classification_specials(),
                            [](const std::string&, std::size_t) -> NamedBytes { throw std::logic_error("not read"); });
    });
    BOOST_TEST(contains(message, "v.json: \"sentencepiece_model\" is " + name + "; expected the name of a file in the same directory"),
               message);
  }
  const std::string message = error_message<file_error>([&] {
    Vocabulary::from_json(start + R"("sentencepiece_model": "subword.model"})", "v.json", classification_specials());
  });
  BOOST_TEST(contains(message, "v.json: names the SentencePiece model 'subword.model', but was read without its directory"),
             message);
}

BOOST_AUTO_TEST_CASE(a_vocabulary_size_the_corpus_cannot_fill_is_refused_naming_it) {
  for (const SubwordAlgorithm algorithm : {SubwordAlgorithm::unigram, SubwordAlgorithm::bpe}) {
    const std::string message = error_message<std::invalid_argument>([&] { trained(algorithm, 5000); });
    BOOST_TEST(contains(message, "SentencePiece cannot train 5000 " + to_string(algorithm) + " pieces on the corpus: "),
               message);
  }
  // Fewer pieces than the corpus has letters.
  const std::string message = error_message<std::invalid_argument>([&] { trained(SubwordAlgorithm::unigram, 10); });
  BOOST_TEST(contains(message, "SentencePiece cannot train 10 unigram pieces on the corpus: "), message);
  BOOST_TEST(contains(error_message<std::invalid_argument>([] { subword_algorithm_from_string("wordpiece"); }),
                      "unknown subword algorithm 'wordpiece'; expected unigram or bpe"));
}
