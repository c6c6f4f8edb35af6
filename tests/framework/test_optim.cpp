// Optimizers, gradient clipping and learning-rate schedulers: parity with PyTorch 1.13,
// skipped parameters, bit-exact resumption from saved state, and refusal of state that does
// not fit.
#define BOOST_TEST_MODULE optim
#include "xgrad_test.h"

#include <filesystem>
#include <limits>
#include <memory>
#include <tuple>

#include <unistd.h>

#include <xtensor/xadapt.hpp>

using xgrad::testing::TempDir;
using namespace xgrad;
using xgrad::testing::check_close;
using xgrad::testing::fixture;
using xgrad::testing::parity_tolerance;
using xgrad::testing::random_tensor;

namespace {

using Precisions = std::tuple<float, double>;

template <class T>
Tensor<T> random_parameter(const Shape& shape, std::uint64_t seed) {
  return Tensor<T>(xt::cast<T>(random_tensor(shape, seed).value()), true);
}

// Gives `parameter` exactly this gradient, through backward of sum(p * gradient), which also
// works when the parameter has never had one.
template <class T>
void set_gradient(Tensor<T>& parameter, const Array<T>& gradient) {
  parameter.zero_grad();
  sum(parameter * Tensor<T>(gradient)).backward();
}

template <class T>
using OptimizerFactory = std::function<std::unique_ptr<optim::Optimizer<T>>(NamedTensors<T>)>;

// Replays a fixture's gradients (see fixtures_optim.py) and compares the parameters with
// PyTorch's after every step; "b" has no gradient in the first steps.
template <class T>
void check_trajectory(const safetensors::File& file, const std::string& config, const OptimizerFactory<T>& make) {
  Tensor<T> a(file.floats<T>(config + ".param.a"), true);
  Tensor<T> b(file.floats<T>(config + ".param.b"), true);
  const std::unique_ptr<optim::Optimizer<T>> optimizer = make({{"a", a}, {"b", b}});
  const int steps = std::stoi(file.metadata().at("steps"));
  for (int step = 1; step <= steps; ++step) {
    const std::string k = std::to_string(step);
    set_gradient(a, file.floats<T>(config + ".grad." + k + ".a"));
    if (file.contains(config + ".grad." + k + ".b")) {
      set_gradient(b, file.floats<T>(config + ".grad." + k + ".b"));
    } else {
      BOOST_TEST_REQUIRE(!b.has_grad());
    }
    optimizer->step();
    BOOST_TEST_CONTEXT(config << ", step " << step) {
      check_close(a.value(), file.floats<double>(config + ".after." + k + ".a"), parity_tolerance<T>);
      check_close(b.value(), file.floats<double>(config + ".after." + k + ".b"), parity_tolerance<T>);
    }
  }
  BOOST_TEST(optimizer->steps() == steps);
}

template <class T, class Optimizer, class Options>
OptimizerFactory<T> factory(Options options) {
  return [options](NamedTensors<T> parameters) { return std::make_unique<Optimizer>(std::move(parameters), options); };
}

template <class F>
void expect_error_mentioning(const F& f, std::initializer_list<std::string> fragments) {
  try {
    f();
    BOOST_ERROR("no exception; expected one mentioning " << *fragments.begin());
  } catch (const std::exception& e) {
    const std::string message = e.what();
    for (const std::string& fragment : fragments) BOOST_TEST(message.find(fragment) != std::string::npos, message);
  }
}

template <class F>
void expect_file_error(const F& f, std::initializer_list<std::string> fragments) {
  BOOST_CHECK_THROW(f(), file_error);
  expect_error_mentioning(f, fragments);
}

template <class F>
void expect_invalid_argument(const F& f, std::initializer_list<std::string> fragments) {
  BOOST_CHECK_THROW(f(), std::invalid_argument);
  expect_error_mentioning(f, fragments);
}


}  // namespace

BOOST_AUTO_TEST_SUITE(pytorch_parity)

BOOST_AUTO_TEST_CASE_TEMPLATE(sgd_matches_pytorch, T, Precisions) {
  const safetensors::File file = fixture("optim_sgd");
  check_trajectory<T>(file, "sgd_plain", factory<T, optim::SGD<T>>(optim::SgdOptions{.lr = 0.1}));
  check_trajectory<T>(file, "sgd_momentum_dampening",
                      factory<T, optim::SGD<T>>(optim::SgdOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.3}));
  check_trajectory<T>(file, "sgd_nesterov",
                      factory<T, optim::SGD<T>>(
                          optim::SgdOptions{.lr = 0.05, .momentum = 0.8, .weight_decay = 0.01, .nesterov = true}));
  check_trajectory<T>(file, "sgd_weight_decay",
                      factory<T, optim::SGD<T>>(optim::SgdOptions{.lr = 0.1, .momentum = 0.5, .weight_decay = 0.2}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(adam_and_adamw_match_pytorch, T, Precisions) {
  const safetensors::File file = fixture("optim_adam");
  check_trajectory<T>(file, "adam_weight_decay",
                      factory<T, optim::Adam<T>>(optim::AdamOptions{
                          .lr = 0.1, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1}));
  check_trajectory<T>(file, "adam_amsgrad",
                      factory<T, optim::Adam<T>>(optim::AdamOptions{.lr = 0.05, .amsgrad = true}));
  check_trajectory<T>(file, "adamw", factory<T, optim::AdamW<T>>(optim::AdamWOptions{.lr = 0.1, .weight_decay = 0.05}));
  check_trajectory<T>(file, "adamw_amsgrad",
                      factory<T, optim::AdamW<T>>(optim::AdamWOptions{
                          .lr = 0.02, .beta1 = 0.85, .beta2 = 0.99, .weight_decay = 0.1, .amsgrad = true}));
}

// The chainable forms do PyTorch's arithmetic in the same order, so the rates agree exactly.
BOOST_AUTO_TEST_CASE(epoch_schedulers_match_pytorch) {
  const safetensors::File file = fixture("optim_schedulers");
  using Schedulers = std::vector<std::unique_ptr<optim::FactorScheduler>>;
  auto check = [&](const std::string& name, double lr,
                   const std::function<void(optim::OptimizerBase&, Schedulers&)>& add) {
    const Array<double> expected = file.floats<double>(name + ".lr");
    optim::SGD<double> optimizer(std::vector{Tensor<double>::zeros({1}, true)}, {.lr = lr});
    Schedulers schedulers;
    add(optimizer, schedulers);
    std::vector<double> rates{optimizer.learning_rate()};
    for (std::size_t epoch = 1; epoch < expected.size(); ++epoch) {
      for (auto& scheduler : schedulers) scheduler->step();
      rates.push_back(optimizer.learning_rate());
    }
    BOOST_TEST_CONTEXT(name) { check_close(Array<double>(xt::adapt(rates)), expected, 0.0); }
  };
  check("step_lr", 0.1, [](auto& o, auto& s) { s.push_back(std::make_unique<optim::StepLR>(o, 3, 0.5)); });
  check("exponential_lr", 0.1, [](auto& o, auto& s) { s.push_back(std::make_unique<optim::ExponentialLR>(o, 0.9)); });
  check("linear_warmup", 0.2, [](auto& o, auto& s) { s.push_back(std::make_unique<optim::LinearWarmup>(o, 4, 0.25)); });
  check("warmup_then_step", 0.1, [](auto& o, auto& s) {
    s.push_back(std::make_unique<optim::LinearWarmup>(o, 3, 0.5));
    s.push_back(std::make_unique<optim::StepLR>(o, 4, 0.5));
  });
}

BOOST_AUTO_TEST_CASE(reduce_on_plateau_matches_pytorch) {
  const safetensors::File file = fixture("optim_schedulers");
  auto check = [&](const std::string& name, const optim::PlateauOptions& options) {
    const Array<double> metrics = file.floats<double>(name + ".metrics");
    optim::SGD<double> optimizer(std::vector{Tensor<double>::zeros({1}, true)}, {.lr = 0.1});
    optim::ReduceLROnPlateau scheduler(optimizer, options);
    std::vector<double> rates{optimizer.learning_rate()};
    for (double metric : metrics) {
      scheduler.step(metric);
      rates.push_back(optimizer.learning_rate());
    }
    BOOST_TEST(scheduler.last_epoch() == static_cast<std::int64_t>(metrics.size()));
    BOOST_TEST_CONTEXT(name) { check_close(Array<double>(xt::adapt(rates)), file.floats<double>(name + ".lr"), 0.0); }
  };
  check(
      "plateau_min",
      {.mode = optim::PlateauMode::min, .factor = 0.5, .patience = 2, .threshold = 0.1, .cooldown = 2, .min_lr = 0.02});
  check("plateau_max",
        {.mode = optim::PlateauMode::max, .factor = 0.3, .patience = 1, .threshold = 0.01, .min_lr = 0.005});
}

BOOST_AUTO_TEST_SUITE_END()

// The same schedule worked out by hand from PyTorch's rules, to read alongside the code.
BOOST_AUTO_TEST_CASE(plateau_counts_patience_threshold_and_cooldown) {
  optim::SGD<double> optimizer(std::vector{Tensor<double>::zeros({1}, true)}, {.lr = 1.0});
  optim::ReduceLROnPlateau scheduler(optimizer, {.factor = 0.5, .patience = 1, .threshold = 0.1, .cooldown = 1});
  BOOST_TEST(scheduler.best() == std::numeric_limits<double>::infinity());
  scheduler.step(10.0);  // improves on +inf
  BOOST_TEST(scheduler.best() == 10.0);
  scheduler.step(9.5);  // not below 10 * 0.9: bad epoch 1 (patience 1 tolerates it)
  BOOST_TEST(scheduler.bad_epochs() == 1);
  BOOST_TEST(optimizer.learning_rate() == 1.0);
  scheduler.step(9.5);  // bad epoch 2 > patience: reduce, start a cooldown of 1
  BOOST_TEST(optimizer.learning_rate() == 0.5);
  BOOST_TEST(scheduler.bad_epochs() == 0);
  scheduler.step(9.5);  // in cooldown: not counted
  BOOST_TEST(scheduler.bad_epochs() == 0);
  scheduler.step(9.5);  // bad epoch 1
  scheduler.step(8.0);  // improves (below 9): counter reset
  BOOST_TEST(scheduler.best() == 8.0);
  BOOST_TEST(scheduler.bad_epochs() == 0);
  BOOST_TEST(optimizer.learning_rate() == 0.5);
}

BOOST_AUTO_TEST_CASE(clip_grad_norm_scales_only_above_the_limit) {
  Tensor<double> a = Tensor<double>::zeros({2}, true), b = Tensor<double>::zeros({1}, true);
  Tensor<double> no_gradient = Tensor<double>::zeros({3}, true);
  Tensor<double> frozen = Tensor<double>::zeros({1}, true);
  set_gradient(frozen, Array<double>{100.0});
  frozen.set_requires_grad(false);  // keeps its gradient, which must not count
  const NamedTensors<double> named{{"a", a}, {"b", b}, {"none", no_gradient}, {"frozen", frozen}};

  set_gradient(a, Array<double>{3.0, -4.0});
  set_gradient(b, Array<double>{12.0});
  BOOST_TEST(optim::clip_grad_norm(named, 20.0) == 13.0);  // sqrt(9 + 16 + 144)
  BOOST_TEST(a.grad() == (Array<double>{3.0, -4.0}));      // under the limit: untouched
  BOOST_TEST(optim::clip_grad_norm(named, 13.0) == 13.0);  // 13 / (13 + 1e-6) < 1 scales a little
  check_close(b.grad(), Array<double>{12.0 * 13.0 / (13.0 + 1e-6)}, 1e-15);

  set_gradient(a, Array<double>{3.0, -4.0});
  set_gradient(b, Array<double>{12.0});
  BOOST_TEST(optim::clip_grad_norm(std::vector{a, b, no_gradient, frozen}, 6.5) == 13.0);
  const double scale = 6.5 / (13.0 + 1e-6);
  check_close(a.grad(), Array<double>{3.0 * scale, -4.0 * scale}, 1e-15);
  check_close(b.grad(), Array<double>{12.0 * scale}, 1e-15);
  BOOST_TEST(frozen.grad() == Array<double>{100.0});
  BOOST_TEST(!no_gradient.has_grad());

  // A non-finite norm is reported, and nothing is scaled.
  set_gradient(b, Array<double>{std::numeric_limits<double>::infinity()});
  BOOST_TEST(std::isinf(optim::clip_grad_norm(named, 1.0)));
  BOOST_TEST(a.grad() == (Array<double>{3.0 * scale, -4.0 * scale}));
  set_gradient(b, Array<double>{std::numeric_limits<double>::quiet_NaN()});
  BOOST_TEST(std::isnan(optim::clip_grad_norm(named, 1.0)));
  BOOST_TEST(a.grad() == (Array<double>{3.0 * scale, -4.0 * scale}));

  // In float the norm is still summed in double.
  Tensor<float> f = Tensor<float>::zeros({2}, true);
  set_gradient(f, Array<float>{3.0f, 4.0f});
  BOOST_TEST(optim::clip_grad_norm(std::vector{f}, 1.0) == 5.0);
  check_close(f.grad(), Array<double>{0.6, 0.8}, 1e-6);
  expect_invalid_argument([&] { optim::clip_grad_norm(named, -1.0); }, {"max_norm", "-1"});
}

BOOST_AUTO_TEST_CASE_TEMPLATE(parameters_without_gradients_are_skipped, T, Precisions) {
  Tensor<T> used = random_parameter<T>({2, 3}, 1);
  Tensor<T> unreached = random_parameter<T>({3}, 2);
  Tensor<T> frozen = random_parameter<T>({2, 3}, 3);
  Tensor<T> frozen_with_gradient = random_parameter<T>({2}, 4);
  set_gradient(frozen_with_gradient, Array<T>{T(1), T(-2)});
  frozen.set_requires_grad(false);
  frozen_with_gradient.set_requires_grad(false);
  const Array<T> unreached_before = unreached.value(), frozen_before = frozen.value(),
                 frozen_with_gradient_before = frozen_with_gradient.value();
  // Weight decay would move any parameter the optimizer touched, gradient or not.
  optim::AdamW<T> optimizer(
      {{"used", used}, {"unreached", unreached}, {"frozen", frozen}, {"frozen_with_gradient", frozen_with_gradient}},
      {.lr = 0.1, .weight_decay = 0.5});
  for (int step = 0; step < 3; ++step) {
    optimizer.zero_grad();
    sum(used * frozen * used).backward();
    optimizer.step();
  }
  BOOST_TEST(!unreached.has_grad());
  BOOST_TEST(!frozen.has_grad());
  BOOST_TEST(unreached.value() == unreached_before);
  BOOST_TEST(frozen.value() == frozen_before);
  BOOST_TEST(frozen_with_gradient.value() == frozen_with_gradient_before);
  BOOST_TEST(used.value() != random_parameter<T>({2, 3}, 1).value());
  BOOST_TEST(used.is_leaf());  // updates are not recorded in the graph
  BOOST_TEST(optimizer.steps() == 3);
}

// Runs training steps on a small objective that levels off (so that ReduceLROnPlateau acts):
// backward, clipping, the optimizer, then the scheduler (ReduceLROnPlateau gets the loss).
template <class T>
struct Training {
  Tensor<T> weight, bias;
  std::unique_ptr<optim::Optimizer<T>> optimizer;
  std::unique_ptr<optim::Scheduler> scheduler;

  explicit Training(std::uint64_t seed)
      : weight(random_parameter<T>({3, 4}, seed)), bias(random_parameter<T>({4}, seed + 1)) {}
  NamedTensors<T> parameters() const { return {{"layer.weight", weight}, {"layer.bias", bias}}; }

  void run(int steps) {
    const Tensor<T> input(xt::cast<T>(random_tensor({2, 3}, 99).value()));
    for (int step = 0; step < steps; ++step) {
      optimizer->zero_grad();
      const Tensor<T> error = tanh(matmul(input, weight) + bias) - T(0.3);
      Tensor<T> loss = sum(error * error);
      loss.backward();
      optim::clip_grad_norm(parameters(), 0.8);
      optimizer->step();
      if (auto* plateau = dynamic_cast<optim::ReduceLROnPlateau*>(scheduler.get())) {
        plateau->step(static_cast<double>(loss.item()));
      } else {
        dynamic_cast<optim::FactorScheduler&>(*scheduler).step();
      }
    }
  }
};

template <class T>
using Setup = std::function<void(Training<T>&)>;

// N steps, save, continue in fresh objects made with other options; compare with N + M steps
// in one go: the parameters must agree to the last bit.
template <class T>
void check_resumption(const Setup<T>& setup, const Setup<T>& other_setup, int before, int after) {
  Training<T> uninterrupted(7);
  setup(uninterrupted);
  uninterrupted.run(before + after);

  TempDir dir;
  const std::string path = (dir.path / "checkpoint.safetensors").string();
  {
    Training<T> first(7);
    setup(first);
    first.run(before);
    safetensors::Writer writer;
    for (const auto& [name, parameter] : first.parameters()) writer.add("param." + name, parameter.value());
    first.optimizer->save_state(writer, "optimizer.");
    first.scheduler->save_state(writer, "scheduler.");
    writer.write(path);
  }
  Training<T> resumed(1234);  // different values, overwritten by the checkpoint
  other_setup(resumed);
  const safetensors::File file = safetensors::File::read(path);
  for (auto& [name, parameter] : resumed.parameters()) parameter.mutable_value() = file.floats<T>("param." + name);
  resumed.optimizer->load_state(file, "optimizer.");
  resumed.scheduler->load_state(file, "scheduler.");
  BOOST_TEST(resumed.optimizer->steps() == before);
  BOOST_TEST(resumed.scheduler->last_epoch() == before);
  resumed.run(after);

  BOOST_TEST(resumed.weight.value() == uninterrupted.weight.value());
  BOOST_TEST(resumed.bias.value() == uninterrupted.bias.value());
  BOOST_TEST(resumed.optimizer->learning_rate() == uninterrupted.optimizer->learning_rate());
  BOOST_TEST(resumed.optimizer->steps() == before + after);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(resumed_training_is_bit_exact, T, Precisions) {
  BOOST_TEST_CONTEXT("Adam (amsgrad) with LinearWarmup") {
    check_resumption<T>(
        [](Training<T>& t) {
          t.optimizer = std::make_unique<optim::Adam<T>>(
              t.parameters(), optim::AdamOptions{.lr = 0.05, .weight_decay = 0.01, .amsgrad = true});
          t.scheduler = std::make_unique<optim::LinearWarmup>(*t.optimizer, 6, 0.1);
        },
        [](Training<T>& t) {  // no amsgrad buffer until the state is loaded
          t.optimizer = std::make_unique<optim::Adam<T>>(t.parameters(), optim::AdamOptions{.lr = 0.5, .beta1 = 0.5});
          t.scheduler = std::make_unique<optim::LinearWarmup>(*t.optimizer, 2, 0.9);
        },
        4, 5);
  }
  BOOST_TEST_CONTEXT("SGD (nesterov) with StepLR") {
    check_resumption<T>(
        [](Training<T>& t) {
          t.optimizer = std::make_unique<optim::SGD<T>>(
              t.parameters(), optim::SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.001, .nesterov = true});
          t.scheduler = std::make_unique<optim::StepLR>(*t.optimizer, 3, 0.5);
        },
        [](Training<T>& t) {  // no momentum buffer until the state is loaded
          t.optimizer = std::make_unique<optim::SGD<T>>(t.parameters(), optim::SgdOptions{.lr = 1.0});
          t.scheduler = std::make_unique<optim::StepLR>(*t.optimizer, 10, 0.1);
        },
        5, 4);
  }
  BOOST_TEST_CONTEXT("AdamW with ReduceLROnPlateau") {
    const Setup<T> adamw_plateau = [](Training<T>& t) {
      t.optimizer = std::make_unique<optim::AdamW<T>>(t.parameters(), optim::AdamWOptions{.lr = 0.2});
      t.scheduler = std::make_unique<optim::ReduceLROnPlateau>(
          *t.optimizer, optim::PlateauOptions{.factor = 0.5, .patience = 1, .threshold = 0.05, .cooldown = 1});
    };
    // The loss rises after step 4: saved after 5 steps the scheduler is counting a bad epoch,
    // after 6 it is in a cooldown; the lr is halved twice either way.
    check_resumption<T>(adamw_plateau, adamw_plateau, 5, 7);
    check_resumption<T>(adamw_plateau, adamw_plateau, 6, 6);
  }
  BOOST_TEST_CONTEXT("ExponentialLR") {
    const Setup<T> sgd_exponential = [](Training<T>& t) {
      t.optimizer = std::make_unique<optim::SGD<T>>(t.parameters(),
                                                    optim::SgdOptions{.lr = 0.1, .momentum = 0.5, .dampening = 0.2});
      t.scheduler = std::make_unique<optim::ExponentialLR>(*t.optimizer, 0.8);
    };
    check_resumption<T>(sgd_exponential, sgd_exponential, 2, 3);
  }
}

BOOST_AUTO_TEST_CASE(save_and_load_through_a_file) {
  TempDir dir;
  const std::string path = (dir.path / "adam.safetensors").string();
  Tensor<double> a = random_parameter<double>({2, 2}, 5), b = random_parameter<double>({2, 2}, 5);
  optim::Adam<double> original(std::vector{a}, {.lr = 0.01});
  set_gradient(a, Array<double>{{0.5, -1.0}, {2.0, 0.1}});
  original.step();
  original.save(path);
  const safetensors::File file = safetensors::File::read(path);
  BOOST_TEST(file.metadata().at("type") == "Adam");
  BOOST_TEST(file.metadata().at("lr") == "0.01");  // shortest text that reads back exactly
  BOOST_TEST(file.names() == (std::vector<std::string>{"exp_avg.0", "exp_avg_sq.0", "step.0"}));

  optim::Adam<double> restored(std::vector{b}, {.lr = 0.3});
  restored.load(path);
  BOOST_TEST(restored.learning_rate() == 0.01);
  BOOST_TEST(restored.steps() == 1);
  set_gradient(a, Array<double>{{-0.3, 0.2}, {0.7, 1.5}});
  set_gradient(b, Array<double>{{-0.3, 0.2}, {0.7, 1.5}});
  b.mutable_value() = a.value();
  original.step();
  restored.step();
  BOOST_TEST(a.value() == b.value());
}

BOOST_AUTO_TEST_CASE(loading_refuses_state_that_does_not_fit) {
  Tensor<double> a = random_parameter<double>({3, 2}, 1), b = random_parameter<double>({4}, 2);
  optim::Adam<double> saved({{"a", a}, {"b", b}}, {.lr = 0.01});
  set_gradient(a, Array<double>(Shape{3, 2}, 0.5));
  set_gradient(b, Array<double>(Shape{4}, -0.25));
  saved.step();
  auto state_file = [&](const std::function<void(safetensors::Writer&)>& edit = {}) {
    safetensors::Writer writer;
    saved.save_state(writer, "opt.");
    if (edit) edit(writer);
    return safetensors::File::parse(writer.serialize(), "state.safetensors");
  };
  const safetensors::File file = state_file();

  optim::SGD<double> sgd({{"a", a}, {"b", b}}, {.lr = 0.5});
  expect_file_error([&] { sgd.load_state(file, "opt."); }, {"state.safetensors", "opt.type", "Adam", "SGD"});

  Tensor<double> c = random_parameter<double>({5}, 3);
  optim::Adam<double> more({{"a", a}, {"b", b}, {"c", c}}, {.lr = 0.5});
  expect_file_error([&] { more.load_state(file, "opt."); },
                    {"state.safetensors", "missing key 'opt.exp_avg.c' (shape [5])", "opt.exp_avg_sq.c", "opt.step.c"});

  Tensor<double> a_transposed = random_parameter<double>({2, 3}, 1);
  optim::Adam<double> reshaped({{"a", a_transposed}, {"b", b}}, {.lr = 0.5});
  expect_file_error([&] { reshaped.load_state(file, "opt."); },
                    {"state.safetensors", "'opt.exp_avg.a'", "[3, 2]", "[2, 3]",
                     "key 'opt.exp_avg.a': the file has shape [3, 2] but this Adam optimizer expects [2, 3] (the shape "
                     "of parameter 'a')"});

  safetensors::Writer float_counter;  // the saved state with one update counter stored as F64
  for (const auto& [key, value] : file.metadata()) float_counter.set_metadata(key, value);
  for (const std::string& name : file.names()) {
    if (name == "opt.step.a") {
      float_counter.add(name, Array<double>(Shape{}, 1.0));
    } else if (name.starts_with("opt.step.")) {
      float_counter.add(name, file.integers(name));
    } else {
      float_counter.add(name, file.floats<double>(name));
    }
  }
  optim::Adam<double> counted({{"a", a}, {"b", b}}, {.lr = 0.5});
  expect_file_error([&] { counted.load_state(safetensors::File::parse(float_counter.serialize(), "counters"), "opt."); },
                    {"counters", "key 'opt.step.a' is stored as F64, not as I64"});

  optim::Adam<double> fewer({{"a", a}}, {.lr = 0.5});
  expect_file_error([&] { fewer.load_state(file, "opt."); }, {"state.safetensors", "unknown key 'opt.exp_avg.b'"});
  expect_file_error([&] { fewer.load_state(state_file([](auto& w) { w.set_metadata("opt.extra", "1"); }), "opt."); },
                    {"unknown key 'opt.extra'"});

  optim::Adam<double> same({{"a", a}, {"b", b}}, {.lr = 0.5});
  expect_file_error([&] { same.load_state(state_file([](auto& w) { w.set_metadata("opt.beta1", "1.5"); }), "opt."); },
                    {"state.safetensors", "beta1", "1.5"});
  expect_file_error([&] { same.load_state(state_file([](auto& w) { w.set_metadata("opt.lr", "fast"); }), "opt."); },
                    {"state.safetensors", "opt.lr", "fast"});
  expect_file_error([&] { same.load_state(state_file([](auto& w) { w.set_metadata("opt.steps", "-1"); }), "opt."); },
                    {"state.safetensors", "opt.steps", "negative"});
  expect_file_error([&] { same.load_state(file, "other."); }, {"state.safetensors", "other.type"});
  // A failed load changes nothing; a good one takes the saved learning rate and step count.
  BOOST_TEST(same.learning_rate() == 0.5);
  BOOST_TEST(same.steps() == 0);
  same.load_state(file, "opt.");
  BOOST_TEST(same.learning_rate() == 0.01);
  BOOST_TEST(same.steps() == 1);

  optim::StepLR step_lr(sgd, 2);
  safetensors::Writer writer;
  step_lr.save_state(writer, "sched.");
  writer.set_metadata("sched.surprise", "0");
  const safetensors::File scheduler_file = safetensors::File::parse(writer.serialize(), "sched.safetensors");
  optim::ExponentialLR exponential(sgd, 0.9);
  expect_file_error([&] { exponential.load_state(scheduler_file, "sched."); },
                    {"sched.safetensors", "sched.type", "StepLR", "ExponentialLR"});
  optim::StepLR other_step_lr(sgd, 5);
  expect_file_error([&] { other_step_lr.load_state(scheduler_file, "sched."); },
                    {"sched.safetensors", "sched.surprise"});

  optim::ReduceLROnPlateau plateau(sgd, {.patience = 3});
  safetensors::Writer plateau_writer;
  plateau.save_state(plateau_writer, "");
  plateau_writer.set_metadata("num_bad_epochs", "4");
  expect_file_error([&] { plateau.load_state(safetensors::File::parse(plateau_writer.serialize(), "plateau"), ""); },
                    {"plateau", "num_bad_epochs", "patience = 3"});
}

BOOST_AUTO_TEST_CASE(plain_parameter_lists_are_numbered) {
  Tensor<double> a = Tensor<double>::zeros({2}, true), b = Tensor<double>::zeros({1}, true);
  optim::SGD<double> optimizer(std::vector{a, b}, {.lr = 0.1, .momentum = 0.9});
  BOOST_TEST(optimizer.parameters()[1].first == "1");
  BOOST_TEST(optimizer.parameters()[1].second.same(b));
  safetensors::Writer writer;
  optimizer.save_state(writer, "");
  const safetensors::File file = safetensors::File::parse(writer.serialize(), "numbered");
  BOOST_TEST(file.names() == (std::vector<std::string>{"momentum_buffer.0", "momentum_buffer.1", "step.0", "step.1"}));
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused) {
  Tensor<double> a = Tensor<double>::zeros({2}, true);
  const std::vector<Tensor<double>> params{a};
  expect_invalid_argument([&] { optim::SGD<double>(params, {.lr = -0.1}); }, {"SGD", "lr", "-0.1"});
  expect_invalid_argument([&] { optim::SGD<double>(params, {.lr = 0.1, .momentum = -1}); }, {"momentum", "-1"});
  expect_invalid_argument([&] { optim::SGD<double>(params, {.lr = 0.1, .nesterov = true}); }, {"nesterov", "momentum"});
  expect_invalid_argument(
      [&] { optim::SGD<double>(params, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}); },
      {"nesterov", "dampening = 0.1"});
  expect_invalid_argument([&] { optim::SGD<double>(params, {.lr = 0.1, .weight_decay = -0.5}); },
                          {"weight_decay", "-0.5"});
  expect_invalid_argument([&] { optim::Adam<double>(params, {.beta1 = 1.0}); }, {"Adam", "beta1", "1"});
  expect_invalid_argument([&] { optim::Adam<double>(params, {.beta2 = -0.1}); }, {"beta2", "-0.1"});
  expect_invalid_argument([&] { optim::Adam<double>(params, {.eps = -1e-8}); }, {"eps", "-1e-08"});
  expect_invalid_argument([&] { optim::AdamW<double>(params, {.weight_decay = -1}); }, {"AdamW", "weight_decay"});
  expect_invalid_argument([&] { optim::AdamW<double>(params, {.lr = std::nan("")}); }, {"AdamW", "lr", "nan"});
  optim::Adam<double> adam(params);
  expect_invalid_argument([&] { adam.set_learning_rate(-1); }, {"Adam", "lr", "-1"});

  expect_invalid_argument([&] { optim::Adam<double>(std::vector<Tensor<double>>{}); }, {"empty"});
  expect_invalid_argument(
      [&] {
        optim::Adam<double>(NamedTensors<double>{{"w", a}, {"w", Tensor<double>::zeros({1})}});
      },
      {"'w'", "twice"});
  expect_invalid_argument(
      [&] {
        optim::Adam<double>(NamedTensors<double>{{"w", a}, {"v", a}});
      },
      {"'w'", "'v'", "same tensor"});
  expect_invalid_argument(
      [&] {
        optim::Adam<double>(NamedTensors<double>{{"w", Tensor<double>()}});
      },
      {"'w'", "undefined"});

  expect_invalid_argument([&] { optim::StepLR(adam, 0); }, {"StepLR", "step_size", "0"});
  expect_invalid_argument([&] { optim::StepLR(adam, 2, -0.5); }, {"gamma", "-0.5"});
  expect_invalid_argument([&] { optim::ExponentialLR(adam, 0.0); }, {"ExponentialLR", "gamma"});
  expect_invalid_argument([&] { optim::LinearWarmup(adam, 0, 0.5); }, {"warmup_steps", "0"});
  expect_invalid_argument([&] { optim::LinearWarmup(adam, 5, 1.5); }, {"start_factor", "1.5"});
  expect_invalid_argument([&] { optim::LinearWarmup(adam, 5, 0.0); }, {"start_factor", "0"});
  expect_invalid_argument([&] { optim::ReduceLROnPlateau(adam, {.factor = 1.0}); }, {"factor", "1"});
  expect_invalid_argument([&] { optim::ReduceLROnPlateau(adam, {.patience = -1}); }, {"patience", "-1"});
  expect_invalid_argument([&] { optim::ReduceLROnPlateau(adam, {.min_lr = -1}); }, {"min_lr", "-1"});
  BOOST_TEST(adam.learning_rate() == 1e-3);  // refused schedulers leave the learning rate alone
}
