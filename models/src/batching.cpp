#include "xgrad/models/batching.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "xgrad/framework/errors.h"

namespace xgrad::models {
namespace {

// Fisher-Yates with the generator's unbiased below(), so the order is the same everywhere.
template <class T>
void shuffle(std::vector<T>& items, Generator& generator) {
  for (std::size_t i = items.size(); i > 1; --i) {
    std::swap(items[i - 1], items[static_cast<std::size_t>(generator.below(i))]);
  }
}

}  // namespace

BucketBatchSampler::BucketBatchSampler(std::vector<std::size_t> lengths, const BucketSamplerOptions& options)
    : lengths_(std::move(lengths)), options_(options) {
  if (options_.batch_size == 0) throw std::invalid_argument("BucketBatchSampler: batch_size must be at least 1, got 0");
  if (options_.pool_batches == 0) throw std::invalid_argument("BucketBatchSampler: pool_batches must be at least 1, got 0");
}

std::size_t BucketBatchSampler::batches_per_epoch() const noexcept {
  return (lengths_.size() + options_.batch_size - 1) / options_.batch_size;
}

std::vector<Batch> BucketBatchSampler::epoch(Generator& generator) const {
  std::vector<std::size_t> order(lengths_.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  shuffle(order, generator);

  const std::size_t pool_size = options_.batch_size * options_.pool_batches;
  std::vector<Batch> batches;
  batches.reserve(batches_per_epoch());
  for (std::size_t pool_begin = 0; pool_begin < order.size(); pool_begin += pool_size) {
    const auto first = order.begin() + static_cast<std::ptrdiff_t>(pool_begin);
    const auto last = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), pool_begin + pool_size));
    std::stable_sort(first, last, [&](std::size_t a, std::size_t b) { return lengths_[a] < lengths_[b]; });
    for (auto batch_begin = first; batch_begin < last;) {
      const auto batch_end = batch_begin + std::min<std::ptrdiff_t>(last - batch_begin,
                                                                    static_cast<std::ptrdiff_t>(options_.batch_size));
      batches.emplace_back(batch_begin, batch_end);
      batch_begin = batch_end;
    }
  }
  shuffle(batches, generator);
  return batches;
}

std::vector<Batch> consecutive_batches(std::size_t count, std::size_t batch_size) {
  if (batch_size == 0) throw std::invalid_argument("consecutive_batches: batch_size must be at least 1");
  std::vector<Batch> batches;
  for (std::size_t start = 0; start < count; start += batch_size) {
    Batch& rows = batches.emplace_back();
    for (std::size_t i = start; i < std::min(count, start + batch_size); ++i) rows.push_back(i);
  }
  return batches;
}

Batch rank_share(const Batch& rows, std::size_t rank, std::size_t ranks) {
  if (rank >= ranks) throw std::invalid_argument(detail::message("rank_share: rank ", rank, " of ", ranks, " ranks"));
  Batch share;
  for (std::size_t i = rank; i < rows.size(); i += ranks) share.push_back(rows[i]);
  return share;
}

double padding_fraction(const std::vector<Batch>& batches, std::span<const std::size_t> lengths) {
  std::size_t cells = 0;
  std::size_t tokens = 0;
  for (const Batch& batch : batches) {
    std::size_t longest = 0;
    for (const std::size_t index : batch) {
      if (index >= lengths.size()) {
        throw index_error(detail::message("padding_fraction: example ", index, " is outside the ", lengths.size(), " lengths"));
      }
      longest = std::max(longest, lengths[index]);
      tokens += lengths[index];
    }
    cells += longest * batch.size();
  }
  return cells == 0 ? 0.0 : static_cast<double>(cells - tokens) / static_cast<double>(cells);
}

PaddedBatch pad_batch(const std::vector<std::vector<TokenId>>& sequences, const Batch& batch, TokenId pad_id) {
  PaddedBatch padded;
  padded.lengths.reserve(batch.size());
  for (const std::size_t index : batch) {
    if (index >= sequences.size()) {
      throw index_error(detail::message("pad_batch: example ", index, " is outside the ", sequences.size(), " sequences"));
    }
    padded.lengths.push_back(sequences[index].size());
  }
  const std::size_t longest = padded.lengths.empty() ? 0 : *std::max_element(padded.lengths.begin(), padded.lengths.end());
  padded.ids = Indices::from_shape({batch.size(), longest});
  TokenId* row = padded.ids.data();
  for (const std::size_t index : batch) {
    const std::vector<TokenId>& sequence = sequences[index];
    std::copy(sequence.begin(), sequence.end(), row);
    std::fill(row + sequence.size(), row + longest, pad_id);
    row += longest;
  }
  return padded;
}

Mask padding_mask(const std::vector<std::size_t>& lengths, std::size_t max_length) {
  Mask mask = Mask::from_shape({lengths.size(), max_length});
  bool* row = mask.data();
  for (const std::size_t length : lengths) {
    if (length > max_length) {
      throw index_error(detail::message("padding_mask: length ", length, " exceeds max_length ", max_length));
    }
    std::fill(row, row + length, false);
    std::fill(row + length, row + max_length, true);
    row += max_length;
  }
  return mask;
}

}  // namespace xgrad::models
