// The Transformer's schedules: a linear warm-up followed by inverse-square-root decay ("Noam")
// or by half a cosine, set from the base rate at every step, saved and resumed exactly like
// the other schedulers.
#define BOOST_TEST_MODULE warmup_schedules
#include "xgrad_test.h"

#include <cmath>
#include <numbers>

using namespace xgrad;
using xgrad::testing::error_message;

namespace {

std::vector<Tensor<float>> parameters() { return {Tensor<float>::zeros({2}, true)}; }

// The learning rate after construction and after each of `steps` steps.
template <class S>
std::vector<double> rates(optim::OptimizerBase& optimizer, S& scheduler, int steps) {
  std::vector<double> lrs{optimizer.learning_rate()};
  for (int i = 0; i < steps; ++i) {
    scheduler.step();
    lrs.push_back(optimizer.learning_rate());
  }
  return lrs;
}

}  // namespace

BOOST_AUTO_TEST_CASE(inverse_sqrt_rises_linearly_to_the_base_rate_then_decays) {
  optim::SGD<float> sgd(parameters(), {.lr = 0.8});
  optim::WarmupInverseSqrtLR scheduler(sgd, 4);
  BOOST_TEST(scheduler.type() == "WarmupInverseSqrtLR");
  const std::vector<double> lrs = rates(sgd, scheduler, 16);
  const std::vector<double> expected{0.0, 0.2, 0.4, 0.6, 0.8, 0.8 * std::sqrt(4.0 / 5.0), 0.8 * std::sqrt(4.0 / 6.0)};
  for (std::size_t s = 0; s < expected.size(); ++s) BOOST_TEST(std::abs(lrs[s] - expected[s]) <= 1e-15, "step " << s);
  BOOST_TEST(std::abs(lrs[16] - 0.4) <= 1e-15);  // sqrt(4 / 16) = 1/2
}

// Vaswani et al.: lr = d_model^-0.5 * min(s^-0.5, s * warmup^-1.5), the same schedule with
// base_lr = (d_model * warmup)^-0.5.
BOOST_AUTO_TEST_CASE(inverse_sqrt_is_the_noam_schedule_with_its_peak_as_the_base_rate) {
  const double d_model = 512;
  const double warmup = 4000;
  optim::Adam<float> adam(parameters(), {.lr = 1.0 / std::sqrt(d_model * warmup)});
  optim::WarmupInverseSqrtLR scheduler(adam, 4000);
  for (int s = 1; s <= 12000; ++s) {
    scheduler.step();
    const double noam = std::pow(d_model, -0.5) * std::min(std::pow(s, -0.5), s * std::pow(warmup, -1.5));
    if (std::abs(adam.learning_rate() - noam) > 1e-12 * noam) {
      BOOST_FAIL("step " << s << ": " << adam.learning_rate() << " against Noam's " << noam);
    }
  }
}

BOOST_AUTO_TEST_CASE(cosine_rises_then_falls_to_its_floor_and_stays) {
  optim::SGD<float> sgd(parameters(), {.lr = 1.0});
  optim::WarmupCosineLR scheduler(sgd, {.warmup_steps = 2, .total_steps = 12, .min_factor = 0.1});
  BOOST_TEST(scheduler.type() == "WarmupCosineLR");
  const std::vector<double> lrs = rates(sgd, scheduler, 15);
  BOOST_TEST(lrs[0] == 0.0);
  BOOST_TEST(lrs[1] == 0.5);
  BOOST_TEST(std::abs(lrs[2] - 1.0) <= 1e-15);
  BOOST_TEST(std::abs(lrs[7] - 0.55) <= 1e-15);  // halfway down: the middle of 1 and 0.1
  for (int s = 12; s <= 15; ++s) BOOST_TEST(std::abs(lrs[s] - 0.1) <= 1e-15, "step " << s);
  // After the warm-up, PyTorch's CosineAnnealingLR(T_max = 10, eta_min = 0.1) in closed form.
  for (int t = 0; t <= 10; ++t) {
    const double annealed = 0.1 + 0.9 * (1 + std::cos(std::numbers::pi * t / 10)) / 2;
    BOOST_TEST(std::abs(lrs[2 + t] - annealed) <= 1e-15, "step " << 2 + t);
  }
}

BOOST_AUTO_TEST_CASE(a_cosine_without_warm_up_starts_at_the_base_rate) {
  optim::SGD<float> sgd(parameters(), {.lr = 0.3});
  optim::WarmupCosineLR scheduler(sgd, {.warmup_steps = 0, .total_steps = 4});
  const std::vector<double> lrs = rates(sgd, scheduler, 4);
  BOOST_TEST(lrs[0] == 0.3);
  BOOST_TEST(std::abs(lrs[2] - 0.15) <= 1e-15);
  BOOST_TEST(std::abs(lrs[4]) <= 1e-15);
}

// A run resumed from a checkpoint continues the schedule where it stopped, whatever rate and
// options the resumed run was built with.
BOOST_AUTO_TEST_CASE(both_schedules_resume_exactly_from_a_saved_state) {
  optim::Adam<float> adam(parameters(), {.lr = 0.01});
  optim::WarmupInverseSqrtLR inverse_sqrt(adam, 5);
  optim::SGD<float> sgd(parameters(), {.lr = 0.1});
  optim::WarmupCosineLR cosine(sgd, {.warmup_steps = 3, .total_steps = 20, .min_factor = 0.05});
  for (int i = 0; i < 7; ++i) {
    inverse_sqrt.step();
    cosine.step();
  }
  safetensors::Writer writer;
  adam.save_state(writer, "adam.");
  inverse_sqrt.save_state(writer, "inverse_sqrt.");
  sgd.save_state(writer, "sgd.");
  cosine.save_state(writer, "cosine.");
  const safetensors::File file = safetensors::File::parse(writer.serialize(), "checkpoint.safetensors");

  optim::Adam<float> resumed_adam(parameters(), {.lr = 5.0});
  optim::WarmupInverseSqrtLR resumed_inverse_sqrt(resumed_adam, 100);
  optim::SGD<float> resumed_sgd(parameters(), {.lr = 5.0});
  optim::WarmupCosineLR resumed_cosine(resumed_sgd, {.warmup_steps = 1, .total_steps = 2});
  resumed_adam.load_state(file, "adam.");
  resumed_inverse_sqrt.load_state(file, "inverse_sqrt.");
  resumed_sgd.load_state(file, "sgd.");
  resumed_cosine.load_state(file, "cosine.");
  BOOST_TEST(resumed_inverse_sqrt.last_epoch() == 7);
  BOOST_TEST(resumed_cosine.base_lr() == 0.1);
  for (int s = 8; s <= 25; ++s) {
    inverse_sqrt.step();
    resumed_inverse_sqrt.step();
    cosine.step();
    resumed_cosine.step();
    BOOST_TEST(resumed_adam.learning_rate() == adam.learning_rate(), "step " << s);
    BOOST_TEST(resumed_sgd.learning_rate() == sgd.learning_rate(), "step " << s);
  }

  // A state of the other type, or with options that cannot work, changes nothing.
  optim::WarmupCosineLR other(resumed_sgd, {.warmup_steps = 1, .total_steps = 2});
  BOOST_CHECK_THROW(other.load_state(file, "inverse_sqrt."), file_error);
  safetensors::Writer bad;
  cosine.save_state(bad, "cosine.");
  bad.set_metadata("cosine.total_steps", "2");  // not past warmup_steps = 3
  const safetensors::File bad_file = safetensors::File::parse(bad.serialize(), "bad.safetensors");
  const std::string message = error_message<file_error>([&] { other.load_state(bad_file, "cosine."); });
  BOOST_TEST(message.find("bad.safetensors") != std::string::npos, message);
  BOOST_TEST(message.find("total_steps") != std::string::npos, message);
  BOOST_TEST(other.last_epoch() == 0);
}

BOOST_AUTO_TEST_CASE(options_that_cannot_work_are_refused_naming_the_option) {
  optim::SGD<float> sgd(parameters(), {.lr = 0.1});
  BOOST_TEST(error_message<std::invalid_argument>([&] { optim::WarmupInverseSqrtLR s(sgd, 0); }) ==
             "WarmupInverseSqrtLR: invalid warmup_steps = 0 (must be >= 1)");
  BOOST_TEST(error_message<std::invalid_argument>([&] { optim::WarmupCosineLR s(sgd, {.warmup_steps = 5, .total_steps = 5}); }) ==
             "WarmupCosineLR: invalid total_steps = 5 (must be greater than warmup_steps)");
  BOOST_TEST(error_message<std::invalid_argument>([&] { optim::WarmupCosineLR s(sgd, {.warmup_steps = -1, .total_steps = 5}); }) ==
             "WarmupCosineLR: invalid warmup_steps = -1 (must be >= 0)");
  BOOST_TEST(error_message<std::invalid_argument>([&] { optim::WarmupCosineLR s(sgd, {.total_steps = 5, .min_factor = 1.5}); }) ==
             "WarmupCosineLR: invalid min_factor = 1.5 (must be in [0, 1])");
  BOOST_TEST(sgd.learning_rate() == 0.1);  // a refused scheduler changed nothing
}
