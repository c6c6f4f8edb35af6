#define BOOST_TEST_MODULE text_data
#include "xgrad_test.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "xgrad/models/corpus.h"
#include "xgrad/models/text.h"
#include "xgrad/models/vocabulary.h"

using xgrad::testing::error_message;
using xgrad::testing::TempDir;
using namespace xgrad;
using namespace xgrad::models;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The first lines of the real corpora (Multi30K val, SST-2 dev, TREC train).
const std::string multi30k_de =
    "eine gruppe von männern lädt baumwolle auf einen lastwagen\n"
    "ein mann schläft in einem grünen raum auf einem sofa .\n"
    "ein junge mit kopfhörern sitzt auf den schultern einer frau .\n";
const std::string multi30k_en =
    "a group of men are loading cotton onto a truck\n"
    "a man sleeping in a green room on a couch .\n"
    "a boy wearing headphones sits on a woman &apos;s shoulders .\n";
const std::string sst2 =
    "sentence\tlabel\n"
    "it 's a charming and often affecting journey . \t1\n"
    "unflinchingly bleak and desperate \t0\n";
const std::string trec =
    "question\tlabel\tfine_label\n"
    "How did serfdom develop in and then leave Russia ?\tDESC\tmanner\n"
    "What films featured the character Popeye Doyle ?\tENTY\tcremat\n"
    "How can I find a list of celebrities ' real names ?\tDESC\tmanner\n";

}  // namespace

BOOST_AUTO_TEST_SUITE(corpus)

BOOST_AUTO_TEST_CASE(split_tokens_splits_on_runs_of_whitespace) {
  BOOST_TEST(split_tokens("  a  b\tc\r\n") == (Tokens{"a", "b", "c"}));
  BOOST_TEST(split_tokens("männer lädt") == (Tokens{"männer", "lädt"}));
  BOOST_TEST(split_tokens(" \t ").empty());
  BOOST_TEST(join_tokens({"a", "b", "c"}) == "a b c");
  BOOST_TEST(join_tokens({}) == "");
}

BOOST_AUTO_TEST_CASE(read_sentences_keeps_one_entry_per_line) {
  TempDir dir;
  const std::string path = dir.write("s.txt", "a b\r\n\nc");
  const std::vector<Tokens> sentences = read_sentences(path);
  BOOST_TEST_REQUIRE(sentences.size() == 3u);
  BOOST_TEST(sentences[0] == (Tokens{"a", "b"}));
  BOOST_TEST(sentences[1].empty());
  BOOST_TEST(sentences[2] == (Tokens{"c"}));
  BOOST_TEST(read_sentences(dir.write("empty.txt", "")).empty());
}

BOOST_AUTO_TEST_CASE(parallel_corpus_pairs_lines_and_counts_skipped_pairs) {
  TempDir dir;
  const ParallelCorpus real = read_parallel_corpus(dir.write("val.de", multi30k_de), dir.write("val.en", multi30k_en));
  BOOST_TEST(real.source.size() == 3u);
  BOOST_TEST(real.target.size() == 3u);
  BOOST_TEST(real.skipped_empty == 0u);
  BOOST_TEST(real.source[1][2] == "schläft");
  BOOST_TEST(real.target[2].back() == ".");
  BOOST_TEST(real.target[2][8] == "&apos;s");

  const ParallelCorpus gaps = read_parallel_corpus(dir.write("gaps.de", "a\n\nb c\nd\n"), dir.write("gaps.en", "A\nB\n  \nD E\n"));
  BOOST_TEST(gaps.skipped_empty == 2u);
  BOOST_TEST_REQUIRE(gaps.source.size() == 2u);
  BOOST_TEST(gaps.source[1] == (Tokens{"d"}));
  BOOST_TEST(gaps.target[1] == (Tokens{"D", "E"}));
}

BOOST_AUTO_TEST_CASE(pairs_longer_than_the_limit_are_skipped_and_counted) {
  TempDir dir;
  const ParallelCorpus corpus =
      read_parallel_corpus(dir.write("long.de", "a b\na b c d\n\na\n"), dir.write("long.en", "A\nB\nC\nD E F G\n"), 3);
  BOOST_TEST(corpus.skipped_long == 2u);  // a source of 4 tokens, a target of 4
  BOOST_TEST(corpus.skipped_empty == 1u);
  BOOST_TEST_REQUIRE(corpus.source.size() == 1u);
  BOOST_TEST(corpus.source[0] == (Tokens{"a", "b"}));
  const LabelledTexts texts = parse_labelled_tsv("sentence\tlabel\na b c\tx\na b c d\ty\n", "long.tsv", {}, 3);
  BOOST_TEST(texts.skipped_long == 1u);
  BOOST_TEST_REQUIRE(texts.texts.size() == 1u);
  BOOST_TEST(texts.labels[0] == "x");
}

// Every text reader names the file, line and column of the first byte that is not UTF-8.
BOOST_AUTO_TEST_CASE(text_that_is_not_utf8_is_refused_where_it_is) {
  TempDir dir;
  const std::string good = dir.write("good.en", "a\nb\n");
  const std::string latin1 = dir.write("latin1.de", "ein\ncaf\xe9 au lait\n");
  BOOST_TEST(contains(error_message<file_error>([&] { read_parallel_corpus(latin1, good); }),
                      latin1 + ":2:4: invalid UTF-8 (byte 0xE9)"));
  BOOST_TEST(contains(error_message<file_error>([&] { read_parallel_corpus(good, latin1); }), latin1 + ":2:4"));
  BOOST_TEST(contains(error_message<file_error>([&] { read_sentences(latin1); }), latin1 + ":2:4"));
  BOOST_TEST(contains(error_message<file_error>([&] { parse_labelled_tsv("sentence\tlabel\nok\t1\n\xff\t0\n", "bad.tsv"); }),
                      "bad.tsv:3:1: invalid UTF-8 (byte 0xFF)"));
  const std::string vocabulary = dir.write("vocab.json", "{\n\"format\": \"xgrad-vocabulary\", \"tokens\": [\"\xc3\"]}");
  BOOST_TEST(contains(error_message<file_error>([&] { Vocabulary::load(vocabulary, translation_specials()); }),
                      vocabulary + ":2:43: invalid UTF-8 (byte 0xC3)"));
  BOOST_TEST(contains(error_message<file_error>([&] { LabelSet::load(vocabulary); }), vocabulary + ":2:43"));
}

// Ill-formed sequences as Unicode defines them (table 3-7), which JSON parsers and Python refuse.
BOOST_AUTO_TEST_CASE(utf8_validation_follows_the_unicode_standard) {
  for (const char* valid : {"", "plain", "schl\xc3\xa4" "ft", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                            "\xed\x9f\xbf"}) {
    BOOST_TEST(!invalid_utf8_offset(valid).has_value(), valid);
  }
  const std::pair<const char*, std::size_t> invalid[] = {
      {"ab\x80", 2},             // a lone continuation byte
      {"\xc0\xaf", 0},           // overlong '/'
      {"\xe0\x80\xaf", 0},       // overlong, three bytes
      {"\xed\xa0\x80", 0},       // a surrogate (U+D800)
      {"\xf4\x90\x80\x80", 0},   // past U+10FFFF
      {"\xf5\x80\x80\x80", 0},   // a lead byte that never occurs
      {"x\xe2\x82", 1},          // cut short at the end
      {"\xe2\x82x", 0},          // cut short by ASCII
  };
  for (const auto& [text, offset] : invalid) BOOST_TEST(invalid_utf8_offset(text).value_or(99) == offset, text);
}

BOOST_AUTO_TEST_CASE(parallel_corpus_errors_name_both_files) {
  TempDir dir;
  const std::string source = dir.write("train.de", "a\nb\nc\n");
  const std::string target = dir.write("train.en", "A\nB\n");
  const std::string counts = error_message<file_error>([&] { read_parallel_corpus(source, target); });
  BOOST_TEST(contains(counts, source + " has 3 lines"), counts);
  BOOST_TEST(contains(counts, target + " has 2"), counts);

  const std::string missing = (dir.path / "missing.en").string();
  const std::string absent = error_message<file_error>([&] { read_parallel_corpus(source, missing); });
  BOOST_TEST(contains(absent, source), absent);
  BOOST_TEST(contains(absent, missing), absent);
}

BOOST_AUTO_TEST_CASE(tsv_columns_are_chosen_by_header_name) {
  TempDir dir;
  const LabelledTexts sentiment = read_labelled_tsv(dir.write("dev.tsv", sst2));
  BOOST_TEST(sentiment.path == (dir.path / "dev.tsv").string());
  BOOST_TEST_REQUIRE(sentiment.texts.size() == 2u);
  BOOST_TEST(sentiment.texts[1] == (Tokens{"unflinchingly", "bleak", "and", "desperate"}));
  BOOST_TEST(sentiment.labels == (std::vector<std::string>{"1", "0"}));
  BOOST_TEST(sentiment.lines == (std::vector<std::size_t>{2, 3}));

  const std::string questions = dir.write("train.tsv", trec);
  const LabelledTexts coarse = read_labelled_tsv(questions, {.text = "question", .label = "label"});
  BOOST_TEST(coarse.labels == (std::vector<std::string>{"DESC", "ENTY", "DESC"}));
  BOOST_TEST(coarse.texts[0].front() == "How");
  const LabelledTexts fine = read_labelled_tsv(questions, {.text = "question", .label = "fine_label"});
  BOOST_TEST(fine.labels == (std::vector<std::string>{"manner", "cremat", "manner"}));
}

BOOST_AUTO_TEST_CASE(tsv_errors_name_file_and_line) {
  TempDir dir;
  const std::string questions = dir.write("train.tsv", trec);
  const std::string column = error_message<file_error>([&] { read_labelled_tsv(questions, {.text = "sentence"}); });
  BOOST_TEST(contains(column, questions + ":1: no column named 'sentence'"), column);
  BOOST_TEST(contains(column, "question, label, fine_label"), column);

  const std::string ragged = dir.write("ragged.tsv", "sentence\tlabel\ngood film\t1\nbad film\t0\textra\n");
  const std::string count = error_message<file_error>([&] { read_labelled_tsv(ragged); });
  BOOST_TEST(contains(count, ragged + ":3: 3 tab-separated columns but the header has 2"), count);

  const std::string blank = dir.write("blank.tsv", "sentence\tlabel\ngood film\t1\n  \t0\n");
  const std::string empty_text = error_message<file_error>([&] { read_labelled_tsv(blank); });
  BOOST_TEST(contains(empty_text, blank + ":3: empty text"), empty_text);

  const std::string unlabelled = dir.write("unlabelled.tsv", "sentence\tlabel\ngood film\t\n");
  BOOST_TEST(contains(error_message<file_error>([&] { read_labelled_tsv(unlabelled); }), unlabelled + ":2: empty label"));

  const std::string empty = dir.write("empty.tsv", "");
  BOOST_TEST(contains(error_message<file_error>([&] { read_labelled_tsv(empty); }), empty + ": the file is empty"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(normalisation)

constexpr TextNormalization lowercase = TextNormalization::lowercase_latin1_v1;

BOOST_AUTO_TEST_CASE(lowercase_latin1_lowers_ascii_and_latin1_letters_only) {
  // À..Þ become à..þ; × (U+00D7), ß (U+00DF), Ÿ (U+0178) and letters beyond Latin-1 stay.
  BOOST_TEST(normalised("Ein MÄDCHEN, ÀÉÎÕÜÞ × ß Ÿ Ω é", lowercase) == "ein mädchen, àéîõüþ × ß Ÿ Ω é");
  BOOST_TEST(normalised_tokens("  Zwei\tJunge  WEIßE\r\n", lowercase) == (Tokens{"zwei", "junge", "weiße"}));
  BOOST_TEST(normalised_tokens(" \t ", lowercase).empty());
  // Token by token gives what the whole line gives, so split corpora and raw lines agree.
  const std::string line = "Ein Mann IN Österreich .";
  Tokens one_by_one;
  for (const std::string& token : split_tokens(line)) one_by_one.push_back(normalised(token, lowercase));
  BOOST_TEST(one_by_one == normalised_tokens(line, lowercase));
}

BOOST_AUTO_TEST_CASE(rules_are_saved_by_a_versioned_name) {
  BOOST_TEST(to_string(lowercase) == "lowercase-latin1-v1");
  BOOST_TEST((text_normalization_from_string("lowercase-latin1-v1") == lowercase));
  const std::string message = error_message<std::invalid_argument>([] { text_normalization_from_string("lowercase"); });
  BOOST_TEST(contains(message, "text normalisation 'lowercase' is not one of: lowercase-latin1-v1"), message);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(vocabulary)

const std::vector<Tokens> sentences = {{"the", "dog", "runs", "."}, {"the", "cat", "sleeps", "."}, {"a", "dog", "."}};

BOOST_AUTO_TEST_CASE(specials_come_first_then_frequency_then_token) {
  const Vocabulary vocabulary = Vocabulary::build(sentences, {.specials = translation_specials()});
  const std::vector<std::string> expected = {"<pad>", "<unk>", "<sos>", "<eos>", ".",      "dog",
                                             "the",   "a",     "cat",   "runs",  "sleeps"};
  BOOST_TEST(vocabulary.tokens() == expected);
  BOOST_TEST(vocabulary.special_count() == 4u);
  BOOST_TEST(vocabulary.id("<pad>") == 0);
  BOOST_TEST(vocabulary.id("<eos>") == 3);
  BOOST_TEST(vocabulary.unknown_id() == 1);
  BOOST_TEST(vocabulary.is_special(3));
  BOOST_TEST(!vocabulary.is_special(4));

  // The same counts in another order give the same ids.
  const std::vector<Tokens> reordered = {sentences[2], sentences[1], sentences[0]};
  BOOST_TEST(Vocabulary::build(reordered, {.specials = translation_specials()}).tokens() == expected);
}

BOOST_AUTO_TEST_CASE(min_frequency_and_max_size_limit_the_tokens) {
  const Vocabulary frequent = Vocabulary::build(sentences, {.min_frequency = 2});
  BOOST_TEST(frequent.tokens() == (std::vector<std::string>{"<pad>", "<unk>", ".", "dog", "the"}));
  const Vocabulary small = Vocabulary::build(sentences, {.max_size = 4});
  BOOST_TEST(small.tokens() == (std::vector<std::string>{"<pad>", "<unk>", ".", "dog"}));
  // A special that also occurs in the text keeps its special id.
  const Vocabulary with_special = Vocabulary::build({{"<unk>", "x", "<unk>"}});
  BOOST_TEST(with_special.tokens() == (std::vector<std::string>{"<pad>", "<unk>", "x"}));
}

BOOST_AUTO_TEST_CASE(bad_options_are_rejected) {
  BOOST_CHECK_THROW(Vocabulary::build(sentences, {.min_frequency = 0}), std::invalid_argument);
  BOOST_CHECK_THROW(Vocabulary::build(sentences, {.specials = translation_specials(), .max_size = 3}), std::invalid_argument);
  const std::string no_unknown =
      error_message<std::invalid_argument>([] { Vocabulary::build(sentences, {.specials = {"<pad>"}}); });
  BOOST_TEST(contains(no_unknown, "must include <unk>"), no_unknown);
  BOOST_CHECK_THROW(Vocabulary({"<pad>", "<unk>", "<pad>"}, {}), std::invalid_argument);
  BOOST_CHECK_THROW(Vocabulary({"<pad>", "<unk>"}, {"a", "<unk>"}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(encode_maps_unknown_tokens_to_unk_and_decode_inverts) {
  const Vocabulary vocabulary = Vocabulary::build(sentences, {.specials = translation_specials()});
  const std::vector<TokenId> ids = vocabulary.encode({"the", "horse", "runs", "."});
  BOOST_TEST(ids == (std::vector<TokenId>{6, 1, 9, 4}));
  BOOST_TEST(vocabulary.decode(ids) == (Tokens{"the", "<unk>", "runs", "."}));

  const std::vector<TokenId> generated = {2, 6, 1, 0, 9, 3, 5, 3};
  BOOST_TEST(vocabulary.decode(generated) == (Tokens{"<sos>", "the", "<unk>", "<pad>", "runs", "<eos>", "dog", "<eos>"}));
  BOOST_TEST(vocabulary.decode(generated, {.drop_specials = true}) == (Tokens{"the", "<unk>", "runs", "dog"}));
  BOOST_TEST(vocabulary.decode(generated, {.drop_specials = true, .stop_at = vocabulary.id("<eos>")}) ==
             (Tokens{"the", "<unk>", "runs"}));

  BOOST_CHECK_THROW(vocabulary.token(11), index_error);
  BOOST_CHECK_THROW(vocabulary.token(-1), index_error);
  BOOST_CHECK_THROW(vocabulary.decode(std::vector<TokenId>{4, 99}), index_error);
  BOOST_CHECK_THROW(vocabulary.id("horse"), index_error);
  BOOST_TEST(!vocabulary.contains("horse"));
  BOOST_TEST(vocabulary.contains("sleeps"));
}

BOOST_AUTO_TEST_CASE(tokens_are_counted_and_encoded_under_the_vocabularys_rule) {
  const Vocabulary vocabulary = Vocabulary::build({{"The", "dog", "."}, {"the", "DOG", "Ähre"}}, {.min_frequency = 2});
  BOOST_TEST(vocabulary.tokens() == (std::vector<std::string>{"<pad>", "<unk>", "dog", "the"}));
  BOOST_TEST((vocabulary.normalization() == TextNormalization::lowercase_latin1_v1));
  BOOST_TEST(vocabulary.encode({"THE", "Dog", "ähre"}) == (std::vector<TokenId>{3, 2, 1}));
  BOOST_TEST(vocabulary.normalised({"Ähre", "DOG"}) == (Tokens{"ähre", "dog"}));
}

BOOST_AUTO_TEST_CASE(the_rule_is_saved_and_a_file_without_one_reads_as_before) {
  const Vocabulary vocabulary = Vocabulary::build(sentences, {.specials = translation_specials()});
  const std::string json = vocabulary.to_json();
  BOOST_TEST(contains(json, "\"normalization\": \"lowercase-latin1-v1\""), json);
  BOOST_TEST((Vocabulary::from_json(json, "v.json", translation_specials()).normalization() ==
              TextNormalization::lowercase_latin1_v1));

  // Written before rules were recorded: the rule the programs applied then.
  const std::string unrecorded = R"({"format": "xgrad-vocabulary", "version": 1, "specials": ["<pad>", "<unk>"], "tokens": ["a"]})";
  const Vocabulary old = Vocabulary::from_json(unrecorded, "old.json", classification_specials());
  BOOST_TEST((old.normalization() == unrecorded_text_normalization));
  BOOST_TEST(old.encode({"A"}) == (std::vector<TokenId>{2}));
}

BOOST_AUTO_TEST_CASE(save_and_load_round_trip) {
  TempDir dir;
  const Vocabulary vocabulary = Vocabulary::build(sentences, {.specials = translation_specials()});
  const std::string path = (dir.path / "vocab.en.json").string();
  vocabulary.save(path);
  const Vocabulary loaded = Vocabulary::load(path, translation_specials());
  BOOST_TEST(loaded.tokens() == vocabulary.tokens());
  BOOST_TEST(loaded.special_count() == 4u);
  BOOST_TEST(loaded.encode({"a", "cat"}) == vocabulary.encode({"a", "cat"}));
  BOOST_TEST(contains(read_file(path), "\"format\": \"xgrad-vocabulary\""));
}

BOOST_AUTO_TEST_CASE(a_token_that_is_not_utf8_cannot_be_saved) {
  const Vocabulary latin1({"<pad>", "<unk>"}, {"caf\xe9"});
  const std::string message = error_message<std::invalid_argument>([&] { latin1.to_json(); });
  BOOST_TEST(contains(message, "Vocabulary::to_json: cannot write as JSON"), message);
}

BOOST_AUTO_TEST_CASE(load_names_the_file_and_the_problem) {
  TempDir dir;
  const auto problem = [&](const std::string& name, const std::string& json) {
    const std::string path = dir.write(name, json);
    const std::string message = error_message<file_error>([&] { Vocabulary::load(path, translation_specials()); });
    BOOST_TEST(contains(message, path + ": "), message);
    return message;
  };
  const std::string header = R"("format": "xgrad-vocabulary", "version": 1, )";
  const std::string specials = R"("specials": ["<pad>", "<unk>", "<sos>", "<eos>"], )";
  BOOST_TEST(contains(problem("truncated.json", "{" + header + specials), "not valid JSON"));
  BOOST_TEST(contains(problem("array.json", "[1, 2]"), "expected a JSON object"));
  BOOST_TEST(contains(problem("format.json", R"({"format": "xgrad-labels", "version": 1})"), "\"format\" is \"xgrad-labels\""));
  BOOST_TEST(contains(problem("version.json", R"({"format": "xgrad-vocabulary", "version": 7})"), "\"version\" is 7"));
  BOOST_TEST(contains(problem("no_tokens.json", "{" + header + R"("specials": ["<pad>", "<unk>", "<sos>", "<eos>"]})"),
                      "missing key \"tokens\""));
  BOOST_TEST(contains(problem("number.json", "{" + header + specials + R"("tokens": ["a", 3]})"), "\"tokens\"[1] is 3"));
  BOOST_TEST(contains(problem("duplicate.json", "{" + header + specials + R"("tokens": ["a", "b", "a"]})"),
                      "token 'a' occurs twice (positions 4 and 6)"));
  BOOST_TEST(contains(problem("unk_twice.json", "{" + header + specials + R"("tokens": ["<unk>"]})"), "token '<unk>' occurs twice"));
  BOOST_TEST(contains(problem("no_eos.json", "{" + header + R"("specials": ["<pad>", "<unk>", "<sos>"], "tokens": []})"),
                      "special token '<eos>' is missing"));
  BOOST_TEST(contains(problem("rule.json", "{" + header + specials + R"("normalization": "nfkc", "tokens": []})"),
                      "\"normalization\": text normalisation 'nfkc' is not one of: lowercase-latin1-v1"));
  BOOST_TEST(contains(problem("rule_type.json", "{" + header + specials + R"("normalization": 1, "tokens": []})"),
                      "\"normalization\" is 1, not a string"));
  BOOST_TEST(contains(problem("order.json", "{" + header + R"("specials": ["<unk>", "<pad>", "<sos>", "<eos>"], "tokens": []})"),
                      "needs exactly [<pad>, <unk>, <sos>, <eos>]"));
  const std::string missing = (dir.path / "absent.json").string();
  BOOST_TEST(contains(error_message<file_error>([&] { Vocabulary::load(missing, translation_specials()); }), missing));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(labels)

BOOST_AUTO_TEST_CASE(integer_labels_map_in_numeric_order) {
  const LabelSet binary = LabelSet::build({"1", "0", "1", "1"});
  BOOST_TEST(binary.names() == (std::vector<std::string>{"0", "1"}));
  BOOST_TEST(*binary.find("0") == 0);
  BOOST_TEST(*binary.find("1") == 1);
  const LabelSet numbers = LabelSet::build({"10", "9", "-2", "0"});
  BOOST_TEST(numbers.names() == (std::vector<std::string>{"-2", "0", "9", "10"}));
}

BOOST_AUTO_TEST_CASE(named_labels_map_in_sorted_order) {
  const LabelSet coarse = LabelSet::build({"NUM", "HUM", "DESC", "ENTY", "LOC", "ABBR", "HUM"});
  BOOST_TEST(coarse.names() == (std::vector<std::string>{"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}));
  BOOST_TEST(coarse.name(3) == "HUM");
  BOOST_CHECK_THROW(coarse.name(6), index_error);
  // One name among integers makes them all names, in byte order.
  BOOST_TEST(LabelSet::build({"10", "9", "x"}).names() == (std::vector<std::string>{"10", "9", "x"}));
  BOOST_CHECK_THROW(LabelSet(std::vector<std::string>{"a", "b", "a"}), std::invalid_argument);
  BOOST_CHECK_THROW(LabelSet(std::vector<std::string>{}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(encode_names_the_line_of_an_unknown_label) {
  TempDir dir;
  const LabelSet labels = LabelSet::build(read_labelled_tsv(dir.write("train.tsv", trec), {.text = "question"}).labels);
  BOOST_TEST(labels.names() == (std::vector<std::string>{"DESC", "ENTY"}));
  const std::string evaluation = dir.write("eval.tsv", "question\tlabel\tfine_label\nWho ?\tENTY\tind\nWhere ?\tLOC\tcity\n");
  const LabelledTexts data = read_labelled_tsv(evaluation, {.text = "question"});
  const std::string message = error_message<file_error>([&] { labels.encode(data); });
  BOOST_TEST(contains(message, evaluation + ":3: unknown label 'LOC'"), message);

  const LabelledTexts known = read_labelled_tsv(dir.write("known.tsv", "question\tlabel\tfine_label\nA ?\tENTY\tx\nB ?\tDESC\ty\n"),
                                                {.text = "question"});
  BOOST_TEST(labels.encode(known) == (std::vector<std::int64_t>{1, 0}));
}

BOOST_AUTO_TEST_CASE(save_and_load_round_trip_with_validation) {
  TempDir dir;
  const LabelSet labels = LabelSet::build({"positive", "negative"});
  const std::string path = (dir.path / "labels.json").string();
  labels.save(path);
  BOOST_TEST(LabelSet::load(path).names() == labels.names());

  const std::string duplicate = dir.write("duplicate.json", R"({"format": "xgrad-labels", "version": 1, "labels": ["a", "a"]})");
  const std::string twice = error_message<file_error>([&] { LabelSet::load(duplicate); });
  BOOST_TEST(contains(twice, duplicate + ": label 'a' occurs twice"), twice);
  const std::string keyless = dir.write("keyless.json", R"({"format": "xgrad-labels", "version": 1})");
  BOOST_TEST(contains(error_message<file_error>([&] { LabelSet::load(keyless); }), keyless + ": missing key \"labels\""));
  const std::string empty = dir.write("empty.json", R"({"format": "xgrad-labels", "version": 1, "labels": []})");
  BOOST_TEST(contains(error_message<file_error>([&] { LabelSet::load(empty); }), "\"labels\" is empty"));
}

BOOST_AUTO_TEST_SUITE_END()
