#define BOOST_TEST_MODULE batching
#include "xgrad_test.h"

#include <algorithm>
#include <numeric>

#include "xgrad/models/batching.h"
#include "xgrad/models/classification_data.h"
#include "xgrad/models/seq2seq.h"
#include "xgrad/models/translation_data.h"

using namespace xgrad;
using namespace xgrad::models;
using xgrad::testing::shaped;

namespace {

// Uneven lengths in [1, 40], as in a corpus of sentences.
std::vector<std::size_t> sentence_lengths(std::size_t count, std::uint64_t seed) {
  Generator generator(seed);
  std::vector<std::size_t> lengths(count);
  for (std::size_t& length : lengths) length = 1 + generator.below(40);
  return lengths;
}

std::vector<std::size_t> sorted_indices(const std::vector<Batch>& batches) {
  std::vector<std::size_t> all;
  for (const Batch& batch : batches) all.insert(all.end(), batch.begin(), batch.end());
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bucket_sampler)

BOOST_AUTO_TEST_CASE(every_example_appears_once_per_epoch) {
  const std::vector<std::size_t> lengths = sentence_lengths(1003, 1);
  const BucketBatchSampler sampler(lengths, {.batch_size = 10, .pool_batches = 8});
  BOOST_TEST(sampler.batches_per_epoch() == 101u);
  BOOST_TEST(sampler.example_count() == 1003u);
  Generator generator(7);
  for (int epoch = 0; epoch < 3; ++epoch) {
    const std::vector<Batch> batches = sampler.epoch(generator);
    BOOST_TEST_REQUIRE(batches.size() == 101u);
    std::vector<std::size_t> expected(lengths.size());
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    BOOST_TEST(sorted_indices(batches) == expected);
    // Only the last pool can leave a partial batch.
    const auto partial = std::count_if(batches.begin(), batches.end(), [](const Batch& b) { return b.size() != 10; });
    BOOST_TEST(partial == 1);
  }
}

BOOST_AUTO_TEST_CASE(an_epoch_is_a_function_of_the_generator_state) {
  const BucketBatchSampler sampler(sentence_lengths(500, 2), {.batch_size = 16, .pool_batches = 4});
  Generator generator(42);
  const std::vector<Batch> first = sampler.epoch(generator);
  const std::string state_before_second = generator.state();
  const std::vector<Batch> second = sampler.epoch(generator);
  BOOST_TEST(first != second);

  // Resuming: restore the state saved at the start of the epoch and draw the epoch again.
  Generator resumed(0);
  resumed.set_state(state_before_second);
  BOOST_TEST(sampler.epoch(resumed) == second);

  Generator same_seed(42);
  BOOST_TEST(sampler.epoch(same_seed) == first);
}

// Ranks deal a batch's rows among themselves: every row once, and the shares' lengths
// balanced where the batch is sorted by length.
BOOST_AUTO_TEST_CASE(rank_shares_deal_every_row_once_and_balance_sorted_lengths) {
  const models::Batch rows{10, 11, 12, 13, 14, 15, 16};  // as lengths, sorted
  BOOST_TEST(models::rank_share(rows, 0, 2) == models::Batch({10, 12, 14, 16}), boost::test_tools::per_element());
  BOOST_TEST(models::rank_share(rows, 1, 2) == models::Batch({11, 13, 15}), boost::test_tools::per_element());
  BOOST_TEST(models::rank_share(rows, 0, 1) == rows, boost::test_tools::per_element());
  BOOST_TEST(models::rank_share(models::Batch{7}, 1, 2).empty());  // fewer rows than ranks
  BOOST_CHECK_THROW(models::rank_share(rows, 2, 2), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(pools_cut_padding_far_below_random_batches) {
  const std::vector<std::size_t> lengths = sentence_lengths(4000, 3);
  Generator generator(5);
  const BucketBatchSampler random_batches(lengths, {.batch_size = 32, .pool_batches = 1});
  const BucketBatchSampler bucketed(lengths, {.batch_size = 32, .pool_batches = 50});
  const double random_padding = padding_fraction(random_batches.epoch(generator), lengths);
  const double bucketed_padding = padding_fraction(bucketed.epoch(generator), lengths);
  BOOST_TEST(random_padding > 0.35);
  BOOST_TEST(bucketed_padding < 0.05);
}

BOOST_AUTO_TEST_CASE(a_pool_is_cut_into_runs_of_sorted_lengths_in_shuffled_order) {
  const std::vector<std::size_t> lengths = sentence_lengths(400, 4);
  // One pool holds every example: the batches tile the sorted lengths.
  const BucketBatchSampler sampler(lengths, {.batch_size = 20, .pool_batches = 20});
  Generator generator(9);
  std::vector<Batch> batches = sampler.epoch(generator);
  const auto shortest = [&](const Batch& b) {
    return *std::min_element(b.begin(), b.end(), [&](auto x, auto y) { return lengths[x] < lengths[y]; });
  };
  const auto longest = [&](const Batch& b) {
    return *std::max_element(b.begin(), b.end(), [&](auto x, auto y) { return lengths[x] < lengths[y]; });
  };
  const auto by_shortest = [&](const Batch& a, const Batch& b) { return lengths[shortest(a)] < lengths[shortest(b)]; };
  BOOST_TEST(!std::is_sorted(batches.begin(), batches.end(), by_shortest));
  std::stable_sort(batches.begin(), batches.end(), by_shortest);
  for (std::size_t i = 1; i < batches.size(); ++i) {
    BOOST_TEST(lengths[longest(batches[i - 1])] <= lengths[shortest(batches[i])]);
  }
}

BOOST_AUTO_TEST_CASE(bad_options_are_rejected) {
  BOOST_CHECK_THROW(BucketBatchSampler({1, 2}, {.batch_size = 0}), std::invalid_argument);
  BOOST_CHECK_THROW(BucketBatchSampler({1, 2}, {.batch_size = 2, .pool_batches = 0}), std::invalid_argument);
  Generator generator(1);
  BOOST_TEST(BucketBatchSampler({}, {.batch_size = 4}).epoch(generator).empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(padding)

BOOST_AUTO_TEST_CASE(padding_fraction_counts_padded_cells) {
  const std::vector<std::size_t> lengths = {1, 2, 3, 4};
  // [1, 4] -> 8 cells, [2, 3] -> 6 cells; 10 tokens.
  BOOST_TEST(padding_fraction({{0, 3}, {1, 2}}, lengths) == 4.0 / 14.0, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(padding_fraction({{0}, {1}, {2, 3}}, lengths) == 1.0 / 11.0, boost::test_tools::tolerance(1e-15));
  BOOST_TEST(padding_fraction({}, lengths) == 0.0);
  BOOST_CHECK_THROW(padding_fraction({{4}}, lengths), index_error);
}

BOOST_AUTO_TEST_CASE(pad_batch_pads_rows_at_the_end) {
  const std::vector<std::vector<TokenId>> sequences = {{5, 6, 7}, {8}, {9, 10, 11, 12}, {}};
  const PaddedBatch padded = pad_batch(sequences, {2, 1, 3, 0}, 0);
  BOOST_TEST(padded.ids == shaped({4, 4}, {9, 10, 11, 12, 8, 0, 0, 0, 0, 0, 0, 0, 5, 6, 7, 0}));
  BOOST_TEST(padded.lengths == (std::vector<std::size_t>{4, 1, 0, 3}));

  const PaddedBatch with_pad_id = pad_batch(sequences, {1, 0}, 3);
  BOOST_TEST(with_pad_id.ids == shaped({2, 3}, {8, 3, 3, 5, 6, 7}));
  BOOST_TEST(pad_batch(sequences, {}, 0).ids.shape() == (Shape{0, 0}), boost::test_tools::per_element());
  BOOST_CHECK_THROW(pad_batch(sequences, {0, 4}, 0), index_error);
}

// Specials in another order than the programs': <pad> is id 1, so a batch padded with a
// literal 0 (<unk> here) would show.
const std::vector<std::string> reordered_specials = {"<unk>", "<pad>", "<sos>", "<eos>"};

BOOST_AUTO_TEST_CASE(sentence_pairs_get_sos_and_eos_and_are_padded_with_the_vocabularies_pad) {
  const Vocabulary source(reordered_specials, {"ein", "hund"});  // ein 4, hund 5
  const Vocabulary target({"<sos>", "<eos>", "<unk>", "<pad>"}, {"a", "dog"});  // <pad> 3, a 4, dog 5
  const ParallelCorpus corpus{.source = {{"Ein", "Hund"}, {"hund"}}, .target = {{"A", "dog"}, {"cat"}}};
  const EncodedPairs pairs = encode_pairs(corpus, source, target);
  BOOST_TEST(pairs.source == (std::vector<std::vector<TokenId>>{{4, 5}, {5}}));
  BOOST_TEST(pairs.target_inputs == (std::vector<std::vector<TokenId>>{{0, 4, 5}, {0, 2}}));
  BOOST_TEST(pairs.target_outputs == (std::vector<std::vector<TokenId>>{{4, 5, 1}, {2, 1}}));
  BOOST_TEST(pairs.references == (std::vector<Tokens>{{"a", "dog"}, {"cat"}}));
  BOOST_TEST(pairs.lengths == (std::vector<std::size_t>{3, 2}));

  const TranslationBatch batch = make_batch(pairs, {1, 0});
  BOOST_TEST(batch.source.ids == shaped({2, 2}, {5, 1, 4, 5}));
  BOOST_TEST(batch.source.lengths == (std::vector<std::size_t>{1, 2}));
  BOOST_TEST(batch.target.inputs == shaped({2, 3}, {0, 2, 3, 0, 4, 5}));
  BOOST_TEST(batch.target.outputs == shaped({2, 3}, {2, 1, 3, 4, 5, 1}));
  BOOST_TEST(batch.target_tokens == 5u);

  const EncodedPairs sources = encode_sources({{"hund"}, {"ein", "EIN", "katze"}}, source);
  BOOST_TEST(source_batch(sources, {0, 1}).ids == shaped({2, 3}, {5, 1, 1, 4, 4, 0}));
}

BOOST_AUTO_TEST_CASE(consecutive_batches_cover_the_rows_in_order) {
  BOOST_TEST(consecutive_batches(5, 2) == (std::vector<Batch>{{0, 1}, {2, 3}, {4}}));
  BOOST_TEST(consecutive_batches(4, 4) == (std::vector<Batch>{{0, 1, 2, 3}}));
  BOOST_TEST(consecutive_batches(0, 3).empty());
  BOOST_CHECK_THROW(consecutive_batches(3, 0), std::invalid_argument);
}

// The loss over a corpus is the token-weighted mean of every batch's: however the pairs are
// cut into batches, the same sum of per-token losses (in double) over the same tokens.
BOOST_AUTO_TEST_CASE(corpus_loss_is_the_mean_per_target_token_whatever_the_batch_size) {
  const Vocabulary source(reordered_specials, {"ein", "hund", "katze"});
  const Vocabulary target({"<sos>", "<eos>", "<unk>", "<pad>"}, {"a", "dog", "cat"});
  const ParallelCorpus corpus{.source = {{"ein", "hund"}, {"katze"}, {"ein", "katze", "hund"}},
                              .target = {{"a", "dog"}, {"cat"}, {"a", "cat", "dog"}}};
  const EncodedPairs pairs = encode_pairs(corpus, source, target);
  manual_seed(3);
  Seq2Seq<float> model({.source_vocabulary = source.size(), .target_vocabulary = target.size(), .embedding_size = 4,
                        .encoder_hidden = 4, .decoder_hidden = 4, .dropout = 0, .pad_id = 3, .sos_id = 0, .eos_id = 1});
  model.eval();
  double total = 0;
  for (std::size_t row = 0; row < 3; ++row) total += model.evaluate_loss(make_batch(pairs, {row}).source,
                                                                         make_batch(pairs, {row}).target).first;
  const CorpusLoss whole = corpus_loss(model, pairs, 3), singles = corpus_loss(model, pairs, 1);
  BOOST_TEST(whole.tokens == 9u);  // 2 + 1 + 3 words, each with <eos>
  BOOST_TEST(singles.tokens == 9u);
  BOOST_TEST(singles.per_token == total / 9);
  // Nine float terms summed in another order, each below 2 nats (log of a 7-word vocabulary).
  BOOST_TEST(std::abs(whole.per_token - singles.per_token) <= xgrad::testing::sum_error_bound<float>(9, 9 * 2.0) / 9);
}

BOOST_AUTO_TEST_CASE(labelled_texts_are_padded_with_the_vocabularys_pad) {
  const Vocabulary vocabulary(reordered_specials, {"good", "bad"});  // good 4, bad 5
  const LabelledTexts data{.path = "t.tsv", .texts = {{"Good"}, {"bad", "BAD", "film"}}, .labels = {"1", "0"}, .lines = {2, 3}};
  const EncodedTexts texts = encode_texts(data, vocabulary, LabelSet({"0", "1"}));
  BOOST_TEST(texts.tokens == (std::vector<std::vector<TokenId>>{{4}, {5, 5, 0}}));
  BOOST_TEST(texts.labels == (std::vector<std::int64_t>{1, 0}));
  BOOST_TEST(texts.lengths == (std::vector<std::size_t>{1, 3}));
  BOOST_TEST(make_batch(texts, {0, 1}).ids == shaped({2, 3}, {4, 1, 1, 5, 5, 0}));
}

BOOST_AUTO_TEST_CASE(padding_mask_marks_positions_past_each_length) {
  const Mask mask = padding_mask({2, 0, 3}, 3);
  BOOST_TEST(mask == shaped<Mask>({3, 3}, {false, false, true, true, true, true, false, false, false}));
  BOOST_CHECK_THROW(padding_mask({4}, 3), index_error);
}

BOOST_AUTO_TEST_SUITE_END()
