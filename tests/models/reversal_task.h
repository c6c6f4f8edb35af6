#pragma once
// The synthetic task the translation models learn in their tests: random sequences of
// symbols, each translated into its reverse. Ids 0-3 are <pad> <unk> <sos> <eos>.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "xgrad/framework/optim.h"
#include "xgrad/framework/random.h"
#include "xgrad/models/translator.h"

namespace xgrad::testing::reversal {

using models::Batch;
using models::PaddedBatch;
using models::TargetBatch;
using models::Translation;
using models::pad_batch;

constexpr std::int64_t first_symbol = 4;  // ids 0-3: <pad> <unk> <sos> <eos>

struct Example {
  std::vector<std::int64_t> source, target;
};

// Random sequences of symbols; the target is the source reversed.
inline std::vector<Example> reversal_examples(std::size_t count, std::size_t symbols, Generator& generator) {
  std::vector<Example> examples(count);
  for (Example& e : examples) {
    const std::size_t length = 3 + generator.below(4);
    for (std::size_t i = 0; i < length; ++i) {
      e.source.push_back(first_symbol + static_cast<std::int64_t>(generator.below(symbols)));
    }
    e.target.assign(e.source.rbegin(), e.source.rend());
  }
  return examples;
}

inline PaddedBatch sources(const std::vector<Example>& examples, std::size_t begin, std::size_t end) {
  std::vector<std::vector<std::int64_t>> sequences;
  Batch rows;
  for (std::size_t i = begin; i < end; ++i) {
    sequences.push_back(examples[i].source);
    rows.push_back(i - begin);
  }
  return pad_batch(sequences, rows, 0);
}

inline TargetBatch targets(const std::vector<Example>& examples, std::size_t begin, std::size_t end) {
  std::size_t longest = 0;
  for (std::size_t i = begin; i < end; ++i) longest = std::max(longest, examples[i].target.size() + 1);
  TargetBatch batch{Indices(Shape{end - begin, longest}, 0), Indices(Shape{end - begin, longest}, 0)};
  for (std::size_t i = begin; i < end; ++i) {
    const auto& target = examples[i].target;
    batch.inputs(i - begin, 0) = 2;  // <sos>
    for (std::size_t t = 0; t < target.size(); ++t) {
      batch.inputs(i - begin, t + 1) = target[t];
      batch.outputs(i - begin, t) = target[t];
    }
    batch.outputs(i - begin, target.size()) = 3;  // <eos>
  }
  return batch;
}

inline double sequence_accuracy(const std::vector<Translation>& translations, const std::vector<Example>& examples) {
  std::size_t correct = 0;
  for (std::size_t i = 0; i < translations.size(); ++i) correct += translations[i].tokens == examples[i].target;
  return double(correct) / double(translations.size());
}

// One epoch of optimizer steps over `train`, 50 examples a batch, the gradient norm clipped
// at 1; `after_step` (a scheduler's step, say) runs after each.
template <class Optimizer>
void train_epoch(const models::Translator<float>& model, Optimizer& optimizer, const std::vector<Example>& train,
                 const std::function<void()>& after_step = {}) {
  for (std::size_t start = 0; start < train.size(); start += 50) {
    Tensor<float> loss = model.loss(sources(train, start, start + 50), targets(train, start, start + 50));
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    optimizer.step();
    optimizer.zero_grad();
    if (after_step) after_step();
  }
}

}  // namespace xgrad::testing::reversal
