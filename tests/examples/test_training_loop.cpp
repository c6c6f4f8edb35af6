// The programs' shared training loop: a step whose loss or gradient is not finite is skipped
// and counted, too many in a row stop the run without touching the last good checkpoint,
// Ctrl-C and SIGTERM save a checkpoint that resumes exactly, a checkpoint past the end of
// smaller data is refused, and checkpoints are whole files.
#define BOOST_TEST_MODULE training_loop
#include "xgrad_test.h"

#include <csignal>
#include <cmath>

#include "cli.h"
#include "training.h"

using namespace xgrad;
using xgrad::testing::TempDir;

namespace {

// A one-parameter model trained on a fixed objective, with a step function that can be told
// to poison chosen steps with NaN.
struct Setup {
  struct Seeded {
    Seeded() { manual_seed(5); }  // every Setup starts from the same weights
  } seeded;
  TempDir dir;
  nn::Linear<float> model{{.in_features = 2, .out_features = 1}};
  optim::SGD<float> optimizer{model.named_parameters(), {.lr = 0.1}};
  optim::ReduceLROnPlateau scheduler{optimizer, {.mode = optim::PlateauMode::max}};
  models::BucketBatchSampler sampler;
  std::vector<std::size_t> poisoned;  // steps (from 1) whose loss is NaN
  std::size_t calls = 0;
  int interrupt_at = 0;               // the step that raises interrupt_signal (0: none)
  int interrupt_signal = SIGINT;

  // Batches of 4 examples: 10 steps an epoch by default.
  explicit Setup(std::size_t examples = 40) : sampler{std::vector<std::size_t>(examples, 3), {.batch_size = 4}} {}

  cli::TrainingLoop loop(std::size_t epochs) {
    return {.model = model,
            .optimizer = optimizer,
            .scheduler = scheduler,
            .sampler = sampler,
            .checkpoint_path = dir.file("checkpoint.safetensors"),
            .weights_path = dir.file("model.safetensors"),
            .log_path = dir.file("log.csv"),
            .validation_columns = {"score"},
            .epochs = epochs,
            .clip = 1.0,
            .max_bad_steps = 3,
            .forward_backward =
                [this](const models::Batch& rows) {
                  ++calls;
                  Tensor<float> loss = sum(model(Tensor<float>::from({1.0f, 2.0f}, {1, 2})));
                  loss.backward();
                  if (int(calls) == interrupt_at) std::raise(interrupt_signal);
                  const bool poison = std::find(poisoned.begin(), poisoned.end(), calls) != poisoned.end();
                  return cli::StepOutcome{poison ? std::nan("") : double(loss.item()), rows.size()};
                },
            .validate = [this] { return cli::Validation{-double(model.weight.value()(0, 0)), "ok", {0.0}}; }};
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(non_finite_steps_are_skipped_and_counted) {
  Setup s;
  s.poisoned = {2, 5, 6};
  Generator order(1);
  cli::TrainingProgress progress;
  progress.data_order = order.state();
  const Array<float> before = s.model.weight.value();
  BOOST_TEST((cli::run_training(s.loop(1), order, progress, cli::StopCondition(0, 0, 0)) == cli::RunEnd::finished));
  BOOST_TEST(progress.skipped_steps == 3u);
  BOOST_TEST(progress.steps == 10u);
  // 7 good updates of w -= 0.1 * d(sum(w . x + b))/dw; the gradient (1, 2) of w and 1 of b are
  // clipped together to norm 1.
  const float step = 0.1f / std::sqrt(6.0f);
  // 7 rounded updates (and the step's own rounding) of magnitudes below |w| + 7 * step.
  const double bound = xgrad::testing::sum_error_bound<float>(2 * 7, std::abs(before(0, 0)) + 7 * step);
  BOOST_TEST(std::abs(s.model.weight.value()(0, 0) - (before(0, 0) - 7 * step)) <= bound);
  BOOST_TEST(read_file(s.dir.file("log.csv")).find(",3\n") != std::string::npos);  // skipped_steps column
}

BOOST_AUTO_TEST_CASE(too_many_bad_steps_in_a_row_stop_and_keep_the_last_good_checkpoint) {
  Setup s;
  Generator order(1);
  cli::TrainingProgress progress;
  progress.data_order = order.state();
  BOOST_TEST_REQUIRE((cli::run_training(s.loop(1), order, progress, cli::StopCondition(0, 0, 0)) == cli::RunEnd::finished));
  const std::string good = read_file(s.dir.file("checkpoint.safetensors"));
  s.poisoned = {13, 14, 15};  // the second epoch's steps 3, 4, 5
  try {
    cli::run_training(s.loop(2), order, progress, cli::StopCondition(0, 0, 0));
    BOOST_FAIL("three bad steps in a row must stop the run");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("3 steps in a row") != std::string::npos, e.what());
    BOOST_TEST(std::string(e.what()).find("checkpoint.safetensors") != std::string::npos, e.what());
  }
  BOOST_TEST(read_file(s.dir.file("checkpoint.safetensors")) == good);
}

BOOST_AUTO_TEST_CASE(ctrl_c_saves_a_checkpoint_that_resumes_exactly) {
  Setup whole, parts;
  Generator order_whole(1), order_parts(1);
  cli::TrainingProgress progress_whole, progress_parts;
  progress_whole.data_order = order_whole.state();
  progress_parts.data_order = order_parts.state();
  cli::run_training(whole.loop(2), order_whole, progress_whole, cli::StopCondition(0, 0, 0));

  parts.interrupt_at = 13;
  BOOST_TEST((cli::run_training(parts.loop(2), order_parts, progress_parts, cli::StopCondition(0, 0, 0)) ==
              cli::RunEnd::interrupted));
  BOOST_TEST(progress_parts.steps == 13u);
  // A fresh process would load the checkpoint and continue.
  Setup resumed;
  resumed.calls = 13;
  cli::TrainingProgress progress = cli::load_checkpoint(parts.dir.file("checkpoint.safetensors"), resumed.model,
                                                        resumed.optimizer, resumed.scheduler);
  BOOST_TEST(progress.epoch == 2u);
  BOOST_TEST(progress.batches_done == 3u);
  Generator order(1);
  BOOST_TEST((cli::run_training(resumed.loop(2), order, progress, cli::StopCondition(0, 0, 0)) == cli::RunEnd::finished));
  BOOST_TEST(resumed.model.weight.value() == whole.model.weight.value());
  BOOST_TEST(resumed.model.bias.value() == whole.model.bias.value());
}

BOOST_AUTO_TEST_CASE(a_corrupt_checkpoint_is_refused_with_its_name) {
  Setup s;
  write_file_atomically(s.dir.file("checkpoint.safetensors"), "not a checkpoint at all");
  try {
    cli::load_checkpoint(s.dir.file("checkpoint.safetensors"), s.model, s.optimizer, s.scheduler);
    BOOST_FAIL("a corrupt checkpoint must be refused");
  } catch (const file_error& e) {
    BOOST_TEST(std::string(e.what()).find("checkpoint.safetensors") != std::string::npos, e.what());
  }
}

// A scheduler's or container's stop (SIGTERM) is treated as Ctrl-C; were it not caught, it
// would end this test process.
BOOST_AUTO_TEST_CASE(sigterm_saves_a_checkpoint_like_ctrl_c) {
  Setup s;
  s.interrupt_at = 4;
  s.interrupt_signal = SIGTERM;
  Generator order(1);
  cli::TrainingProgress progress;
  progress.data_order = order.state();
  BOOST_TEST((cli::run_training(s.loop(2), order, progress, cli::StopCondition(0, 0, 0)) == cli::RunEnd::interrupted));
  Setup resumed;
  BOOST_TEST(cli::load_checkpoint(s.dir.file("checkpoint.safetensors"), resumed.model, resumed.optimizer, resumed.scheduler)
                 .steps == 4u);
}

// Saved after batch 5 of 10, resumed on data of 2 batches: the epoch could never end. (The
// time budget turns the endless loop this once was into a failure rather than a hang.)
BOOST_AUTO_TEST_CASE(resuming_past_the_end_of_smaller_data_is_refused_with_both_numbers) {
  Setup s;
  s.interrupt_at = 5;
  Generator order(1);
  cli::TrainingProgress progress;
  progress.data_order = order.state();
  BOOST_TEST_REQUIRE((cli::run_training(s.loop(2), order, progress, cli::StopCondition(0, 0, 0)) == cli::RunEnd::interrupted));
  Setup smaller(8);
  try {
    cli::run_training(smaller.loop(2), order, progress, cli::StopCondition(0.01, 0, 0));
    BOOST_FAIL("a position past the end of the data must be refused");
  } catch (const cli::UsageError& e) {
    const std::string message = e.what();
    for (const char* part : {"checkpoint.safetensors", "batch 5", "only 2"}) {
      BOOST_TEST(message.find(part) != std::string::npos, message);
    }
  }
  BOOST_TEST(smaller.calls == 0u);
}
