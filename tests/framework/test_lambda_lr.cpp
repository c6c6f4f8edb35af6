// LambdaLR: lr = base_lr * lambda(epoch), as torch.optim.lr_scheduler.LambdaLR, with its
// state saved and restored like the other schedulers'.
#define BOOST_TEST_MODULE lambda_lr
#include "xgrad_test.h"

using namespace xgrad;

namespace {

// Linear warmup over 4 epochs, then linear decay to 0 at epoch 10: in PyTorch
//   LambdaLR(opt, lambda e: (e + 1) / 4 if e < 4 else max(0.0, (10 - e) / 6))
double warmup_then_decay(std::int64_t epoch) {
  const double e = static_cast<double>(epoch);
  return epoch < 4 ? (e + 1) / 4 : std::max(0.0, (10 - e) / 6);
}

// The learning rates PyTorch's scheduler gives with lr = 0.1, worked out by hand: the
// optimizer's lr after construction (epoch 0) and after each step().
const std::vector<double> expected_lrs{0.025, 0.05,     0.075,    0.1,      0.1,      0.1 * 5 / 6,
                                       0.1 * 4 / 6,    0.05,     0.1 * 2 / 6, 0.1 / 6,  0.0,      0.0};

std::vector<Tensor<float>> parameters() { return {Tensor<float>::zeros({2}, true)}; }

template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_learning_rate_is_the_base_rate_times_the_lambda_of_the_epoch) {
  optim::SGD<float> sgd(parameters(), {.lr = 0.1});
  optim::LambdaLR scheduler(sgd, warmup_then_decay);
  BOOST_TEST(scheduler.type() == "LambdaLR");
  BOOST_TEST(scheduler.base_lr() == 0.1);
  for (std::size_t epoch = 0; epoch < expected_lrs.size(); ++epoch) {
    BOOST_TEST(scheduler.last_epoch() == static_cast<std::int64_t>(epoch));
    BOOST_TEST(std::abs(sgd.learning_rate() - expected_lrs[epoch]) <= 1e-15, "epoch " << epoch << ": "
                                                                                     << sgd.learning_rate());
    scheduler.step();
  }
}

BOOST_AUTO_TEST_CASE(each_step_sets_the_rate_whatever_changed_it_in_between) {
  optim::Adam<float> adam(parameters(), {.lr = 0.01});
  optim::LambdaLR scheduler(adam, [](std::int64_t epoch) { return std::pow(0.5, static_cast<double>(epoch)); });
  BOOST_TEST(adam.learning_rate() == 0.01);
  adam.set_learning_rate(3.0);  // not chainable: the next step ignores this
  scheduler.step();
  BOOST_TEST(adam.learning_rate() == 0.005);
}

BOOST_AUTO_TEST_CASE(the_state_holds_the_epoch_and_the_base_rate) {
  optim::SGD<float> sgd(parameters(), {.lr = 0.1});
  optim::LambdaLR scheduler(sgd, warmup_then_decay);
  for (int i = 0; i < 5; ++i) scheduler.step();
  safetensors::Writer writer;
  sgd.save_state(writer, "optimizer.");
  scheduler.save_state(writer, "scheduler.");
  BOOST_TEST(writer.serialize().find("\"scheduler.base_lr\"") != std::string::npos);
  const safetensors::File file = safetensors::File::parse(writer.serialize(), "checkpoint.safetensors");

  // A resumed run: built afresh (with another learning rate), then loaded.
  optim::SGD<float> resumed_sgd(parameters(), {.lr = 0.7});
  optim::LambdaLR resumed(resumed_sgd, warmup_then_decay);
  resumed_sgd.load_state(file, "optimizer.");
  resumed.load_state(file, "scheduler.");
  BOOST_TEST(resumed.last_epoch() == 5);
  BOOST_TEST(resumed.base_lr() == 0.1);
  BOOST_TEST(resumed_sgd.learning_rate() == sgd.learning_rate());
  for (std::size_t epoch = 6; epoch < expected_lrs.size(); ++epoch) {
    scheduler.step();
    resumed.step();
    BOOST_TEST(resumed_sgd.learning_rate() == sgd.learning_rate(), "epoch " << epoch);
    BOOST_TEST(std::abs(resumed_sgd.learning_rate() - expected_lrs[epoch]) <= 1e-15, "epoch " << epoch);
  }
}

BOOST_AUTO_TEST_CASE(bad_lambdas_and_bad_state_are_refused) {
  optim::SGD<float> sgd(parameters(), {.lr = 0.1});
  BOOST_TEST(error_message([&] { optim::LambdaLR empty(sgd, optim::LambdaLR::Lambda{}); }) ==
             "LambdaLR: the lambda is empty");
  optim::LambdaLR scheduler(sgd, [](std::int64_t epoch) { return epoch < 2 ? 1.0 : std::nan(""); });
  scheduler.step();
  BOOST_TEST(error_message([&] { scheduler.step(); }) ==
             "LambdaLR: lambda(2) = nan (must be a finite number >= 0)");
  BOOST_TEST(scheduler.last_epoch() == 1);  // the failed step changed nothing
  BOOST_TEST(sgd.learning_rate() == 0.1);

  optim::StepLR step_lr(sgd, 3);
  safetensors::Writer writer;
  step_lr.save_state(writer, "s.");
  const std::string wrong_type = error_message([&] {
    scheduler.load_state(safetensors::File::parse(writer.serialize(), "state.safetensors"), "s.");
  });
  BOOST_TEST(wrong_type.find("state.safetensors") != std::string::npos, wrong_type);
  BOOST_TEST(wrong_type.find("StepLR") != std::string::npos, wrong_type);

  optim::LambdaLR saved(sgd, warmup_then_decay);
  safetensors::Writer negative;
  saved.save_state(negative, "s.");
  negative.set_metadata("s.base_lr", "-1");
  const std::string bad_rate = error_message([&] {
    scheduler.load_state(safetensors::File::parse(negative.serialize(), "state.safetensors"), "s.");
  });
  BOOST_TEST(bad_rate.find("base_lr") != std::string::npos, bad_rate);
  BOOST_TEST(bad_rate.find("state.safetensors") != std::string::npos, bad_rate);
}
