#pragma once
// Batches of variable-length sequences. BucketBatchSampler draws batches of examples of
// similar length, to cut padding, in an order that changes every epoch and is reproducible
// from a seed; pad_batch turns one batch of id sequences into the [B, T] matrix the models
// read.

#include <cstddef>
#include <span>
#include <vector>

#include "xgrad/framework/random.h"
#include "xgrad/framework/tensor.h"
#include "xgrad/models/vocabulary.h"

namespace xgrad::models {

// The example indices of one batch.
using Batch = std::vector<std::size_t>;

struct BucketSamplerOptions {
  // Examples per batch (the last batch of an epoch may be smaller).
  std::size_t batch_size = 32;
  // Batches whose examples are sorted by length together. More batches per pool means less
  // padding but less variety within a batch; 1 gives plain random batches.
  std::size_t pool_batches = 64;
};

class BucketBatchSampler {
 public:
  // `lengths`: the sort key of each example, e.g. its token count. For sentence pairs use
  // max(source, target) length: on Multi30K train (batch 128, 64-batch pools) that leaves
  // 11% of the source and 6% of the target cells as padding, against 55% and 53% for random
  // batches, where sorting by the source alone leaves 3% and 33%.
  BucketBatchSampler(std::vector<std::size_t> lengths, const BucketSamplerOptions& options);

  // One epoch: the example indices are shuffled, cut into pools of pool_batches batches,
  // each pool is sorted by length (stable, so equal lengths stay shuffled) and cut into
  // batches, and the order of all batches is shuffled. Every example appears exactly once.
  // The result depends only on the generator's state on entry, so a run resumes mid-epoch
  // by restoring that state, calling epoch() again and skipping the batches already done.
  std::vector<Batch> epoch(Generator& generator) const;

  std::size_t example_count() const noexcept { return lengths_.size(); }
  std::size_t batches_per_epoch() const noexcept;
  const std::vector<std::size_t>& lengths() const noexcept { return lengths_; }

 private:
  std::vector<std::size_t> lengths_;
  BucketSamplerOptions options_;
};

// Rows 0 .. count - 1 in order, `batch_size` to a batch (the last may be shorter): how
// evaluation walks a corpus.
std::vector<Batch> consecutive_batches(std::size_t count, std::size_t batch_size);

// Rank `rank`'s share of a global batch under data parallelism over `ranks` ranks: every
// ranks-th row from row `rank`, as PyTorch's DistributedSampler deals them. A bucketed batch
// is sorted by length, so contiguous slices would give the last rank the longest rows and
// make the others wait for it at every allreduce. Empty when the batch has `rank` rows or fewer.
Batch rank_share(const Batch& rows, std::size_t rank, std::size_t ranks);

// The share of the [B, max length] cells of all batches that are padding, in [0, 1].
double padding_fraction(const std::vector<Batch>& batches, std::span<const std::size_t> lengths);

struct PaddedBatch {
  Indices ids;                       // [B, T], T the longest sequence; padded with pad_id
  std::vector<std::size_t> lengths;  // the unpadded length of each row
};

// Rows sequences[batch[0]], sequences[batch[1]], ... padded at the end to a common length.
// xgrad::index_error for an index outside the sequences.
PaddedBatch pad_batch(const std::vector<std::vector<TokenId>>& sequences, const Batch& batch, TokenId pad_id);

// [B, max_length], true at the positions t >= lengths[b] (the convention of masked softmax and
// attention key padding masks).
Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t max_length);

}  // namespace xgrad::models
