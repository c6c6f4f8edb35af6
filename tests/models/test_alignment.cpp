// Alignments and <unk> replacement read off a hand-made translation whose attention is known.
#define BOOST_TEST_MODULE alignment
#include "xgrad_test.h"

#include "xgrad/models/alignment.h"

using namespace xgrad;
using namespace xgrad::models;

namespace {

// Target ids: <pad> 0, <unk> 1, <sos> 2, <eos> 3, then "dog" 4 and "runs" 5 (equally frequent,
// so in byte order).
const Vocabulary& target() {
  static const Vocabulary vocabulary = Vocabulary::build({{"dog", "runs"}}, {.specials = translation_specials()});
  return vocabulary;
}

// "<unk> <pad> runs" and <eos> over three source words: step 0 looks at word 2, step 1 (the
// <pad> the decoder produced) at word 0, step 2 mostly at word 1, the <eos> step at word 0.
Translation translation() {
  Array<float> attention(Shape{4, 3}, 0.0f);
  attention(0, 2) = .9f, attention(0, 0) = .1f;
  attention(1, 0) = 1;
  attention(2, 0) = .25f, attention(2, 1) = .5f, attention(2, 2) = .25f;
  attention(3, 0) = 1;
  return {{1, 0, 5}, -2.0, attention, -2.0};
}

}  // namespace

BOOST_AUTO_TEST_CASE(words_keep_the_steps_that_produced_them) {
  BOOST_TEST_REQUIRE(target().id("runs") == 5);
  const TranslatedWords words = translated_words(translation(), target());
  BOOST_TEST((words.words == Tokens{"<unk>", "runs"}));
  BOOST_TEST((words.steps == std::vector<std::size_t>{0, 2}));  // the <pad> took step 1
  BOOST_TEST((most_attended_sources(translation(), words) == std::vector<std::size_t>{2, 1}));
}

BOOST_AUTO_TEST_CASE(hard_alignments_are_pharaoh_pairs_and_soft_ones_the_attention_rows) {
  const Translation t = translation();
  const TranslatedWords words = translated_words(t, target());
  BOOST_TEST(pharaoh_alignment(most_attended_sources(t, words)) == "2-0 1-1");
  BOOST_TEST(pharaoh_alignment({}) == "");
  BOOST_TEST(soft_alignment(t, words) == "0.100,0.000,0.900 0.250,0.500,0.250");
}

BOOST_AUTO_TEST_CASE(unknown_words_become_the_most_attended_source_word) {
  const Translation t = translation();
  const TranslatedWords words = translated_words(t, target());
  const Tokens source{"der", "hund", "bello"};
  BOOST_TEST((replace_unknown_words(words, most_attended_sources(t, words), source) == Tokens{"bello", "runs"}));
}
