#define BOOST_TEST_MODULE user_text
#include "xgrad_test.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "xgrad/models/corpus.h"
#include "xgrad/models/text.h"
#include "xgrad/models/vocabulary.h"

using namespace xgrad;
using namespace xgrad::models;
using xgrad::testing::error_message;

namespace {

constexpr TextNormalization english = TextNormalization::moses_lowercase_en_v1;
constexpr TextNormalization german = TextNormalization::moses_lowercase_de_v1;
constexpr TextNormalization penn = TextNormalization::penn_lowercase_en_v1;

std::string round_trip(const std::string& line, TextNormalization rule) {
  return ordinary_text(normalised_tokens(line, rule), rule);
}

// The corpora, found as scripts/find-data.sh finds them: $XGRAD_DATA, then ../shared/data
// beside the repository; empty when neither is there.
std::filesystem::path data_directory() {
  if (const char* data = std::getenv("XGRAD_DATA"); data != nullptr && *data != '\0') return data;
  const std::filesystem::path beside = std::filesystem::path(XGRAD_SOURCE_DIR) / ".." / "shared" / "data";
  return std::filesystem::is_directory(beside) ? beside : std::filesystem::path();
}

struct Agreement {
  std::size_t lines = 0, unchanged = 0;
  std::vector<std::string> first_changed;  // "line -> its normalised form", for the message
  double rate() const { return lines == 0 ? 0.0 : static_cast<double>(unchanged) / static_cast<double>(lines); }
};

// How many lines of a corpus file (the `column`th tab-separated field of each line after
// `header_lines`) the rule leaves as they are, token for token (the latin1 rule's lower case
// aside: TREC is cased).
Agreement agreement(const std::filesystem::path& file, TextNormalization rule, std::size_t header_lines = 0,
                    std::size_t column = 0) {
  std::ifstream in(file);
  Agreement result;
  std::size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    if (number++ < header_lines) continue;
    for (std::size_t k = 0; k < column; ++k) line = line.substr(line.find('\t') + 1);
    line = line.substr(0, line.find('\t'));
    const Tokens corpus = normalised_tokens(line, TextNormalization::lowercase_latin1_v1);
    const Tokens ours = normalised_tokens(line, rule);
    ++result.lines;
    if (ours == corpus) {
      ++result.unchanged;
    } else if (result.first_changed.size() < 5) {
      result.first_changed.push_back(join_tokens(corpus) + "  ->  " + join_tokens(ours));
    }
  }
  return result;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(corpus_form)

BOOST_AUTO_TEST_CASE(a_users_sentence_becomes_the_corpus_tokens) {
  BOOST_TEST(normalised("Ein Hund rennt über die Wiese.", german) == "ein hund rennt über die wiese .");
  BOOST_TEST(normalised("Zwei Männer spielen Fußball im Park.", german) == "zwei männer spielen fußball im park .");
  BOOST_TEST(normalised("A dog runs across the meadow.", english) == "a dog runs across the meadow .");
  // Several sentences: the period before a capital ends one, before a lower-case word it may not.
  BOOST_TEST(normalised("Es regnet. Zwei Kinder spielen, lachen und rennen!", german) ==
             "es regnet . zwei kinder spielen , lachen und rennen !");
  BOOST_TEST(normalised("Is it raining? Yes; it is: (mostly).", english) ==
             "is it raining ? yes ; it is : ( mostly ) .");
  BOOST_TEST(normalised("Wait...what", english) == "wait ... what");
}

BOOST_AUTO_TEST_CASE(apostrophes_follow_each_language) {
  BOOST_TEST(normalised("The dog's ball isn't red.", english) == "the dog &apos;s ball isn &apos;t red .");
  BOOST_TEST(normalised("In the 1990's", english) == "in the 1990 &apos;s");
  BOOST_TEST(normalised("the dogs' bowls", english) == "the dogs &apos; bowls");
  BOOST_TEST(normalised("He said 'hello' twice", english) == "he said &apos; hello &apos; twice");
  // Typographic apostrophes inside a word are apostrophes, and German splits them off.
  BOOST_TEST(normalised("Das ist McDonald’s Laden.", german) == "das ist mcdonald &apos; s laden .");
  BOOST_TEST(normalised("The dog’s ball", english) == "the dog &apos;s ball");
}

BOOST_AUTO_TEST_CASE(quotes_become_the_corpus_quote_and_escapes_are_moses_ones) {
  BOOST_TEST(normalised("Ein Schild: „Willkommen“.", german) == "ein schild : &quot; willkommen &quot; .");
  BOOST_TEST(normalised("Ein Schild mit «Bikers» und “Rock”", german) ==
             "ein schild mit &quot; bikers &quot; und &quot; rock &quot;");
  // English puts the period inside the closing quote, as normalize-punctuation.perl does.
  BOOST_TEST(normalised("A sign saying \"Welcome\".", english) == "a sign saying &quot; welcome . &quot;");
  BOOST_TEST(normalised("Tom & Jerry <3 [x] a|b", english) ==
             "tom &amp; jerry &lt; 3 &#91; x &#93; a &#124; b");
  // Text that already holds the escapes reads them as what they stand for.
  BOOST_TEST(normalised("tom &amp; jerry &quot;", english) == "tom &amp; jerry &quot;");
}

BOOST_AUTO_TEST_CASE(numbers_dashes_abbreviations_and_urls) {
  BOOST_TEST(normalised("It costs 3.5 or 1,000 dollars, 5, 6.", english) ==
             "it costs 3.5 or 1,000 dollars , 5 , 6 .");
  BOOST_TEST(normalised("A T-shirt – red — on sale", english) == "a t-shirt - red - on sale");
  BOOST_TEST(normalised("Mr. Smith lives in the U.S. He is 5.", english) == "mr. smith lives in the u.s. he is 5 .");
  BOOST_TEST(normalised("Das ist z.B. am 3. Oktober so.", german) == "das ist z.b. am 3. oktober so .");
  BOOST_TEST(normalised("See https://example.com/a?b=c.", english) == "see https://example.com/a?b=c .");
}

BOOST_AUTO_TEST_CASE(unicode_is_nfkc_and_lower_case_is_pythons) {
  // Full-width letters, a ligature, a no-break space and the ellipsis character.
  BOOST_TEST(normalised("\xEF\xBC\xA1 \xEF\xAC\x81sh\xC2\xA0jumps\xE2\x80\xA6", english) == "a fish jumps ...");
  // A decomposed ü (u + combining diaeresis) is the corpus's composed one.
  BOOST_TEST(normalised("U\xCC\x88" "ber", german) == "über");
  BOOST_TEST(normalised("ÄRGER über STRAẞEN", german) == "ärger über straßen");
}

BOOST_AUTO_TEST_CASE(the_rule_is_a_fixed_point_on_its_own_output) {
  for (const std::string line :
       {"The dog's ball isn't red.", "Ein Schild: „Willkommen“.", "It costs 3.5 or 1,000 dollars, 5, 6.",
        "Mr. Smith lives in the U.S. He is 5.", "He said 'hello' twice", "the dogs' bowls...", "Tom & Jerry <3"}) {
    for (const TextNormalization rule : {english, german}) {
      const std::string once = normalised(line, rule);
      BOOST_TEST(normalised(once, rule) == once, line << " under " << to_string(rule));
    }
  }
}

BOOST_AUTO_TEST_CASE(text_that_is_not_utf8_is_refused) {
  const std::string latin1 = "M\xE4nner";
  BOOST_TEST(error_message<std::invalid_argument>([&] { normalised(latin1, german); }) ==
             "corpus_form: the text is not UTF-8 at byte 1");
  BOOST_TEST(error_message<std::invalid_argument>([&] { ordinary_text({"ok", latin1}, english); }) ==
             "ordinary_text: the text is not UTF-8 at byte 1");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ordinary_text_from_tokens)

BOOST_AUTO_TEST_CASE(detokenises_unescapes_and_capitalises) {
  BOOST_TEST(ordinary_text(split_tokens("a dog runs across the meadow ."), english) == "A dog runs across the meadow.");
  BOOST_TEST(ordinary_text(split_tokens("a dog &apos;s ball , isn &apos;t it ?"), english) == "A dog's ball, isn't it?");
  BOOST_TEST(ordinary_text(split_tokens("a sign : &quot; welcome bikers &quot; ( new ) costs $ 5 !"), english) ==
             "A sign: \"welcome bikers\" (new) costs $5!");
  BOOST_TEST(ordinary_text(split_tokens("the dogs &apos; bowls and tom &amp; jerry ..."), english) ==
             "The dogs' bowls and tom & jerry...");
  BOOST_TEST(ordinary_text(split_tokens("&quot; hi &quot; , she said ."), english) == "\"Hi\", she said.");
  BOOST_TEST(ordinary_text(split_tokens("ein junge spielt bei mcdonald &apos; s gamecube ."), german) ==
             "Ein junge spielt bei mcdonald's gamecube.");
  BOOST_TEST(ordinary_text(split_tokens("über die wiese"), german) == "Über die wiese");
  BOOST_TEST(ordinary_text({}, english) == "");
  BOOST_TEST(ordinary_text(split_tokens("<unk> runs ."), english) == "<unk> runs.");  // the special is no word to capitalise
}

BOOST_AUTO_TEST_CASE(the_penn_rule_writes_english_as_sst2_and_trec) {
  BOOST_TEST(normalised("It's a charming, often affecting journey.", penn) == "it 's a charming , often affecting journey .");
  BOOST_TEST(normalised("Why don't you guys have a contest?", penn) == "why do n't you guys have a contest ?");
  BOOST_TEST(normalised("What is \"Nine Inch Nails\"?", penn) == "what is `` nine inch nails '' ?");
  BOOST_TEST(normalised("What is the origin of the name 'Scarlett'?", penn) == "what is the origin of the name ` scarlett ' ?");
  BOOST_TEST(normalised("The celebrities' real names — and the '70s, Mr. Smith & Co.", penn) ==
             "the celebrities ' real names -- and the '70s , mr. smith & co .");
  BOOST_TEST(normalised("We'll see: it costs $5 (or 3.5).", penn) == "we 'll see : it costs $ 5 ( or 3.5 ) .");
  BOOST_TEST(ordinary_text(split_tokens("it 's `` fun '' , does n't it ?"), penn) == "It's \"fun\", doesn't it?");
  for (const std::string line : {"It's a charming, often affecting journey.", "What is \"Nine Inch Nails\"?",
                                 "The celebrities' real names — and the '70s"}) {
    const std::string once = normalised(line, penn);
    BOOST_TEST(normalised(once, penn) == once, line);
  }
}

BOOST_AUTO_TEST_CASE(the_latin1_rule_only_joins) {
  BOOST_TEST(!restores_ordinary_text(TextNormalization::lowercase_latin1_v1));
  BOOST_TEST(restores_ordinary_text(english));
  BOOST_TEST(ordinary_text(split_tokens("a dog &apos;s ball ."), TextNormalization::lowercase_latin1_v1) ==
             "a dog &apos;s ball .");
}

BOOST_AUTO_TEST_CASE(round_trips_give_back_what_a_user_wrote_but_the_case) {
  BOOST_TEST(round_trip("A dog's ball, isn't it?", english) == "A dog's ball, isn't it?");
  BOOST_TEST(round_trip("She said \"hi\" (twice) and paid $5.", english) == "She said \"hi\" (twice) and paid $5.");
  BOOST_TEST(round_trip("It costs 3.5 or 1,000 dollars.", english) == "It costs 3.5 or 1,000 dollars.");
  BOOST_TEST(round_trip("Ein Hund rennt über die Wiese.", german) == "Ein hund rennt über die wiese.");
  BOOST_TEST(round_trip("Ein Schild: „Willkommen“.", german) == "Ein schild: \"willkommen\".");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rules)

BOOST_AUTO_TEST_CASE(names_are_saved_and_read_back) {
  for (const TextNormalization rule : {TextNormalization::lowercase_latin1_v1, english, german, penn}) {
    BOOST_TEST((text_normalization_from_string(to_string(rule)) == rule));
  }
  BOOST_TEST(to_string(english) == "moses-lowercase-en-v1");
  BOOST_TEST(to_string(german) == "moses-lowercase-de-v1");
  BOOST_TEST((moses_rule("en") == english));
  BOOST_TEST((moses_rule("de") == german));
  BOOST_TEST(error_message<std::invalid_argument>([] { moses_rule("fr"); }) ==
             "moses_rule: no rule for language 'fr' (there are: de, en)");
  BOOST_TEST(error_message<std::invalid_argument>([] { text_normalization_from_string("moses-lowercase-en-v2"); }) ==
             "text normalisation 'moses-lowercase-en-v2' is not one of: lowercase-latin1-v1, moses-lowercase-en-v1, "
             "moses-lowercase-de-v1, penn-lowercase-en-v1");
}

BOOST_AUTO_TEST_CASE(a_vocabulary_reads_raw_sentences_as_its_corpus) {
  const Vocabulary vocabulary = Vocabulary::build({split_tokens("ein hund rennt über die wiese .")},
                                                  {.normalization = german});
  const Tokens raw = split_tokens("Ein Hund rennt über die Wiese.");
  BOOST_TEST(vocabulary.normalised(raw) == split_tokens("ein hund rennt über die wiese ."));
  for (const TokenId id : vocabulary.encode(raw)) BOOST_TEST(id != vocabulary.unknown_id());
  // English is not a fixed point on all of its own output: what the rule wrote is encoded as
  // it is, one id a token.
  const Tokens once = normalised_tokens("Hors d'oeuvres", english);
  BOOST_TEST(once == split_tokens("hors d &apos;oeuvres"));
  BOOST_TEST(normalised_tokens(once, english).size() == 4u);
  BOOST_TEST(vocabulary.ids_of_normalised(once).size() == 3u);
  // A joint vocabulary counts sentences each normalised by its own language.
  const Vocabulary joint =
      Vocabulary::build({split_tokens("mcdonald &apos; s"), split_tokens("the dog &apos;s")},
                        {.normalization = german, .sentences_normalised = true});
  BOOST_TEST(joint.contains("&apos;s"));
  BOOST_TEST((joint.with_normalization(english).normalization() == english));
  BOOST_TEST(joint.with_normalization(english).tokens() == joint.tokens());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(corpora)

// The Moses rules leave (nearly) every line of the corpora they stand for as it is: what a
// model trained on those files sees is what a user's text becomes.
BOOST_AUTO_TEST_CASE(the_rules_are_a_fixed_point_on_the_corpora) {
  const std::filesystem::path data = data_directory();
  if (data.empty() || !std::filesystem::exists(data / "multi30k" / "train.de")) {
    BOOST_TEST_MESSAGE("no corpora found ($XGRAD_DATA or ../shared/data): skipped");
    return;
  }
  struct Case {
    std::filesystem::path file;
    TextNormalization rule;
    std::size_t header_lines, column;
    double at_least;
  };
  for (const Case& c : {Case{data / "multi30k" / "train.de", german, 0, 0, 0.999},
                        Case{data / "multi30k" / "train.en", english, 0, 0, 0.999},
                        Case{data / "multi30k" / "val.de", german, 0, 0, 0.999},
                        Case{data / "multi30k" / "val.en", english, 0, 0, 0.999},
                        Case{data / "sst2" / "train.tsv", penn, 1, 0, 0.995},
                        Case{data / "sst2" / "dev.tsv", penn, 1, 0, 0.98},
                        Case{data / "trec" / "train.tsv", penn, 1, 0, 0.98}}) {
    const Agreement a = agreement(c.file, c.rule, c.header_lines, c.column);
    std::string examples;
    for (const std::string& line : a.first_changed) examples += "\n  " + line;
    BOOST_TEST_MESSAGE(c.file.string() << " under " << to_string(c.rule) << ": " << a.unchanged << " of " << a.lines
                                       << " lines unchanged" << examples);
    BOOST_TEST(a.rate() >= c.at_least, c.file.string() << ": " << a.unchanged << " of " << a.lines << examples);
  }
}

BOOST_AUTO_TEST_SUITE_END()
