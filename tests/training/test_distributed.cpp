// Data parallelism (training/distributed.h), run as one process and under
// `mpirun -np 2`: the broadcast gives every rank rank 0's weights, sums add every rank's
// values, and training on each rank's share of the global batches with the gradients summed
// across ranks ends with the parameters of one process trained on the whole batches, by
// hand and through the Trainer, where rank 0 alone writes the run's files.
// Every rank runs every check in the same order (a check that fails does not stop a test
// case), so that no rank waits in a collective for one that left.
#define BOOST_TEST_MODULE distributed
#include "xgrad_test.h"

#include <cmath>

#include <xgrad/train.h>
#include <xgrad/training/distributed.h>

using namespace xgrad;

namespace {

distributed::ProcessGroup& group() { return distributed::world(); }

// Rows of tokens, each with one target value; a model reads a row's tokens and predicts it.
struct Example {
  std::int64_t token;
  float target;
};

// A small regression model with the parameter kinds that matter to a reducer: a table whose
// rows only some examples read, a parameter read only by one example (so that on some ranks
// it has no gradient at all), and one that no example reads.
struct Model : nn::Module<float> {
  nn::Embedding<float> table{{.num_embeddings = 10, .embedding_dim = 4}};
  nn::Linear<float> hidden{{.in_features = 4, .out_features = 6}};
  nn::Linear<float> output{{.in_features = 6, .out_features = 1}};
  nn::Linear<float> rare{{.in_features = 4, .out_features = 1}};    // example 5 alone reads it
  nn::Linear<float> unused{{.in_features = 4, .out_features = 1}};  // nothing reads it
  Model() {
    register_module("table", table);
    register_module("hidden", hidden);
    register_module("output", output);
    register_module("rare", rare);
    register_module("unused", unused);
  }
  // sum over the examples [first, end) of (prediction - target)^2, divided by `global_count`:
  // each rank's share of the global batch's mean loss.
  Tensor<float> loss(const std::vector<Example>& batch, std::size_t first, std::size_t end, std::size_t global_count) {
    Tensor<float> total = Tensor<float>::scalar(0);
    for (std::size_t i = first; i < end; ++i) {
      const Tensor<float> embedded = table(Indices({batch[i].token}));  // [1, 4]
      Tensor<float> prediction = output(tanh(hidden(embedded)));
      if (i == 5) prediction = prediction + rare(embedded);
      const Tensor<float> error = prediction - Tensor<float>::full({1, 1}, batch[i].target);
      total = total + sum(error * error);
    }
    return total * (1.0f / static_cast<float>(global_count));
  }
};

std::vector<Example> global_batch(std::size_t step) {
  std::vector<Example> batch;
  for (std::size_t i = 0; i < 8; ++i) {
    batch.push_back({static_cast<std::int64_t>((3 * step + 5 * i) % 10), std::sin(float(step + i))});
  }
  return batch;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_world_knows_its_rank_and_size) {
  BOOST_TEST(group().size() >= 1);
  BOOST_TEST(group().rank() >= 0);
  BOOST_TEST(group().rank() < group().size());
}

// Each rank adds rank + 1: the sum is 1 + 2 + ... + size, on every rank.
BOOST_AUTO_TEST_CASE(sum_adds_every_ranks_values) {
  const int size = group().size();
  std::vector<double> values{double(group().rank() + 1), -1.0};
  group().sum(values);
  BOOST_TEST(values[0] == size * (size + 1) / 2.0);
  BOOST_TEST(values[1] == -double(size));
  std::vector<float> floats{float(group().rank() + 1)};
  group().sum(floats);
  BOOST_TEST(floats[0] == float(size * (size + 1) / 2));
}

// Models initialised with a seed of each rank's own are rank 0's after the broadcast.
BOOST_AUTO_TEST_CASE(broadcast_state_gives_every_rank_rank_0s_weights) {
  manual_seed(group().rank() == 0 ? 7 : 100 + group().rank());
  Model model;
  distributed::broadcast_state(model, group());
  manual_seed(7);
  const Model rank_0;
  const NamedTensors<float> got = model.state_dict(), expected = rank_0.state_dict();
  for (std::size_t i = 0; i < got.size(); ++i) {
    BOOST_TEST((got[i].second.value() == expected[i].second.value()), got[i].first);
  }
}

// Five SGD steps on global batches of 8 examples: each rank computes the gradient of its
// share (its loss divided by the global count), the reducer sums them in buckets, and the
// parameters end as those of one process that took the whole batches, which every rank also
// trains as the reference. Buckets of 16 floats pack the small tensors together (the table's
// 40 make a bucket of their own, summed in place); buckets of one float sum every tensor in
// place, the rare one too, which only one rank has a gradient for. With overlap, each bucket
// is summed on the reducer's thread as soon as backward has finished its gradients.
BOOST_AUTO_TEST_CASE(ranks_trained_on_shares_end_as_one_process_on_whole_batches) {
  for (const auto& variant : {std::pair<std::size_t, bool>{16, false}, {1, false}, {16, true}, {1, true}}) {
    const std::size_t bucket_floats = variant.first;
    const bool overlap = variant.second;
    BOOST_TEST_CONTEXT("buckets of " << bucket_floats << " floats" << (overlap ? ", overlapped" : "")) {
      manual_seed(group().rank() == 0 ? 7 : 100 + group().rank());
      Model parallel;
      distributed::broadcast_state(parallel, group());
      parallel.unused.bias.set_requires_grad(false);  // frozen: no gradient, and none awaited
      manual_seed(7);
      Model reference;
      optim::SGD<float> parallel_sgd(parallel.parameters(), {.lr = 0.1});
      optim::SGD<float> reference_sgd(reference.parameters(), {.lr = 0.1});
      const Array<float> initial_hidden = parallel.hidden.weight.value();
      distributed::GradientReducer reducer(parallel.parameters(), group(),
                                           {.bucket_bytes = bucket_floats * sizeof(float), .overlap = overlap});
      BOOST_TEST(reducer.buckets() >= (bucket_floats == 1 ? parallel.parameters().size() : 3u));
      BOOST_TEST(reducer.overlaps() == (overlap && group().size() > 1));
      BOOST_CHECK_THROW(distributed::GradientReducer(parallel.parameters(), group(), {.bucket_bytes = 0}),
                        std::invalid_argument);

      const auto size = static_cast<std::size_t>(group().size()), rank = static_cast<std::size_t>(group().rank());
      for (std::size_t step = 0; step < 5; ++step) {
        const std::vector<Example> batch = global_batch(step);
        const std::size_t first = rank * batch.size() / size, end = (rank + 1) * batch.size() / size;
        if (step != 2) reducer.prepare_for_backward();  // without, sum() starts every bucket
        parallel.loss(batch, first, end, batch.size()).backward();
        if (reducer.overlaps() && step == 0) BOOST_CHECK_THROW(reducer.prepare_for_backward(), std::logic_error);
        reducer.sum();
        BOOST_TEST(parallel.rare.weight.has_grad());  // here though only one rank read it
        BOOST_TEST(!parallel.unused.weight.has_grad());
        parallel_sgd.step();
        parallel_sgd.zero_grad();

        reference.loss(batch, 0, batch.size(), batch.size()).backward();
        reference_sgd.step();
        reference_sgd.zero_grad();
      }
      // Each gradient element is a sum of 8 example terms, each below about 4 in size (errors
      // below 2 times weights and activations below 2), added 4 + 4 across ranks instead of 8
      // in one: the two differ by at most about 8 eps * 4 = 2e-6, 2e-7 after the rate of 0.1.
      // Five steps, and what earlier differences change in later gradients, stay within 1e-5.
      const NamedTensors<float> got = parallel.state_dict(), expected = reference.state_dict();
      for (std::size_t i = 0; i < got.size(); ++i) {
        const Array<float>& a = got[i].second.value();
        const Array<float>& b = expected[i].second.value();
        for (std::size_t k = 0; k < a.size(); ++k) BOOST_TEST(std::abs(a.data()[k] - b.data()[k]) <= 1e-5f, got[i].first);
      }
      BOOST_TEST((parallel.hidden.weight.value() != initial_hidden));  // else the comparison proves nothing
    }
  }
}

namespace {

// The parameters of `model`, copied.
std::vector<Array<float>> weights_of(const nn::Module<float>& model) {
  std::vector<Array<float>> weights;
  for (const auto& entry : model.state_dict()) weights.push_back(entry.second.value());
  return weights;
}

// Two epochs of three global batches of 8 examples through the Trainer, with Adam and
// clipping; `group` null: one process on the whole batches. The run's files go to `out`.
std::vector<Array<float>> train_with_trainer(distributed::ProcessGroup* group, const std::filesystem::path& out,
                                             bool overlap) {
  std::filesystem::create_directories(out);
  manual_seed(group != nullptr && group->rank() != 0 ? 100 + group->rank() : 7);
  Model model;
  optim::Adam<float> adam(model.named_parameters(), {.lr = 0.01});
  training::TrainerOptions options{.epochs = 2, .clip_norm = 0.5};
  options.checkpoint = out / "checkpoint.safetensors";
  options.best_weights = out / "model.safetensors";
  options.log = out / "log.csv";
  options.report = nullptr;
  options.progress = nullptr;
  options.group = group;
  options.bucket_bytes = 16 * sizeof(float);
  options.overlap_allreduce = overlap;
  training::Trainer trainer(model, adam, options);
  trainer.validation({"score"}, [&] { return training::Validation{double(model.output.bias.value()(0)), "", {0.0}}; });
  // The speed column and the hooks count the global batch's examples, not this rank's.
  trainer.on_step([](const training::StepReport& report) { BOOST_TEST(report.tokens == 8u); });
  const std::size_t size = group != nullptr ? group->size() : 1, rank = group != nullptr ? group->rank() : 0;
  trainer.fit(
      [](Generator& order) {
        std::vector<std::vector<Example>> batches(3);
        for (std::vector<Example>& batch : batches) {
          for (std::size_t i = 0; i < 8; ++i) {
            batch.push_back({static_cast<std::int64_t>(order.below(10)), static_cast<float>(order.uniform(-1, 1))});
          }
        }
        return batches;
      },
      [&](const std::vector<Example>& batch) {
        const std::size_t first = rank * batch.size() / size, end = (rank + 1) * batch.size() / size;
        // The share's mean: the trainer weights it by the share's part of the global batch.
        return training::StepOutput{model.loss(batch, first, end, end - first), end - first, end - first};
      });
  return weights_of(model);
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_trainer_steps_ranks_as_one_process_and_rank_0_alone_writes) {
  xgrad::testing::TempDir dir;  // each rank's own
  const std::vector<Array<float>> parallel = train_with_trainer(&group(), dir.file("parallel"), false);
  const std::vector<Array<float>> overlapped = train_with_trainer(&group(), dir.file("overlapped"), true);
  const std::vector<Array<float>> alone = train_with_trainer(nullptr, dir.file("alone"), false);
  // As in the test above, with Adam's steps of at most the rate 0.01 each: within 1e-5.
  for (std::size_t i = 0; i < parallel.size(); ++i) {
    for (std::size_t k = 0; k < parallel[i].size(); ++k) {
      BOOST_TEST(std::abs(parallel[i].data()[k] - alone[i].data()[k]) <= 1e-5f, "tensor " << i << " element " << k);
      BOOST_TEST(std::abs(overlapped[i].data()[k] - alone[i].data()[k]) <= 1e-5f, "overlapped, tensor " << i);
    }
  }
  const bool files = std::filesystem::exists(dir.file("parallel/log.csv")) &&
                     std::filesystem::exists(dir.file("parallel/checkpoint.safetensors")) &&
                     std::filesystem::exists(dir.file("parallel/model.safetensors"));
  BOOST_TEST(files == (group().rank() == 0));
  if (group().rank() != 0) BOOST_TEST(std::filesystem::is_empty(dir.file("parallel")));
}
