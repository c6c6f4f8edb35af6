#include "xgrad/framework/schedulers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include "xgrad/framework/errors.h"

namespace xgrad::optim {

namespace {

template <class Value>
void require(bool valid, const char* scheduler, const char* option, Value value, const char* requirement) {
  if (!valid) {
    throw std::invalid_argument(
        detail::message(scheduler, ": invalid ", option, " = ", value, " (must be ", requirement, ")"));
  }
}

bool positive_finite(double value) { return value > 0 && std::isfinite(value); }
bool non_negative_finite(double value) { return value >= 0 && std::isfinite(value); }

void check_step_lr(std::int64_t step_size, double gamma) {
  require(step_size >= 1, "StepLR", "step_size", step_size, ">= 1");
  require(positive_finite(gamma), "StepLR", "gamma", gamma, "a finite number > 0");
}

void check_exponential_lr(double gamma) {
  require(positive_finite(gamma), "ExponentialLR", "gamma", gamma, "a finite number > 0");
}

void check_linear_warmup(std::int64_t warmup_steps, double start_factor) {
  require(warmup_steps >= 1, "LinearWarmup", "warmup_steps", warmup_steps, ">= 1");
  require(start_factor > 0 && start_factor <= 1, "LinearWarmup", "start_factor", start_factor, "in (0, 1]");
}

double checked_start_factor(std::int64_t warmup_steps, double start_factor) {
  check_linear_warmup(warmup_steps, start_factor);
  return start_factor;
}

const PlateauOptions& checked(const PlateauOptions& options) {
  constexpr const char* name = "ReduceLROnPlateau";
  require(options.factor >= 0 && options.factor < 1, name, "factor", options.factor, "in [0, 1)");
  require(options.patience >= 0, name, "patience", options.patience, ">= 0");
  require(non_negative_finite(options.threshold), name, "threshold", options.threshold, "a finite number >= 0");
  require(options.cooldown >= 0, name, "cooldown", options.cooldown, ">= 0");
  require(non_negative_finite(options.min_lr), name, "min_lr", options.min_lr, "a finite number >= 0");
  require(non_negative_finite(options.eps), name, "eps", options.eps, "a finite number >= 0");
  return options;
}

void check_inverse_sqrt(std::int64_t warmup_steps) {
  require(warmup_steps >= 1, "WarmupInverseSqrtLR", "warmup_steps", warmup_steps, ">= 1");
}

const WarmupCosineOptions& checked(const WarmupCosineOptions& options) {
  constexpr const char* name = "WarmupCosineLR";
  require(options.warmup_steps >= 0, name, "warmup_steps", options.warmup_steps, ">= 0");
  require(options.total_steps > options.warmup_steps, name, "total_steps", options.total_steps,
          "greater than warmup_steps");
  require(options.min_factor >= 0 && options.min_factor <= 1, name, "min_factor", options.min_factor, "in [0, 1]");
  return options;
}

// The starting "best": any metric improves on it.
double worst_metric(PlateauMode mode) {
  const double infinity = std::numeric_limits<double>::infinity();
  return mode == PlateauMode::min ? infinity : -infinity;
}

}  // namespace

// ---- Scheduler ----------------------------------------------------------------------------

void Scheduler::save_state(safetensors::Writer& writer, const std::string& prefix) const {
  StateWriter out(writer, prefix);
  out.text("type", type_);
  out.integer("last_epoch", last_epoch_);
  save_settings(out);
}

void Scheduler::load_state(const safetensors::File& file, const std::string& prefix) {
  StateReader reader(file, prefix);
  reader.expect_type(type_, "scheduler");
  const std::int64_t last_epoch = reader.count("last_epoch");
  const std::function<void()> apply = read_settings(reader);
  reader.refuse_unread_keys();
  apply();
  last_epoch_ = last_epoch;
}

FactorScheduler::FactorScheduler(OptimizerBase& optimizer, std::string type, double initial_factor)
    : Scheduler(optimizer, std::move(type)) {
  optimizer.set_learning_rate(optimizer.learning_rate() * initial_factor);
}

void FactorScheduler::step() {
  const std::int64_t epoch = advance();
  optimizer().set_learning_rate(optimizer().learning_rate() * factor(epoch));
}

// ---- StepLR -------------------------------------------------------------------------------

StepLR::StepLR(OptimizerBase& optimizer, std::int64_t step_size, double gamma)
    : FactorScheduler(optimizer, "StepLR", 1.0), step_size_(step_size), gamma_(gamma) {
  check_step_lr(step_size, gamma);
}

double StepLR::factor(std::int64_t epoch) const { return epoch % step_size_ == 0 ? gamma_ : 1.0; }

void StepLR::save_settings(StateWriter& writer) const {
  writer.integer("step_size", step_size_);
  writer.real("gamma", gamma_);
}

std::function<void()> StepLR::read_settings(StateReader& reader) {
  const std::int64_t step_size = reader.integer("step_size");
  const double gamma = reader.real("gamma");
  reader.validate([&] { check_step_lr(step_size, gamma); });
  return [this, step_size, gamma] {
    step_size_ = step_size;
    gamma_ = gamma;
  };
}

// ---- ExponentialLR ------------------------------------------------------------------------

ExponentialLR::ExponentialLR(OptimizerBase& optimizer, double gamma)
    : FactorScheduler(optimizer, "ExponentialLR", 1.0), gamma_(gamma) {
  check_exponential_lr(gamma);
}

double ExponentialLR::factor(std::int64_t) const { return gamma_; }

void ExponentialLR::save_settings(StateWriter& writer) const { writer.real("gamma", gamma_); }

std::function<void()> ExponentialLR::read_settings(StateReader& reader) {
  const double gamma = reader.real("gamma");
  reader.validate([&] { check_exponential_lr(gamma); });
  return [this, gamma] { gamma_ = gamma; };
}

// ---- LinearWarmup -------------------------------------------------------------------------

LinearWarmup::LinearWarmup(OptimizerBase& optimizer, std::int64_t warmup_steps, double start_factor)
    : FactorScheduler(optimizer, "LinearWarmup", checked_start_factor(warmup_steps, start_factor)),
      warmup_steps_(warmup_steps),
      start_factor_(start_factor) {}

// The ratio of consecutive factors of the line from start_factor to 1, written as LinearLR
// writes it, so that the learning rates agree with PyTorch's to the last bit.
double LinearWarmup::factor(std::int64_t epoch) const {
  if (epoch > warmup_steps_) return 1.0;
  const double rise = 1.0 - start_factor_;
  return 1.0 + rise / (static_cast<double>(warmup_steps_) * start_factor_ + static_cast<double>(epoch - 1) * rise);
}

void LinearWarmup::save_settings(StateWriter& writer) const {
  writer.integer("warmup_steps", warmup_steps_);
  writer.real("start_factor", start_factor_);
}

std::function<void()> LinearWarmup::read_settings(StateReader& reader) {
  const std::int64_t warmup_steps = reader.integer("warmup_steps");
  const double start_factor = reader.real("start_factor");
  reader.validate([&] { check_linear_warmup(warmup_steps, start_factor); });
  return [this, warmup_steps, start_factor] {
    warmup_steps_ = warmup_steps;
    start_factor_ = start_factor;
  };
}

// ---- ReduceLROnPlateau --------------------------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(OptimizerBase& optimizer, const PlateauOptions& options)
    : Scheduler(optimizer, "ReduceLROnPlateau"), options_(checked(options)), best_(worst_metric(options.mode)) {}

bool ReduceLROnPlateau::improves(double metric) const {
  return options_.mode == PlateauMode::min ? metric < best_ * (1.0 - options_.threshold)
                                           : metric > best_ * (options_.threshold + 1.0);
}

void ReduceLROnPlateau::step(double metric) {
  advance();
  if (improves(metric)) {
    best_ = metric;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_epochs_ = 0;  // bad epochs during a cooldown do not count
  }
  if (bad_epochs_ > options_.patience) {
    const double old_lr = optimizer().learning_rate();
    const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
    if (old_lr - new_lr > options_.eps) optimizer().set_learning_rate(new_lr);
    cooldown_left_ = options_.cooldown;
    bad_epochs_ = 0;
  }
}

void ReduceLROnPlateau::save_settings(StateWriter& writer) const {
  writer.text("mode", options_.mode == PlateauMode::min ? "min" : "max");
  writer.real("factor", options_.factor);
  writer.integer("patience", options_.patience);
  writer.real("threshold", options_.threshold);
  writer.integer("cooldown", options_.cooldown);
  writer.real("min_lr", options_.min_lr);
  writer.real("eps", options_.eps);
  // PyTorch's names for the counters.
  writer.real("best", best_);
  writer.integer("num_bad_epochs", bad_epochs_);
  writer.integer("cooldown_counter", cooldown_left_);
}

std::function<void()> ReduceLROnPlateau::read_settings(StateReader& reader) {
  const std::string mode = reader.text("mode");
  if (mode != "min" && mode != "max") {
    throw file_error(detail::message(reader.file().label(), ": metadata '", reader.full_key("mode"), "' = '", mode,
                                     "' is neither min nor max"));
  }
  const PlateauOptions loaded{.mode = mode == "min" ? PlateauMode::min : PlateauMode::max,
                              .factor = reader.real("factor"),
                              .patience = reader.integer("patience"),
                              .threshold = reader.real("threshold"),
                              .cooldown = reader.integer("cooldown"),
                              .min_lr = reader.real("min_lr"),
                              .eps = reader.real("eps")};
  reader.validate([&] { checked(loaded); });
  const double best = reader.real("best");
  const std::int64_t bad_epochs = reader.count("num_bad_epochs");
  const std::int64_t cooldown_left = reader.count("cooldown_counter");
  // step() leaves the counters within these bounds; others would not resume PyTorch's schedule.
  if (bad_epochs > loaded.patience) {
    throw file_error(detail::message(reader.file().label(), ": metadata '", reader.full_key("num_bad_epochs"),
                                     "' = ", bad_epochs, " exceeds patience = ", loaded.patience));
  }
  if (cooldown_left > loaded.cooldown) {
    throw file_error(detail::message(reader.file().label(), ": metadata '", reader.full_key("cooldown_counter"),
                                     "' = ", cooldown_left, " exceeds cooldown = ", loaded.cooldown));
  }
  return [this, loaded, best, bad_epochs, cooldown_left] {
    options_ = loaded;
    best_ = best;
    bad_epochs_ = bad_epochs;
    cooldown_left_ = cooldown_left;
  };
}

// ---- BaseRateScheduler --------------------------------------------------------------------

BaseRateScheduler::BaseRateScheduler(OptimizerBase& optimizer, std::string type)
    : Scheduler(optimizer, std::move(type)), base_lr_(optimizer.learning_rate()) {}

void BaseRateScheduler::step() {
  apply(last_epoch() + 1);  // first: a factor that throws leaves the epoch as it was
  advance();
}

void BaseRateScheduler::apply(std::int64_t epoch) { optimizer().set_learning_rate(base_lr_ * factor(epoch)); }

// PyTorch's state_dict holds base_lrs and last_epoch (and a LambdaLR's lambdas only when they
// are objects with state).
void BaseRateScheduler::save_settings(StateWriter& writer) const {
  writer.real("base_lr", base_lr_);
  save_schedule(writer);
}

std::function<void()> BaseRateScheduler::read_settings(StateReader& reader) {
  const double base_lr = reader.real("base_lr");
  reader.validate([&] { require(non_negative_finite(base_lr), type().c_str(), "base_lr", base_lr, "a finite number >= 0"); });
  std::function<void()> adopt_schedule = read_schedule(reader);
  return [this, base_lr, adopt_schedule = std::move(adopt_schedule)] {
    base_lr_ = base_lr;
    adopt_schedule();
  };
}

// ---- LambdaLR -----------------------------------------------------------------------------

LambdaLR::LambdaLR(OptimizerBase& optimizer, Lambda lambda)
    : BaseRateScheduler(optimizer, "LambdaLR"), lambda_(std::move(lambda)) {
  if (!lambda_) throw std::invalid_argument("LambdaLR: the lambda is empty");
  start();
}

// The one factor that is not known to be valid: it is the user's code.
double LambdaLR::factor(std::int64_t epoch) const {
  const double rate_factor = lambda_(epoch);
  if (!non_negative_finite(rate_factor)) {
    throw std::invalid_argument(
        detail::message("LambdaLR: lambda(", epoch, ") = ", rate_factor, " (must be a finite number >= 0)"));
  }
  return rate_factor;
}

std::function<void()> LambdaLR::read_schedule(StateReader&) {
  return [] {};
}

// ---- WarmupInverseSqrtLR ------------------------------------------------------------------

WarmupInverseSqrtLR::WarmupInverseSqrtLR(OptimizerBase& optimizer, std::int64_t warmup_steps)
    : BaseRateScheduler(optimizer, "WarmupInverseSqrtLR"), warmup_steps_(warmup_steps) {
  check_inverse_sqrt(warmup_steps);
  start();
}

double WarmupInverseSqrtLR::factor(std::int64_t epoch) const {
  const double step = static_cast<double>(epoch);
  const double warmup = static_cast<double>(warmup_steps_);
  return epoch < warmup_steps_ ? step / warmup : std::sqrt(warmup / step);
}

void WarmupInverseSqrtLR::save_schedule(StateWriter& writer) const { writer.integer("warmup_steps", warmup_steps_); }

std::function<void()> WarmupInverseSqrtLR::read_schedule(StateReader& reader) {
  const std::int64_t warmup_steps = reader.integer("warmup_steps");
  reader.validate([&] { check_inverse_sqrt(warmup_steps); });
  return [this, warmup_steps] { warmup_steps_ = warmup_steps; };
}

// ---- WarmupCosineLR -----------------------------------------------------------------------

WarmupCosineLR::WarmupCosineLR(OptimizerBase& optimizer, const WarmupCosineOptions& options)
    : BaseRateScheduler(optimizer, "WarmupCosineLR"), options_(checked(options)) {
  start();
}

double WarmupCosineLR::factor(std::int64_t epoch) const {
  const double step = static_cast<double>(epoch);
  const double warmup = static_cast<double>(options_.warmup_steps);
  if (epoch < options_.warmup_steps) return step / warmup;
  const double progress = std::min(1.0, (step - warmup) / static_cast<double>(options_.total_steps - options_.warmup_steps));
  return options_.min_factor + (1.0 - options_.min_factor) * (1.0 + std::cos(std::numbers::pi * progress)) / 2.0;
}

void WarmupCosineLR::save_schedule(StateWriter& writer) const {
  writer.integer("warmup_steps", options_.warmup_steps);
  writer.integer("total_steps", options_.total_steps);
  writer.real("min_factor", options_.min_factor);
}

std::function<void()> WarmupCosineLR::read_schedule(StateReader& reader) {
  const WarmupCosineOptions loaded{.warmup_steps = reader.integer("warmup_steps"),
                                   .total_steps = reader.integer("total_steps"),
                                   .min_factor = reader.real("min_factor")};
  reader.validate([&] { checked(loaded); });
  return [this, loaded] { options_ = loaded; };
}

}  // namespace xgrad::optim
