// BLEU (13a and none, cased and lower-cased), chrF and chrF++ on plain text, the 13a
// tokeniser and Python's lower case, against what sacreBLEU 2.6.0 itself computed for the
// same texts (tests/fixtures/make_sacrebleu_fixtures.py wrote tests/fixtures/data/sacrebleu.json).
//
// Counts are compared exactly. Scores are compared to 1e-12 relative: xgrad's arithmetic
// follows sacreBLEU's operation by operation, so the doubles agree but for exp and log, which
// Python takes from the C library and which may differ by an ulp between library versions.
// The printed lines, at sacreBLEU's precision, are compared as strings.
#define BOOST_TEST_MODULE sacrebleu
#include "xgrad_test.h"

#include <nlohmann/json.hpp>

#include "xgrad/models/bleu.h"
#include "xgrad/models/chrf.h"
#include "xgrad/models/python_text.h"

using namespace xgrad;
using namespace xgrad::models;
using xgrad::testing::error_message;

namespace {

const nlohmann::json& sacrebleu_fixture() {
  static const nlohmann::json fixture =
      nlohmann::json::parse(read_file(std::string(XGRAD_FIXTURE_DIR) + "/sacrebleu.json"));
  return fixture;
}

void check_near(double actual, double expected, const std::string& what) {
  BOOST_TEST(std::abs(actual - expected) <= 1e-12 * (1.0 + std::abs(expected)), what << ": " << actual << " != " << expected);
}

// sacreBLEU's signature (or a line holding one) with xgrad's version where sacreBLEU names its own.
std::string with_our_version(std::string text) {
  const std::size_t version = text.find("version:");
  BOOST_TEST_REQUIRE(version != std::string::npos, text);
  return text.replace(version, text.find(' ', version) - version, "version:xgrad-" XGRAD_VERSION);
}

// The fixture's key for a metric's options, as make_sacrebleu_fixtures.py writes it.
std::string lowercase_suffix(bool lowercase) { return lowercase ? " lowercase" : ""; }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Each [input, expected] pair of the fixture's list `key`, through `transform`.
void check_pairs(const std::string& key, std::string (*transform)(std::string_view)) {
  const nlohmann::json& cases = sacrebleu_fixture().at(key);
  BOOST_TEST_REQUIRE(cases.size() >= 5u);
  for (const nlohmann::json& pair : cases) {
    const std::string input = pair.at(0), expected = pair.at(1);
    BOOST_TEST(transform(input) == expected, key << " of '" << input << "'");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_13a_tokeniser_splits_as_sacrebleu_does) { check_pairs("tokenize_13a", tokenize_13a); }

BOOST_AUTO_TEST_CASE(lower_case_is_pythons_str_lower) {
  check_pairs("lowercase", python_lower);
  // A capital sigma ends a word only after a cased letter and before none.
  BOOST_TEST(python_lower("\xce\xa3") == "\xcf\x83");               // alone: σ
  BOOST_TEST(python_lower("A\xce\xa3") == "a\xcf\x82");             // word end: ς
  BOOST_TEST(python_lower("A\xce\xa3" "B") == "a\xcf\x83" "b");     // inside a word: σ
  BOOST_TEST(python_lower("A'\xce\xa3" ".") == "a'\xcf\x82" ".");  // the apostrophe is case-ignorable
}

BOOST_AUTO_TEST_CASE(characters_are_code_points) {
  // One code point of each length in UTF-8: 1, 2, 3 and 4 bytes, each back as it was.
  const std::string text = "a\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80";
  BOOST_TEST((python_characters(text) == std::u32string{U'a', 0xE4, 0x20AC, 0x1F600}));
  BOOST_TEST(python_split(text) == Tokens{text});
}

BOOST_AUTO_TEST_CASE(whitespace_is_pythons) {
  // No-break space, an ideographic space, U+001C and a line separator split; U+200B does not.
  BOOST_TEST(python_split("a\xc2\xa0" "b\xe3\x80\x80" "c\x1c" "d\xe2\x80\xa8 e\xe2\x80\x8b" "f ") ==
             (Tokens{"a", "b", "c", "d", "e\xe2\x80\x8b" "f"}));
  BOOST_TEST(python_split(" \t\n").empty());
  BOOST_TEST(python_rstrip(" a b\xc2\xa0\t") == " a b");
  BOOST_TEST(python_collapse_whitespace("  a \xe3\x80\x80 b ") == "a b");
}

BOOST_AUTO_TEST_CASE(bleu_matches_sacrebleu) {
  std::size_t checked = 0;
  for (const nlohmann::json& corpus : sacrebleu_fixture().at("corpora")) {
    const std::vector<std::string> hypotheses = corpus.at("hypotheses"), references = corpus.at("references");
    for (const BleuTokenizer tokenizer : {BleuTokenizer::mteval_13a, BleuTokenizer::none}) {
      for (const bool lowercase : {false, true}) {
        const BleuOptions options{.tokenize = tokenizer, .lowercase = lowercase};
        const std::string where = corpus.at("name").get<std::string>() + ", " + to_string(tokenizer) + lowercase_suffix(lowercase);
        const nlohmann::json& expected = corpus.at("bleu").at(to_string(tokenizer) + lowercase_suffix(lowercase));
        const BleuScore score = corpus_bleu(hypotheses, references, options);
        check_near(score.score, expected.at("score"), where + " score");
        for (std::size_t n = 0; n < bleu_max_order; ++n) {
          check_near(score.precisions[n], expected.at("precisions").at(n), where + " precision " + std::to_string(n + 1));
          BOOST_TEST(score.matches[n] == expected.at("counts").at(n).get<std::size_t>(), where << " matches " << n + 1);
          BOOST_TEST(score.totals[n] == expected.at("totals").at(n).get<std::size_t>(), where << " totals " << n + 1);
        }
        check_near(score.brevity_penalty, expected.at("bp"), where + " brevity penalty");
        check_near(score.length_ratio, expected.at("ratio"), where + " ratio");
        BOOST_TEST(score.hypothesis_length == expected.at("sys_len").get<std::size_t>(), where);
        BOOST_TEST(score.reference_length == expected.at("ref_len").get<std::size_t>(), where);
        BOOST_TEST(score.to_string() == expected.at("line").get<std::string>(), where);
        const std::string signature = with_our_version(expected.at("signature"));
        BOOST_TEST(bleu_signature(options) == signature, where);
        // sacreBLEU's text output puts the signature after the metric's name.
        BOOST_TEST(to_string(score, options) == "BLEU|" + signature + score.to_string().substr(4), where);
        ++checked;
      }
    }
  }
  BOOST_TEST(checked == 32u);
}

BOOST_AUTO_TEST_CASE(chrf_and_chrf_plus_plus_match_sacrebleu) {
  std::size_t checked = 0;
  for (const nlohmann::json& corpus : sacrebleu_fixture().at("corpora")) {
    const std::vector<std::string> hypotheses = corpus.at("hypotheses"), references = corpus.at("references");
    for (const std::size_t word_order : {0u, 2u}) {
      for (const bool lowercase : {false, true}) {
        const ChrfOptions options{.word_order = word_order, .lowercase = lowercase};
        const std::string key = "word order " + std::to_string(word_order) + lowercase_suffix(lowercase);
        const std::string where = corpus.at("name").get<std::string>() + ", " + key;
        const nlohmann::json& expected = corpus.at("chrf").at(key);
        const ChrfScore score = corpus_chrf(hypotheses, references, options);
        check_near(score.score, expected.at("score"), where + " score");
        // sacreBLEU's statistics: hypothesis, reference and matching n-grams of each order.
        const std::vector<std::size_t> statistics = expected.at("statistics");
        BOOST_TEST_REQUIRE(statistics.size() == 3 * score.counts.size(), where);
        for (std::size_t order = 0; order < score.counts.size(); ++order) {
          BOOST_TEST(score.counts[order].hypothesis == statistics[3 * order], where << " order " << order + 1);
          BOOST_TEST(score.counts[order].reference == statistics[3 * order + 1], where << " order " << order + 1);
          BOOST_TEST(score.counts[order].matches == statistics[3 * order + 2], where << " order " << order + 1);
        }
        BOOST_TEST(chrf_signature(options) == with_our_version(expected.at("signature")), where);
        BOOST_TEST(to_string(score, options) == with_our_version(expected.at("line")), where);
        ++checked;
      }
    }
  }
  BOOST_TEST(checked == 32u);
}

BOOST_AUTO_TEST_CASE(chrf_counts_characters_not_bytes) {
  // "über" is 4 characters (5 bytes): 4 + 3 + 2 + 1 n-grams of orders 1..4, none longer.
  const ChrfScore score = corpus_chrf({"\xc3\xbc" "ber"}, {"\xc3\xbc" "ber"});
  BOOST_TEST_REQUIRE(score.counts.size() == 6u);
  for (std::size_t order = 0; order < 6; ++order) {
    const std::size_t expected = order < 4 ? 4 - order : 0;
    BOOST_TEST(score.counts[order].hypothesis == expected);
    BOOST_TEST(score.counts[order].matches == expected);
  }
  // Orders 5 and 6 exist on neither side and are left out of the average: a perfect 100.
  BOOST_TEST(score.score == 100.0);
}

BOOST_AUTO_TEST_CASE(mismatched_corpora_and_text_that_is_not_utf8_are_refused) {
  const std::string counts = error_message<std::invalid_argument>([] { corpus_chrf({"a", "b"}, {"a"}); });
  BOOST_TEST((contains(counts, "corpus_chrf") && contains(counts, "2 hypotheses but 1 references")), counts);
  const std::string bleu_counts = error_message<std::invalid_argument>([] { corpus_bleu({"a"}, {"a", "b"}, BleuOptions{}); });
  BOOST_TEST((contains(bleu_counts, "corpus_bleu") && contains(bleu_counts, "1 hypotheses but 2 references")), bleu_counts);

  const std::string latin1 = "caf\xe9";
  const std::string bleu = error_message<std::invalid_argument>([&] { corpus_bleu({"a", latin1}, {"a", "b"}, BleuOptions{}); });
  BOOST_TEST((contains(bleu, "corpus_bleu") && contains(bleu, "hypothesis 1 is not UTF-8 (byte 3)")), bleu);
  const std::string chrf = error_message<std::invalid_argument>([&] { corpus_chrf({"a"}, {latin1}); });
  BOOST_TEST((contains(chrf, "corpus_chrf") && contains(chrf, "reference 0 is not UTF-8 (byte 3)")), chrf);
  BOOST_TEST(error_message<std::invalid_argument>([&] { python_lower(latin1); }) ==
             "python_lower: the text is not UTF-8 at byte 3 (0xE9)");
  BOOST_TEST(error_message<std::invalid_argument>([] { python_split("ab\x80"); }) ==
             "python_split: the text is not UTF-8 at byte 2 (0x80)");
}
