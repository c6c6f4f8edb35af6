// The training API's loop: a step whose loss or gradient is not finite is skipped and
// counted, too many in a row stop the run without touching the last good checkpoint, Ctrl-C
// and SIGTERM save a checkpoint that resumes exactly, a checkpoint past the end of smaller
// data is refused, accumulated micro-batches give the step of one large batch, schedulers
// step when they are told to, and the kept weights follow the validation score.
#define BOOST_TEST_MODULE trainer
#include "xgrad_test.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <sstream>

#include <xgrad/train.h>

using namespace xgrad;
using xgrad::testing::TempDir;

namespace {

// One batch: the inputs of a one-output linear model.
using Batch = std::vector<std::array<float, 2>>;

// A one-output linear model trained to make sum(w . x + b) small, with a step function that
// can be told to poison chosen steps with NaN or to raise a signal.
struct Setup {
  struct Seeded {
    Seeded() { manual_seed(5); }  // every Setup starts from the same weights
  } seeded;
  TempDir dir;
  nn::Linear<float> model{{.in_features = 2, .out_features = 1}};
  optim::SGD<float> optimizer{model.named_parameters(), {.lr = 0.1}};
  optim::ReduceLROnPlateau scheduler{optimizer, {.mode = optim::PlateauMode::max}};
  std::size_t batches_per_epoch;
  std::vector<std::size_t> poisoned;  // steps (from 1) whose loss is NaN
  std::size_t calls = 0;
  int interrupt_at = 0;               // the call that raises interrupt_signal (0: none)
  int interrupt_signal = SIGINT;
  std::ostringstream report;

  // 10 batches an epoch by default.
  explicit Setup(std::size_t batches = 10) : batches_per_epoch(batches) {}

  training::TrainerOptions options(std::size_t epochs) {
    return {.epochs = epochs,
            .clip_norm = 1.0,
            .checkpoint = dir.file("checkpoint.safetensors"),
            .best_weights = dir.file("model.safetensors"),
            .log = dir.file("log.csv"),
            .max_bad_steps = 3,
            .report = &report,
            .progress = nullptr};
  }

  // Batches drawn in the generator's order: each holds one example of its own.
  std::vector<Batch> epoch(Generator& order) const {
    std::vector<Batch> batches;
    for (std::size_t i = 0; i < batches_per_epoch; ++i) {
      batches.push_back({{float(order.uniform(0.5, 1.5)), 2.0f}});
    }
    return batches;
  }

  training::StepOutput step(const Batch& batch) {
    ++calls;
    Tensor<float> x = Tensor<float>::zeros({batch.size(), 2});
    for (std::size_t i = 0; i < batch.size(); ++i) {
      x.mutable_value()(i, 0) = batch[i][0];
      x.mutable_value()(i, 1) = batch[i][1];
    }
    Tensor<float> loss = sum(model(x));
    if (int(calls) == interrupt_at) std::raise(interrupt_signal);
    if (std::find(poisoned.begin(), poisoned.end(), calls) != poisoned.end()) loss = loss * std::nanf("");
    return {loss, batch.size()};
  }

  training::RunEnd fit(training::Trainer& trainer) {
    trainer.add_scheduler(scheduler, training::ScheduleAt::validation);
    trainer.validation({"score"}, [this] { return training::Validation{-double(model.weight.value()(0, 0)), "ok", {0.0}}; });
    return trainer.fit([this](Generator& order) { return epoch(order); }, [this](const Batch& b) { return step(b); });
  }
  training::RunEnd fit(training::TrainerOptions options) {
    training::Trainer trainer(model, optimizer, std::move(options));
    return fit(trainer);
  }
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(non_finite_steps_are_skipped_and_counted) {
  Setup s;
  s.poisoned = {2, 5, 6};
  const Array<float> before = s.model.weight.value();
  training::Trainer trainer(s.model, s.optimizer, s.options(1));
  BOOST_TEST((s.fit(trainer) == training::RunEnd::finished));
  BOOST_TEST(trainer.progress().skipped_steps == 3u);
  BOOST_TEST(trainer.progress().steps == 10u);
  // 7 good updates of w -= 0.1 * d(sum(w . x + b))/dw; the gradient (x0, 2) of w and 1 of b
  // are clipped together to norm 1, so w0 moves by 0.1 * x0 / sqrt(x0^2 + 5) each time.
  Generator order(1);
  const std::vector<Batch> batches = s.epoch(order);
  double expected = before(0, 0), magnitudes = std::abs(before(0, 0));
  for (std::size_t call = 1; call <= batches.size(); ++call) {
    if (std::find(s.poisoned.begin(), s.poisoned.end(), call) != s.poisoned.end()) continue;
    const double x0 = batches[call - 1][0][0], step = 0.1 * x0 / (std::sqrt(x0 * x0 + 5) + 1e-6);
    expected -= step;
    magnitudes += step;
  }
  // 7 rounded updates (and each step's own rounding) of magnitudes below |w| + the steps.
  const double bound = xgrad::testing::sum_error_bound<float>(2 * 7, magnitudes);
  BOOST_TEST(std::abs(s.model.weight.value()(0, 0) - expected) <= bound);
  BOOST_TEST(read_file(s.dir.file("log.csv")).find(",3\n") != std::string::npos);  // skipped_steps column
}

BOOST_AUTO_TEST_CASE(too_many_bad_steps_in_a_row_stop_and_keep_the_last_good_checkpoint) {
  Setup s;
  BOOST_TEST_REQUIRE((s.fit(s.options(1)) == training::RunEnd::finished));
  const std::string good = read_file(s.dir.file("checkpoint.safetensors"));
  s.poisoned = {13, 14, 15};  // the second epoch's steps 3, 4, 5
  training::TrainerOptions options = s.options(2);
  options.resume = true;
  try {
    s.fit(options);
    BOOST_FAIL("three bad steps in a row must stop the run");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(contains(e.what(), "3 steps in a row"), e.what());
    BOOST_TEST(contains(e.what(), "checkpoint.safetensors"), e.what());
  }
  BOOST_TEST(read_file(s.dir.file("checkpoint.safetensors")) == good);
}

BOOST_AUTO_TEST_CASE(ctrl_c_saves_a_checkpoint_that_resumes_exactly) {
  Setup whole, parts;
  whole.fit(whole.options(2));

  parts.interrupt_at = 13;
  training::Trainer interrupted(parts.model, parts.optimizer, parts.options(2));
  BOOST_TEST((parts.fit(interrupted) == training::RunEnd::interrupted));
  BOOST_TEST(interrupted.progress().steps == 13u);
  BOOST_TEST(contains(parts.report.str(), "interrupted at step 13; the checkpoint"), parts.report.str());
  // A fresh process loads the checkpoint and continues.
  Setup resumed;
  resumed.calls = 13;
  const training::TrainingProgress progress = training::load_checkpoint(parts.dir.file("checkpoint.safetensors"), resumed.model,
                                                                  resumed.optimizer, {&resumed.scheduler});
  BOOST_TEST(progress.epoch == 2u);
  BOOST_TEST(progress.batches_done == 3u);
  training::TrainerOptions options = resumed.options(2);
  options.checkpoint = parts.dir.file("checkpoint.safetensors");
  options.resume = true;
  BOOST_TEST((resumed.fit(options) == training::RunEnd::finished));
  BOOST_TEST(resumed.model.weight.value() == whole.model.weight.value());
  BOOST_TEST(resumed.model.bias.value() == whole.model.bias.value());
}

BOOST_AUTO_TEST_CASE(a_corrupt_checkpoint_is_refused_with_its_name) {
  Setup s;
  write_file_atomically(s.dir.file("checkpoint.safetensors"), "not a checkpoint at all");
  training::TrainerOptions options = s.options(1);
  options.resume = true;
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (attempt == 0) {
        training::load_checkpoint(s.dir.file("checkpoint.safetensors"), s.model, s.optimizer, {&s.scheduler});
      } else {
        s.fit(options);
      }
      BOOST_FAIL("a corrupt checkpoint must be refused");
    } catch (const file_error& e) {
      BOOST_TEST(contains(e.what(), "checkpoint.safetensors"), e.what());
    }
  }
  BOOST_TEST(s.calls == 0u);
}

// A scheduler's or container's stop (SIGTERM) is treated as Ctrl-C; were it not caught, it
// would end this test process.
BOOST_AUTO_TEST_CASE(sigterm_saves_a_checkpoint_like_ctrl_c) {
  Setup s;
  s.interrupt_at = 4;
  s.interrupt_signal = SIGTERM;
  BOOST_TEST((s.fit(s.options(2)) == training::RunEnd::interrupted));
  Setup resumed;
  BOOST_TEST(training::load_checkpoint(s.dir.file("checkpoint.safetensors"), resumed.model, resumed.optimizer,
                                    {&resumed.scheduler})
                 .steps == 4u);
}

// Saved after batch 5 of 10, resumed on data of 2 batches: the epoch could never end. (The
// time budget turns the endless loop this once was into a failure rather than a hang.)
BOOST_AUTO_TEST_CASE(resuming_past_the_end_of_smaller_data_is_refused_with_both_numbers) {
  Setup s;
  s.interrupt_at = 5;
  BOOST_TEST_REQUIRE((s.fit(s.options(2)) == training::RunEnd::interrupted));
  Setup smaller(2);
  training::TrainerOptions options = smaller.options(2);
  options.checkpoint = s.dir.file("checkpoint.safetensors");
  options.resume = true;
  options.time_budget_minutes = 0.01;
  try {
    smaller.fit(options);
    BOOST_FAIL("a position past the end of the data must be refused");
  } catch (const training::resume_error& e) {
    for (const char* part : {"checkpoint.safetensors", "batch 5", "only 2"}) BOOST_TEST(contains(e.what(), part), e.what());
  }
  BOOST_TEST(smaller.calls == 0u);
}

// Four micro-batches of one example accumulate into the step of one batch of all four:
// their gradients are averaged, so the update is that of the mean loss.
BOOST_AUTO_TEST_CASE(accumulated_micro_batches_make_the_step_of_one_large_batch) {
  Setup micro(8), large(2);
  micro.optimizer.set_learning_rate(0.05);
  large.optimizer.set_learning_rate(0.05);
  training::TrainerOptions micro_options = micro.options(1);
  micro_options.accumulate = 4;
  micro_options.clip_norm = 0;
  training::Trainer micro_trainer(micro.model, micro.optimizer, micro_options);
  std::vector<training::StepReport> reports;
  micro_trainer.on_step([&](const training::StepReport& r) { reports.push_back(r); });
  BOOST_TEST_REQUIRE((micro.fit(micro_trainer) == training::RunEnd::finished));
  BOOST_TEST(micro.calls == 8u);
  BOOST_TEST(micro_trainer.progress().steps == 2u);
  BOOST_TEST_REQUIRE(reports.size() == 2u);
  BOOST_TEST(reports[1].batches_done == 8u);
  BOOST_TEST(reports[1].tokens == 4u);

  // The same eight examples, four to a batch, with the loss their mean.
  Generator order(1);
  const std::vector<Batch> examples = micro.epoch(order);
  std::vector<Batch> batches(2);
  for (std::size_t i = 0; i < examples.size(); ++i) batches[i / 4].push_back(examples[i][0]);
  training::TrainerOptions large_options = large.options(1);
  large_options.clip_norm = 0;
  training::Trainer large_trainer(large.model, large.optimizer, large_options);
  BOOST_TEST_REQUIRE((large_trainer.fit([&](Generator&) { return batches; },
                                        [&](const Batch& b) {
                                          training::StepOutput out = large.step(b);
                                          out.loss = out.loss * 0.25f;
                                          return out;
                                        }) == training::RunEnd::finished));
  // Sums of four gradient terms of magnitude below 1.5 each, then two updates.
  const double bound = xgrad::testing::sum_error_bound<float>(4 * 2 + 2, 2 * 0.05 * 4 * 1.5 + 1);
  for (std::size_t j = 0; j < 2; ++j) {
    BOOST_TEST(std::abs(micro.model.weight.value()(0, j) - large.model.weight.value()(0, j)) <= bound);
  }
  BOOST_TEST(std::abs(micro.model.bias.value()(0) - large.model.bias.value()(0)) <= bound);
  Setup untouched;  // the comparison means something only if the steps moved the weights
  BOOST_TEST(micro.model.bias.value()(0) != untouched.model.bias.value()(0));
}

// A per-step scheduler steps after every optimizer step, a per-epoch one after every epoch,
// and the learning rate each step used is what the hooks see.
BOOST_AUTO_TEST_CASE(schedulers_step_when_they_are_told_to) {
  Setup s(3);
  optim::StepLR per_step(s.optimizer, 1, 0.5);
  training::TrainerOptions options = s.options(2);
  training::Trainer trainer(s.model, s.optimizer, options);
  trainer.add_scheduler(per_step, training::ScheduleAt::every_step);
  std::vector<double> rates;
  trainer.on_step([&](const training::StepReport& r) { rates.push_back(r.learning_rate); });
  std::size_t epochs_seen = 0;
  trainer.on_epoch([&](const training::EpochReport& r) {
    ++epochs_seen;
    BOOST_TEST(r.validation != nullptr);
    BOOST_TEST(r.validation->summary == "ok");
  });
  BOOST_TEST_REQUIRE((s.fit(trainer) == training::RunEnd::finished));
  BOOST_TEST(epochs_seen == 2u);
  BOOST_TEST_REQUIRE(rates.size() == 6u);
  // The plateau scheduler (mode max, patience 10) never cuts in two epochs: only StepLR halves.
  for (std::size_t i = 0; i < rates.size(); ++i) BOOST_TEST(rates[i] == 0.1 * std::pow(0.5, double(i)));
  BOOST_TEST(per_step.last_epoch() == 6);
  // Both schedulers are in the checkpoint, each under its own prefix.
  Setup resumed(3);
  optim::StepLR restored(resumed.optimizer, 1, 0.5);
  training::load_checkpoint(s.dir.file("checkpoint.safetensors"), resumed.model, resumed.optimizer,
                         {&restored, &resumed.scheduler});
  BOOST_TEST(restored.last_epoch() == 6);
  // A run that has only one of them cannot take the checkpoint: the other would be lost.
  Setup fewer(3);
  try {
    training::load_checkpoint(s.dir.file("checkpoint.safetensors"), fewer.model, fewer.optimizer, {&fewer.scheduler});
    BOOST_FAIL("a checkpoint with a scheduler more than the run's must be refused");
  } catch (const file_error& e) {
    BOOST_TEST(contains(e.what(), "scheduler_2."), e.what());
  }
}

// With Better::lower a falling score is an improvement; without a validation the training
// loss chooses. Either way the kept weights are the best epoch's.
BOOST_AUTO_TEST_CASE(the_kept_weights_follow_the_score_in_the_direction_asked) {
  for (const training::Better better : {training::Better::higher, training::Better::lower}) {
    Setup s(2);
    training::TrainerOptions options = s.options(3);
    options.better = better;
    training::Trainer trainer(s.model, s.optimizer, options);
    // Scores 1, 3, 2 by epoch: the highest is epoch 2's, the lowest epoch 1's.
    const std::vector<double> scores{1, 3, 2};
    std::size_t epoch = 0;
    std::vector<Array<float>> weights;
    trainer.validation({"score"}, [&] {
      weights.push_back(s.model.weight.value());
      return training::Validation{scores[epoch++], "", {0.0}};
    });
    BOOST_TEST_REQUIRE((trainer.fit([&](Generator& order) { return s.epoch(order); },
                                    [&](const Batch& b) { return s.step(b); }) == training::RunEnd::finished));
    const std::size_t best = better == training::Better::higher ? 2 : 1;
    BOOST_TEST(trainer.progress().best_epoch == best);
    nn::Linear<float> kept({.in_features = 2, .out_features = 1});
    nn::load_state_dict(kept, s.dir.file("model.safetensors"));
    BOOST_TEST(kept.weight.value() == weights[best - 1]);
  }
}

// keep_epochs keeps the weights after each of the last N complete epochs, each as the model
// stood when its epoch ended; a partial epoch (a step limit) adds none, and files that are not
// epoch weights stay.
BOOST_AUTO_TEST_CASE(the_last_epochs_weights_are_kept_and_older_ones_removed) {
  Setup s(2);
  training::TrainerOptions options = s.options(4);
  options.epoch_weights = s.dir.file("epochs");
  options.keep_epochs = 2;
  options.max_steps = 7;  // epoch 4 ends after 1 of its 2 steps
  std::filesystem::create_directories(s.dir.file("epochs"));
  write_file_atomically(s.dir.file("epochs/notes.txt"), "mine");
  training::Trainer trainer(s.model, s.optimizer, options);
  std::vector<Array<float>> weights;
  trainer.on_epoch([&](const training::EpochReport&) { weights.push_back(s.model.weight.value()); });
  BOOST_TEST_REQUIRE((s.fit(trainer) == training::RunEnd::limit_reached));
  BOOST_TEST_REQUIRE(weights.size() == 4u);
  const auto kept = training::kept_epoch_weights(s.dir.file("epochs"));
  BOOST_TEST_REQUIRE(kept.size() == 2u);
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const std::size_t epoch = i + 2;  // epochs 2 and 3; epoch 4 is partial
    BOOST_TEST(kept[i].first == epoch);
    BOOST_TEST(kept[i].second == training::epoch_weights_file(s.dir.file("epochs"), epoch));
    nn::Linear<float> saved({.in_features = 2, .out_features = 1});
    nn::load_state_dict(saved, kept[i].second.string());
    BOOST_TEST(saved.weight.value() == weights[epoch - 1]);
  }
  BOOST_TEST(weights[1] != weights[2]);  // else the two files prove nothing
  BOOST_TEST(read_file(s.dir.file("epochs/notes.txt")) == "mine");
  BOOST_CHECK_THROW(training::Trainer(s.model, s.optimizer, training::TrainerOptions{.keep_epochs = 1}), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_loss_that_is_not_a_scalar_is_refused_naming_its_shape) {
  Setup s;
  training::Trainer trainer(s.model, s.optimizer, s.options(1));
  try {
    trainer.fit([&](Generator& order) { return s.epoch(order); },
                [&](const Batch&) { return training::StepOutput{Tensor<float>::zeros({2, 3}, true), 1}; });
    BOOST_FAIL("a loss of shape [2, 3] must be refused");
  } catch (const shape_error& e) {
    BOOST_TEST(contains(e.what(), "[2, 3]"), e.what());
  }
}

BOOST_AUTO_TEST_CASE(options_that_cannot_work_are_refused) {
  Setup s;
  BOOST_CHECK_THROW(training::Trainer(s.model, s.optimizer, training::TrainerOptions{.accumulate = 0}), std::invalid_argument);
  BOOST_CHECK_THROW(training::Trainer(s.model, s.optimizer, training::TrainerOptions{.epochs = 0}), std::invalid_argument);
  BOOST_CHECK_THROW(training::Trainer(s.model, s.optimizer, training::TrainerOptions{.resume = true}), std::invalid_argument);
}

// A layer kept as a member but never registered is trained by nothing a checkpoint saves: the
// first step is refused, naming its shape, before anything changes.
BOOST_AUTO_TEST_CASE(a_loss_through_an_unregistered_layer_is_refused_naming_it) {
  struct Forgetful : nn::Module<float> {
    nn::Linear<float> registered{{.in_features = 2, .out_features = 3}};
    nn::Linear<float> forgotten{{.in_features = 3, .out_features = 1}};
    Forgetful() { register_module("registered", registered); }
  } model;
  optim::SGD<float> optimizer{model.named_parameters(), {.lr = 0.1}};
  const Array<float> before = model.registered.weight.value();
  Setup s;
  training::Trainer trainer(model, optimizer, s.options(1));
  try {
    trainer.fit([&](Generator& order) { return s.epoch(order); },
                [&](const Batch&) {
                  return training::StepOutput{sum(model.forgotten(model.registered(Tensor<float>::ones({1, 2})))), 1};
                });
    BOOST_FAIL("a loss through an unregistered layer must be refused");
  } catch (const graph_error& e) {
    BOOST_TEST(contains(e.what(), "[1, 3]"), e.what());  // the forgotten weight
    BOOST_TEST(contains(e.what(), "register_module"), e.what());
  }
  BOOST_TEST(model.registered.weight.value() == before);
}

// Epoch summaries are the run's output: when they cannot be written (a full disk, a closed
// pipe) the run stops with an error naming the stream, before that epoch's checkpoint, so a
// resumed run repeats the epoch whose summary was lost.
BOOST_AUTO_TEST_CASE(a_report_that_cannot_be_written_stops_the_run_naming_the_stream) {
  struct Refusing : std::streambuf {
    int overflow(int) override { return traits_type::eof(); }
  } refusing;
  std::ostream lost(&refusing);
  Setup s;
  training::TrainerOptions options = s.options(2);
  options.report = &lost;
  try {
    s.fit(options);
    BOOST_FAIL("a report that cannot be written must stop the run");
  } catch (const file_error& e) {
    BOOST_TEST(contains(e.what(), "the trainer's report stream: writing failed"), e.what());
  }
  BOOST_TEST(!std::filesystem::exists(s.dir.file("checkpoint.safetensors")));
}
