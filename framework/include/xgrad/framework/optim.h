#pragma once
// Optimizers with PyTorch 1.13's update rules (SGD, Adam, AdamW), gradient-norm clipping, and
// the saved state that lets a run resume exactly.
//
// An optimizer updates the parameters it was given in place (mutable_value()), outside the
// autograd graph. A parameter takes part in a step only when it requires grad and has a
// gradient, as PyTorch skips parameters whose .grad is None: one that backward never
// reached, or a frozen one, keeps its value and its state does not advance. Note that
// zero_grad() keeps gradients (at zero), as PyTorch 1.13 does by default, so a parameter
// once reached keeps taking part (momentum and weight decay go on moving it).
//
// State lives in a safetensors file under a prefix (state_io.h), so that an optimizer, its
// schedulers and the model can share one checkpoint:
//   metadata "<prefix>type", "<prefix>steps", "<prefix>lr", "<prefix><option>" (betas, ...)
//   tensor   "<prefix>step.<parameter>"      I64 scalar: the updates this parameter received
//   tensor   "<prefix><buffer>.<parameter>"  e.g. "exp_avg.encoder.weight"
// Prefixes of objects sharing a file must not be prefixes of one another: loading refuses
// any key under its prefix that it does not know.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/framework/safetensors.h"
#include "xgrad/framework/state_io.h"
#include "xgrad/framework/tensor.h"

namespace xgrad::optim {

// Names "0", "1", ... for a plain list of parameters, as PyTorch numbers them in its state.
template <class T>
NamedTensors<T> numbered(const std::vector<Tensor<T>>& parameters);

// The part of an optimizer that learning-rate schedulers drive.
class OptimizerBase {
 public:
  OptimizerBase() = default;
  OptimizerBase(const OptimizerBase&) = delete;
  OptimizerBase& operator=(const OptimizerBase&) = delete;
  virtual ~OptimizerBase() = default;

  virtual double learning_rate() const = 0;
  // std::invalid_argument unless lr >= 0.
  virtual void set_learning_rate(double lr) = 0;
};

template <class T = float>
class Optimizer : public OptimizerBase {
 public:
  // "SGD", "Adam" or "AdamW": the type recorded with the saved state.
  const std::string& type() const noexcept { return type_; }
  const NamedTensors<T>& parameters() const noexcept { return parameters_; }
  // The number of step() calls, whether or not any parameter took part.
  std::int64_t steps() const noexcept { return steps_; }

  // Updates every parameter that requires grad and has a gradient.
  virtual void step();
  // Zeroes every existing gradient, keeping the buffers.
  void zero_grad();

  // The state under `prefix` (see the top of this file).
  void save_state(safetensors::Writer& writer, const std::string& prefix) const;
  // Restores the saved state, options and learning rate included, so that this optimizer
  // continues exactly as the saved one would. The file must hold the same optimizer type and,
  // for every parameter (matched by name), its update count and buffers with the parameter's
  // shape, and nothing else under `prefix`; otherwise file_error names the file and every
  // offending key (with both shapes for a mismatch), and nothing is changed. F32 and F64
  // buffers load into either precision (resuming bit for bit needs the saved one).
  void load_state(const safetensors::File& file, const std::string& prefix);
  // The state alone in one file, written atomically (prefix "").
  void save(const std::string& path) const;
  void load(const std::string& path);

 protected:
  struct ParameterState {
    std::int64_t updates = 0;       // PyTorch's state["step"]: 1 during the first update
    std::vector<Array<T>> buffers;  // in the order of buffer_names
  };
  // Options read back from a file: the buffers they imply, and how to adopt them once the
  // rest of the file has been checked.
  struct LoadedOptions {
    std::vector<std::string> buffer_names;
    std::function<void()> apply;
  };

  // `buffer_names` are the per-parameter state buffers ("exp_avg", ...), allocated as zeros
  // shaped like each parameter. std::invalid_argument for an empty list, an undefined tensor,
  // a repeated name or a tensor given twice.
  Optimizer(std::string type, NamedTensors<T> parameters, std::vector<std::string> buffer_names);

  // One parameter's update; `state.updates` already counts this one.
  virtual void update(Array<T>& value, const Array<T>& grad, ParameterState& state) = 0;
  virtual void save_options(StateWriter& writer) const = 0;
  // Reads and validates the options (learning rate included) without adopting them.
  virtual LoadedOptions read_options(StateReader& reader) = 0;

 private:
  std::string type_;
  NamedTensors<T> parameters_;
  std::vector<std::string> buffer_names_;
  std::vector<ParameterState> state_;  // one per parameter
  std::int64_t steps_ = 0;
};

struct SgdOptions {
  double lr = 0.0;  // set it: PyTorch has no default, and 0 leaves the parameters where they are
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// d = g + weight_decay * p; with momentum b = momentum * b + (1 - dampening) * d (b = d on a
// parameter's first update) and d = nesterov ? d + momentum * b : b; then p -= lr * d.
template <class T = float>
class SGD final : public Optimizer<T> {
 public:
  // std::invalid_argument naming the option for lr, momentum or weight_decay below 0 (or NaN),
  // dampening outside [0, 1], and nesterov without momentum or with dampening.
  SGD(NamedTensors<T> parameters, const SgdOptions& options);
  SGD(const std::vector<Tensor<T>>& parameters, const SgdOptions& options);

  double learning_rate() const override { return options_.lr; }
  void set_learning_rate(double lr) override;

 private:
  void update(Array<T>& value, const Array<T>& grad, typename Optimizer<T>::ParameterState& state) override;
  void save_options(StateWriter& writer) const override;
  typename Optimizer<T>::LoadedOptions read_options(StateReader& reader) override;

  SgdOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2: added to the gradient
  bool amsgrad = false;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled: p *= 1 - lr * weight_decay before the Adam update
  bool amsgrad = false;
};

// The update Adam and AdamW share; they differ only in where weight decay enters. At update t
// (per parameter):  m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,
// (amsgrad: v_max = max(v_max, v), used in place of v),
// p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
template <class T>
class AdamFamily : public Optimizer<T> {
 public:
  double learning_rate() const override { return options_.lr; }
  void set_learning_rate(double lr) override;

 protected:
  enum class WeightDecay { l2, decoupled };
  AdamFamily(const char* type, NamedTensors<T> parameters, const AdamOptions& options, WeightDecay weight_decay);

 private:
  void update(Array<T>& value, const Array<T>& grad, typename Optimizer<T>::ParameterState& state) override;
  void save_options(StateWriter& writer) const override;
  typename Optimizer<T>::LoadedOptions read_options(StateReader& reader) override;

  AdamOptions options_;
  WeightDecay weight_decay_;
};

// Adam with L2 weight decay (g += weight_decay * p). std::invalid_argument naming the option
// for lr, eps or weight_decay below 0, or a beta outside [0, 1).
template <class T = float>
class Adam final : public AdamFamily<T> {
 public:
  explicit Adam(NamedTensors<T> parameters, const AdamOptions& options = {});
  explicit Adam(const std::vector<Tensor<T>>& parameters, const AdamOptions& options = {});
};

// Adam with decoupled weight decay (Loshchilov & Hutter); same option checks as Adam.
template <class T = float>
class AdamW final : public AdamFamily<T> {
 public:
  explicit AdamW(NamedTensors<T> parameters, const AdamWOptions& options = {});
  explicit AdamW(const std::vector<Tensor<T>>& parameters, const AdamWOptions& options = {});
};

// Scales the gradients of all parameters that take part in a step (see above) by
// max_norm / (norm + 1e-6) when that is below 1, where norm is the L2 norm of all their
// elements together (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
// A non-finite norm (an inf or NaN gradient) is returned as it is and nothing is scaled:
// the caller decides whether to skip the step. std::invalid_argument unless max_norm >= 0.
template <class T>
double clip_grad_norm(const NamedTensors<T>& parameters, double max_norm);
template <class T>
double clip_grad_norm(const std::vector<Tensor<T>>& parameters, double max_norm);

}  // namespace xgrad::optim
