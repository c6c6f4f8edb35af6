#pragma once
// Learning-rate schedulers with PyTorch 1.13's semantics (torch.optim.lr_scheduler).
//
// StepLR, ExponentialLR and LinearWarmup use PyTorch's chainable form: each step() multiplies
// the optimizer's current learning rate by a factor, so schedulers can be combined and
// changes made by others are kept. As in PyTorch, constructing one counts as epoch 0 (for
// LinearWarmup that already scales the learning rate by start_factor), and step() is called
// once per epoch (or per batch), after optimizer.step().
//
// A scheduler's state (type, epoch, options and counters) is saved as metadata under a
// prefix, next to its optimizer's state; loading restores it exactly and, like PyTorch's
// load_state_dict, does not touch the optimizer (whose own state holds the learning rate).

#include <cstdint>
#include <functional>
#include <string>

#include "xgrad/framework/optim.h"

namespace xgrad::optim {

class Scheduler {
 public:
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  virtual ~Scheduler() = default;

  // "StepLR", "ExponentialLR", "LinearWarmup", "ReduceLROnPlateau", "LambdaLR",
  // "WarmupInverseSqrtLR" or "WarmupCosineLR".
  const std::string& type() const noexcept { return type_; }
  // The number of step() calls since construction (PyTorch's last_epoch).
  std::int64_t last_epoch() const noexcept { return last_epoch_; }

  // Metadata "<prefix>type", "<prefix>last_epoch" and the scheduler's options and counters.
  void save_state(safetensors::Writer& writer, const std::string& prefix) const;
  // file_error naming the file and key for another scheduler type, a missing or malformed
  // value, invalid options or an unknown key under `prefix`; nothing changes then.
  void load_state(const safetensors::File& file, const std::string& prefix);

 protected:
  // `optimizer` must outlive the scheduler.
  Scheduler(OptimizerBase& optimizer, std::string type) : optimizer_(optimizer), type_(std::move(type)) {}

  OptimizerBase& optimizer() const noexcept { return optimizer_; }
  // Counts one step() and returns the new epoch.
  std::int64_t advance() noexcept { return ++last_epoch_; }

  virtual void save_settings(StateWriter& writer) const = 0;
  // Reads and validates the options and counters without adopting them; returns what adopts them.
  virtual std::function<void()> read_settings(StateReader& reader) = 0;

 private:
  OptimizerBase& optimizer_;
  std::string type_;
  std::int64_t last_epoch_ = 0;
};

// A scheduler whose step() multiplies the learning rate by factor(epoch) (PyTorch's chainable form).
class FactorScheduler : public Scheduler {
 public:
  void step();

 protected:
  // Multiplies the learning rate by `initial_factor` at once: PyTorch's step at construction.
  FactorScheduler(OptimizerBase& optimizer, std::string type, double initial_factor);

  // The factor for the step into `epoch` (>= 1).
  virtual double factor(std::int64_t epoch) const = 0;
};

// lr *= gamma every step_size epochs. std::invalid_argument unless step_size >= 1 and gamma > 0.
class StepLR final : public FactorScheduler {
 public:
  StepLR(OptimizerBase& optimizer, std::int64_t step_size, double gamma = 0.1);

 private:
  double factor(std::int64_t epoch) const override;
  void save_settings(StateWriter& writer) const override;
  std::function<void()> read_settings(StateReader& reader) override;

  std::int64_t step_size_;
  double gamma_;
};

// lr *= gamma every epoch. std::invalid_argument unless gamma > 0.
class ExponentialLR final : public FactorScheduler {
 public:
  ExponentialLR(OptimizerBase& optimizer, double gamma);

 private:
  double factor(std::int64_t epoch) const override;
  void save_settings(StateWriter& writer) const override;
  std::function<void()> read_settings(StateReader& reader) override;

  double gamma_;
};

// The learning rate rises linearly from start_factor * lr (at construction) to lr after
// warmup_steps steps, then stays: torch.optim.lr_scheduler.LinearLR(start_factor,
// end_factor = 1, total_iters = warmup_steps). std::invalid_argument unless
// warmup_steps >= 1 and start_factor is in (0, 1].
class LinearWarmup final : public FactorScheduler {
 public:
  LinearWarmup(OptimizerBase& optimizer, std::int64_t warmup_steps, double start_factor);

 private:
  double factor(std::int64_t epoch) const override;
  void save_settings(StateWriter& writer) const override;
  std::function<void()> read_settings(StateReader& reader) override;

  std::int64_t warmup_steps_;
  double start_factor_;
};

enum class PlateauMode { min, max };

struct PlateauOptions {
  PlateauMode mode = PlateauMode::min;  // min: lower metrics are better (a loss)
  double factor = 0.1;                  // lr *= factor on a plateau; in [0, 1)
  std::int64_t patience = 10;           // bad epochs tolerated before reducing
  double threshold = 1e-4;              // relative: better means below best * (1 - threshold)
  std::int64_t cooldown = 0;            // epochs after a reduction in which bad epochs are not counted
  double min_lr = 0.0;
  double eps = 1e-8;  // reductions smaller than this are skipped
};

// Reduces the learning rate when a metric stops improving (torch.optim.lr_scheduler.
// ReduceLROnPlateau with threshold_mode "rel"). std::invalid_argument naming the option for
// factor outside [0, 1), or a negative patience, threshold, cooldown, min_lr or eps.
class ReduceLROnPlateau final : public Scheduler {
 public:
  explicit ReduceLROnPlateau(OptimizerBase& optimizer, const PlateauOptions& options = {});

  // One epoch with this value of the metric (a NaN counts as a bad epoch, as in PyTorch).
  void step(double metric);

  // The best metric so far (+inf, or -inf in max mode, before the first step).
  double best() const noexcept { return best_; }
  std::int64_t bad_epochs() const noexcept { return bad_epochs_; }

 private:
  bool improves(double metric) const;
  void save_settings(StateWriter& writer) const override;
  std::function<void()> read_settings(StateReader& reader) override;

  PlateauOptions options_;
  double best_;
  std::int64_t bad_epochs_ = 0;
  std::int64_t cooldown_left_ = 0;
};

// lr = base_lr * factor(epoch), where base_lr is the learning rate at construction (not
// chainable: each step sets the learning rate, as torch.optim.lr_scheduler.LambdaLR does). As
// there, construction applies factor(0). The saved state holds the epoch, base_lr and the
// schedule's options.
class BaseRateScheduler : public Scheduler {
 public:
  void step();

  double base_lr() const noexcept { return base_lr_; }

 protected:
  BaseRateScheduler(OptimizerBase& optimizer, std::string type);
  // Sets the learning rate of epoch 0; the derived constructor calls it once its options are set.
  void start() { apply(0); }

  virtual double factor(std::int64_t epoch) const = 0;
  virtual void save_schedule(StateWriter& writer) const = 0;
  virtual std::function<void()> read_schedule(StateReader& reader) = 0;

 private:
  void apply(std::int64_t epoch);
  void save_settings(StateWriter& writer) const final;
  std::function<void()> read_settings(StateReader& reader) final;

  double base_lr_;
};

// lr = base_lr * lambda(epoch): torch.optim.lr_scheduler.LambdaLR. The lambda is code, so the
// scheduler that loads a saved state must be given the same one. std::invalid_argument for
// an empty lambda, or when it returns a negative, infinite or NaN factor (naming the epoch).
class LambdaLR final : public BaseRateScheduler {
 public:
  using Lambda = std::function<double(std::int64_t epoch)>;
  LambdaLR(OptimizerBase& optimizer, Lambda lambda);

 private:
  double factor(std::int64_t epoch) const override;
  void save_schedule(StateWriter&) const override {}
  std::function<void()> read_schedule(StateReader&) override;

  Lambda lambda_;
};

// The Transformer's ("Noam") schedule: a linear warm-up from 0 to base_lr over warmup_steps
// steps, then decay with the inverse square root of the step:
//   factor(s) = s / warmup_steps for s < warmup_steps, else sqrt(warmup_steps / s).
// Vaswani et al.'s d_model^-0.5 * min(s^-0.5, s * warmup^-1.5) is this schedule with
// base_lr = (d_model * warmup_steps)^-0.5; the form here names the peak rate instead (as
// fairseq's inverse_sqrt and Hugging Face's get_inverse_sqrt_schedule do). Step it once per
// optimizer step. std::invalid_argument unless warmup_steps >= 1.
class WarmupInverseSqrtLR final : public BaseRateScheduler {
 public:
  WarmupInverseSqrtLR(OptimizerBase& optimizer, std::int64_t warmup_steps);

 private:
  double factor(std::int64_t epoch) const override;
  void save_schedule(StateWriter& writer) const override;
  std::function<void()> read_schedule(StateReader& reader) override;

  std::int64_t warmup_steps_;
};

struct WarmupCosineOptions {
  std::int64_t warmup_steps = 0;  // steps of the linear rise
  std::int64_t total_steps = 1;   // the step at which the cosine reaches its floor
  double min_factor = 0.0;        // the floor, as a fraction of base_lr
};

// A linear warm-up from 0 to base_lr over warmup_steps steps, then half a cosine down to
// min_factor * base_lr at total_steps, where it stays:
//   factor(s) = s / warmup_steps for s < warmup_steps, else
//   min_factor + (1 - min_factor) * (1 + cos(pi * min(1, (s - warmup_steps) / (total_steps - warmup_steps)))) / 2
// (Hugging Face's get_cosine_schedule_with_warmup for min_factor = 0; PyTorch's
// CosineAnnealingLR with eta_min = min_factor * base_lr after the warm-up). Step it once
// per optimizer step. std::invalid_argument unless 0 <= warmup_steps < total_steps and
// min_factor is in [0, 1].
class WarmupCosineLR final : public BaseRateScheduler {
 public:
  WarmupCosineLR(OptimizerBase& optimizer, const WarmupCosineOptions& options);

 private:
  double factor(std::int64_t epoch) const override;
  void save_schedule(StateWriter& writer) const override;
  std::function<void()> read_schedule(StateReader& reader) override;

  WarmupCosineOptions options_;
};

}  // namespace xgrad::optim
