#pragma once
// The synthetic task the classifiers learn in their tests: texts of random tokens 2..21
// whose label says whether the trigger token occurs (ids 0 and 1 are <pad> and <unk>).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "xgrad/framework/optim.h"
#include "xgrad/framework/random.h"
#include "xgrad/models/classifier.h"

namespace xgrad::testing::presence {

using models::Batch;
using models::PaddedBatch;
using models::pad_batch;

constexpr std::int64_t trigger = 7;
constexpr std::size_t vocabulary = 22;

struct Example {
  std::vector<std::int64_t> tokens;
  std::int64_t label;
};

// Texts of 3 to 12 tokens; half of them contain the trigger token once.
inline std::vector<Example> presence_examples(std::size_t count, Generator& generator) {
  std::vector<Example> examples(count);
  for (Example& e : examples) {
    const std::size_t length = 3 + generator.below(10);
    for (std::size_t i = 0; i < length; ++i) {
      std::int64_t token = trigger;
      while (token == trigger) token = 2 + static_cast<std::int64_t>(generator.below(20));
      e.tokens.push_back(token);
    }
    e.label = static_cast<std::int64_t>(generator.below(2));
    if (e.label == 1) e.tokens[generator.below(length)] = trigger;
  }
  return examples;
}

inline PaddedBatch batch_of(const std::vector<Example>& examples, std::size_t begin, std::size_t end) {
  std::vector<std::vector<std::int64_t>> sequences;
  Batch rows;
  for (std::size_t i = begin; i < end; ++i) {
    sequences.push_back(examples[i].tokens);
    rows.push_back(i - begin);
  }
  return pad_batch(sequences, rows, 0);
}

inline Indices labels_of(const std::vector<Example>& examples, std::size_t begin, std::size_t end) {
  Indices labels = Indices::from_shape({end - begin});
  for (std::size_t i = begin; i < end; ++i) labels(i - begin) = examples[i].label;
  return labels;
}

struct Learned {
  double accuracy;  // on the held-out texts
  double peaks;     // the share of held-out positives whose pooling weight peaks on the trigger
};

// Trains `model` with Adam (learning rate `lr`) for `epochs` passes over 3000 texts, 50 a
// batch, and measures it on 400 others.
template <class Model>
Learned learn_presence(Model& model, double lr, int epochs) {
  Generator data(2);
  const std::vector<Example> train = presence_examples(3000, data);
  const std::vector<Example> held_out = presence_examples(400, data);
  optim::Adam<float> adam(model.named_parameters(), {.lr = lr});
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (std::size_t start = 0; start < train.size(); start += 50) {
      Tensor<float> loss = model.loss(batch_of(train, start, start + 50), labels_of(train, start, start + 50));
      loss.backward();
      adam.step();
      adam.zero_grad();
    }
  }
  model.eval();
  const models::Classification<float> result = model.forward(batch_of(held_out, 0, held_out.size()));
  const Indices predicted = argmax(result.logits, -1);
  std::size_t correct = 0, positives = 0, peaks_on_trigger = 0;
  for (std::size_t i = 0; i < held_out.size(); ++i) {
    correct += predicted(i) == held_out[i].label;
    if (held_out[i].label != 1) continue;
    ++positives;
    const float* weights = result.attention.data() + i * result.attention.shape()[1];
    const auto peak = std::max_element(weights, weights + held_out[i].tokens.size()) - weights;
    peaks_on_trigger += held_out[i].tokens[static_cast<std::size_t>(peak)] == trigger;
  }
  return {double(correct) / double(held_out.size()), double(peaks_on_trigger) / double(positives)};
}

}  // namespace xgrad::testing::presence
