#include "xgrad/framework/optim.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "xgrad/framework/errors.h"
#include "xgrad/framework/isa.h"
#include "xgrad/framework/threading.h"

namespace xgrad::optim {

namespace {

// A parameter takes part in a step (and in clipping) when it requires grad and has a
// gradient: PyTorch's `p.grad is not None`, with frozen parameters left alone.
template <class T>
bool takes_part(const Tensor<T>& parameter) {
  return parameter.requires_grad() && parameter.has_grad();
}

// Finite and >= 0 (NaN fails too).
void check_non_negative(const std::string& optimizer, const char* option, double value) {
  if (!(value >= 0) || !std::isfinite(value)) {
    throw std::invalid_argument(
        detail::message(optimizer, ": invalid ", option, " = ", value, " (must be a finite number >= 0)"));
  }
}

void check_beta(const std::string& optimizer, const char* option, double value) {
  if (!(value >= 0 && value < 1)) {
    throw std::invalid_argument(detail::message(optimizer, ": invalid ", option, " = ", value, " (must be in [0, 1))"));
  }
}

const SgdOptions& checked(const SgdOptions& options) {
  check_non_negative("SGD", "lr", options.lr);
  check_non_negative("SGD", "momentum", options.momentum);
  check_non_negative("SGD", "weight_decay", options.weight_decay);
  if (!(options.dampening >= 0 && options.dampening <= 1)) {
    throw std::invalid_argument(
        detail::message("SGD: invalid dampening = ", options.dampening, " (must be in [0, 1])"));
  }
  if (options.nesterov && (options.momentum == 0 || options.dampening != 0)) {
    throw std::invalid_argument(detail::message(
        "SGD: nesterov = true requires momentum > 0 and dampening = 0 (got momentum = ", options.momentum,
        ", dampening = ", options.dampening, ")"));
  }
  return options;
}

const AdamOptions& checked(const std::string& optimizer, const AdamOptions& options) {
  check_non_negative(optimizer, "lr", options.lr);
  check_non_negative(optimizer, "eps", options.eps);
  check_beta(optimizer, "beta1", options.beta1);
  check_beta(optimizer, "beta2", options.beta2);
  check_non_negative(optimizer, "weight_decay", options.weight_decay);
  return options;
}

// PyTorch's state names.
std::vector<std::string> sgd_buffers(const SgdOptions& options) {
  if (options.momentum == 0) return {};
  return {"momentum_buffer"};
}

std::vector<std::string> adam_buffers(const AdamOptions& options) {
  std::vector<std::string> names{"exp_avg", "exp_avg_sq"};
  if (options.amsgrad) names.emplace_back("max_exp_avg_sq");
  return names;
}

AdamOptions as_adam_options(const AdamWOptions& options) {
  return {.lr = options.lr,
          .beta1 = options.beta1,
          .beta2 = options.beta2,
          .eps = options.eps,
          .weight_decay = options.weight_decay,
          .amsgrad = options.amsgrad};
}

}  // namespace

template <class T>
NamedTensors<T> numbered(const std::vector<Tensor<T>>& parameters) {
  NamedTensors<T> named;
  named.reserve(parameters.size());
  for (std::size_t i = 0; i < parameters.size(); ++i) named.emplace_back(std::to_string(i), parameters[i]);
  return named;
}

// ---- Optimizer ----------------------------------------------------------------------------

template <class T>
Optimizer<T>::Optimizer(std::string type, NamedTensors<T> parameters, std::vector<std::string> buffer_names)
    : type_(std::move(type)), parameters_(std::move(parameters)), buffer_names_(std::move(buffer_names)) {
  if (parameters_.empty()) throw std::invalid_argument(type_ + ": got an empty parameter list");
  std::set<std::string> names;
  std::map<const TensorImpl<T>*, std::string> tensors;
  for (const auto& [name, parameter] : parameters_) {
    if (!parameter.defined()) throw std::invalid_argument(type_ + ": parameter '" + name + "' is an undefined tensor");
    if (!names.insert(name).second) {
      throw std::invalid_argument(type_ + ": the parameter name '" + name + "' appears twice");
    }
    const auto [it, inserted] = tensors.emplace(parameter.impl_ptr().get(), name);
    if (!inserted) {
      throw std::invalid_argument(type_ + ": parameters '" + it->second + "' and '" + name + "' are the same tensor");
    }
  }
  state_.resize(parameters_.size());
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    state_[i].buffers.assign(buffer_names_.size(), Array<T>(parameters_[i].second.shape(), T(0)));
  }
}

template <class T>
void Optimizer<T>::step() {
  // Check every parameter before changing any, so that a failed step changes nothing.
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const auto& [name, parameter] = parameters_[i];
    if (!takes_part(parameter)) continue;
    if (parameter.grad().shape() != parameter.shape()) {
      throw shape_error(detail::message(type_, ": parameter '", name, "' has shape ", parameter.shape(),
                                        " but its gradient has shape ", parameter.grad().shape()));
    }
    for (std::size_t b = 0; b < buffer_names_.size(); ++b) {
      if (state_[i].buffers[b].shape() != parameter.shape()) {
        throw shape_error(detail::message(type_, ": parameter '", name, "' has shape ", parameter.shape(), " but its ",
                                          buffer_names_[b], " has shape ", state_[i].buffers[b].shape(),
                                          " (was the parameter replaced after the optimizer was made?)"));
      }
    }
  }
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Tensor<T>& parameter = parameters_[i].second;
    if (!takes_part(parameter)) continue;
    ++state_[i].updates;
    update(parameter.mutable_value(), parameter.grad(), state_[i]);
  }
  ++steps_;
}

template <class T>
void Optimizer<T>::zero_grad() {
  for (auto& [name, parameter] : parameters_) parameter.zero_grad();
}

template <class T>
void Optimizer<T>::save_state(safetensors::Writer& writer, const std::string& prefix) const {
  StateWriter out(writer, prefix);
  out.text("type", type_);
  out.integer("steps", steps_);
  save_options(out);
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const std::string& name = parameters_[i].first;
    out.tensor("step." + name, Indices(state_[i].updates));
    for (std::size_t b = 0; b < buffer_names_.size(); ++b) {
      out.tensor(buffer_names_[b] + "." + name, state_[i].buffers[b]);
    }
  }
}

template <class T>
void Optimizer<T>::load_state(const safetensors::File& file, const std::string& prefix) {
  StateReader reader(file, prefix);
  reader.expect_type(type_, "optimizer");
  const std::int64_t steps = reader.count("steps");
  LoadedOptions options = read_options(reader);

  std::vector<safetensors::ExpectedTensor> expected;
  for (const auto& [name, parameter] : parameters_) {
    expected.push_back({.key = "step." + name, .shape = {}, .integer = true});
    for (const std::string& buffer : options.buffer_names) {
      expected.push_back({.key = buffer + "." + name, .shape = parameter.shape(), .shape_of = "parameter '" + name + "'"});
    }
  }
  // Every problem is collected before giving up, so that one message says all that is wrong.
  std::vector<std::string> problems = reader.check_tensors(expected, "this " + type_ + " optimizer");
  for (const std::string& key : reader.unread_keys()) problems.push_back("unknown key '" + key + "'");
  std::vector<ParameterState> state(parameters_.size());
  if (problems.empty()) {  // values are read only from tensors of the expected shape and kind
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      const std::string& name = parameters_[i].first;
      const std::string updates_key = reader.full_key("step." + name);
      state[i].updates = file.integers(updates_key)();
      if (state[i].updates < 0 || state[i].updates > steps) {
        problems.push_back(detail::message("key '", updates_key, "' = ", state[i].updates, " is outside [0, ", steps,
                                           "], the optimizer's step count"));
      }
      for (const std::string& buffer : options.buffer_names) {
        state[i].buffers.push_back(file.floats<T>(reader.full_key(buffer + "." + name)));
      }
    }
  }
  if (!problems.empty()) {
    std::string message = file.label() + ": does not hold the state of this " + type_ + " optimizer:";
    for (const std::string& problem : problems) message += "\n  " + problem;
    throw file_error(message);
  }
  options.apply();
  buffer_names_ = std::move(options.buffer_names);
  state_ = std::move(state);
  steps_ = steps;
}

template <class T>
void Optimizer<T>::save(const std::string& path) const {
  safetensors::Writer writer;
  save_state(writer, "");
  writer.write(path);
}

template <class T>
void Optimizer<T>::load(const std::string& path) {
  load_state(safetensors::File::read(path), "");
}

// ---- SGD ----------------------------------------------------------------------------------

template <class T>
SGD<T>::SGD(NamedTensors<T> parameters, const SgdOptions& options)
    : Optimizer<T>("SGD", std::move(parameters), sgd_buffers(checked(options))), options_(options) {}

template <class T>
SGD<T>::SGD(const std::vector<Tensor<T>>& parameters, const SgdOptions& options) : SGD(numbered(parameters), options) {}

template <class T>
void SGD<T>::set_learning_rate(double lr) {
  check_non_negative("SGD", "lr", lr);
  options_.lr = lr;
}

template <class T>
void SGD<T>::update(Array<T>& value, const Array<T>& grad, typename Optimizer<T>::ParameterState& state) {
  const bool decay = options_.weight_decay != 0;
  const bool nesterov = options_.nesterov;
  const bool first_update = state.updates == 1;
  const T lr = static_cast<T>(options_.lr);
  const T weight_decay = static_cast<T>(options_.weight_decay);
  const T momentum = static_cast<T>(options_.momentum);
  const T undamped = static_cast<T>(1 - options_.dampening);
  T* p = value.data();
  const T* g = grad.data();
  T* buffer = options_.momentum != 0 ? state.buffers[0].data() : nullptr;
  parallel_for(value.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      T d = g[i];
      if (decay) d += weight_decay * p[i];
      if (buffer != nullptr) {
        // PyTorch starts the buffer at the first gradient itself, undamped.
        buffer[i] = first_update ? d : buffer[i] * momentum + undamped * d;
        d = nesterov ? d + momentum * buffer[i] : buffer[i];
      }
      p[i] -= lr * d;
    }
  });
}

template <class T>
void SGD<T>::save_options(StateWriter& writer) const {
  writer.real("lr", options_.lr);
  writer.real("momentum", options_.momentum);
  writer.real("dampening", options_.dampening);
  writer.real("weight_decay", options_.weight_decay);
  writer.boolean("nesterov", options_.nesterov);
}

template <class T>
typename Optimizer<T>::LoadedOptions SGD<T>::read_options(StateReader& reader) {
  const SgdOptions loaded{.lr = reader.real("lr"),
                          .momentum = reader.real("momentum"),
                          .dampening = reader.real("dampening"),
                          .weight_decay = reader.real("weight_decay"),
                          .nesterov = reader.boolean("nesterov")};
  reader.validate([&] { checked(loaded); });
  return {sgd_buffers(loaded), [this, loaded] { options_ = loaded; }};
}

// ---- Adam and AdamW -----------------------------------------------------------------------

template <class T>
AdamFamily<T>::AdamFamily(const char* type, NamedTensors<T> parameters, const AdamOptions& options,
                          WeightDecay weight_decay)
    : Optimizer<T>(type, std::move(parameters), adam_buffers(checked(type, options))),
      options_(options),
      weight_decay_(weight_decay) {}

template <class T>
void AdamFamily<T>::set_learning_rate(double lr) {
  check_non_negative(this->type(), "lr", lr);
  options_.lr = lr;
}

namespace {
// The scalars of one Adam step.
template <class T>
struct AdamStep {
  T step_size, bias_correction2_sqrt, weight_decay, shrink, beta1, rest1, beta2, rest2, eps;
  bool decoupled, l2;
};

// One Adam step over elements [begin, end) (max_exp_avg_sq null without AMSGrad), for each
// instruction set (isa.h). Everything comes by value, so that it sits in registers: read
// through a closure, every store to p could change the closure's float members and the loop
// stayed scalar, a tenth of a classifier training step. `omp simd`: the buffers never overlap,
// which the compiler cannot prove either.
template <Isa isa>
struct AdamRange {
  template <class T>
  XGRAD_KERNEL static void run(const AdamStep<T> k, T* p, const T* g, T* exp_avg, T* exp_avg_sq,
                               T* max_exp_avg_sq, std::size_t begin, std::size_t end) {
#pragma omp simd
    for (std::size_t i = begin; i < end; ++i) {
      T gi = g[i];
      if (k.decoupled) p[i] *= k.shrink;      // AdamW: p *= 1 - lr * weight_decay
      if (k.l2) gi += k.weight_decay * p[i];  // Adam: g += weight_decay * p
      exp_avg[i] = exp_avg[i] * k.beta1 + k.rest1 * gi;
      exp_avg_sq[i] = exp_avg_sq[i] * k.beta2 + k.rest2 * gi * gi;
      T second_moment = exp_avg_sq[i];
      if (max_exp_avg_sq != nullptr) {
        max_exp_avg_sq[i] = std::max(max_exp_avg_sq[i], exp_avg_sq[i]);
        second_moment = max_exp_avg_sq[i];
      }
      const T denominator = std::sqrt(second_moment) / k.bias_correction2_sqrt + k.eps;
      p[i] -= k.step_size * (exp_avg[i] / denominator);
    }
  }
};
}  // namespace

template <class T>
void AdamFamily<T>::update(Array<T>& value, const Array<T>& grad, typename Optimizer<T>::ParameterState& state) {
  const double t = static_cast<double>(state.updates);
  const double bias_correction1 = 1 - std::pow(options_.beta1, t);
  const double bias_correction2 = 1 - std::pow(options_.beta2, t);
  const bool decoupled = weight_decay_ == WeightDecay::decoupled;
  const AdamStep<T> step{.step_size = static_cast<T>(options_.lr / bias_correction1),
                         .bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2)),
                         .weight_decay = static_cast<T>(options_.weight_decay),
                         .shrink = static_cast<T>(1 - options_.lr * options_.weight_decay),
                         .beta1 = static_cast<T>(options_.beta1),
                         .rest1 = static_cast<T>(1 - options_.beta1),
                         .beta2 = static_cast<T>(options_.beta2),
                         .rest2 = static_cast<T>(1 - options_.beta2),
                         .eps = static_cast<T>(options_.eps),
                         .decoupled = decoupled,
                         .l2 = !decoupled && options_.weight_decay != 0};
  T* p = value.data();
  const T* g = grad.data();
  T* exp_avg = state.buffers[0].data();
  T* exp_avg_sq = state.buffers[1].data();
  T* max_exp_avg_sq = options_.amsgrad ? state.buffers[2].data() : nullptr;
  parallel_for(value.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
    dispatch<AdamRange>(step, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, begin, end);
  });
}

template <class T>
void AdamFamily<T>::save_options(StateWriter& writer) const {
  writer.real("lr", options_.lr);
  writer.real("beta1", options_.beta1);
  writer.real("beta2", options_.beta2);
  writer.real("eps", options_.eps);
  writer.real("weight_decay", options_.weight_decay);
  writer.boolean("amsgrad", options_.amsgrad);
}

template <class T>
typename Optimizer<T>::LoadedOptions AdamFamily<T>::read_options(StateReader& reader) {
  const AdamOptions loaded{.lr = reader.real("lr"),
                           .beta1 = reader.real("beta1"),
                           .beta2 = reader.real("beta2"),
                           .eps = reader.real("eps"),
                           .weight_decay = reader.real("weight_decay"),
                           .amsgrad = reader.boolean("amsgrad")};
  reader.validate([&] { checked(this->type(), loaded); });
  return {adam_buffers(loaded), [this, loaded] { options_ = loaded; }};
}

template <class T>
Adam<T>::Adam(NamedTensors<T> parameters, const AdamOptions& options)
    : AdamFamily<T>("Adam", std::move(parameters), options, AdamFamily<T>::WeightDecay::l2) {}

template <class T>
Adam<T>::Adam(const std::vector<Tensor<T>>& parameters, const AdamOptions& options)
    : Adam(numbered(parameters), options) {}

template <class T>
AdamW<T>::AdamW(NamedTensors<T> parameters, const AdamWOptions& options)
    : AdamFamily<T>("AdamW", std::move(parameters), as_adam_options(options), AdamFamily<T>::WeightDecay::decoupled) {}

template <class T>
AdamW<T>::AdamW(const std::vector<Tensor<T>>& parameters, const AdamWOptions& options)
    : AdamW(numbered(parameters), options) {}

// ---- clip_grad_norm -----------------------------------------------------------------------

namespace {
// sum of x[i]^2 in double, for each instruction set (isa.h). By value and with omp simd:
// inside the clipping closure the loop stayed scalar (it re-read the captured pointer for
// every element).
template <Isa isa>
struct SquaredSum {
  template <class T>
  XGRAD_KERNEL static double run(const T* x, std::size_t n) {
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
    return sum;
  }
};
}  // namespace

template <class T>
double clip_grad_norm(const std::vector<Tensor<T>>& parameters, double max_norm) {
  if (!(max_norm >= 0)) {
    throw std::invalid_argument(detail::message("clip_grad_norm: invalid max_norm = ", max_norm, " (must be >= 0)"));
  }
  // Squares summed in double, so that float gradients lose nothing; per block of fixed size,
  // then the blocks in order, so that the norm is the same bits with any number of threads.
  double sum_of_squares = 0;
  std::vector<double> block_sums;
  for (const Tensor<T>& parameter : parameters) {
    if (!takes_part(parameter)) continue;
    const T* g = parameter.grad().data();
    const std::size_t n = parameter.size();
    block_sums.assign((n + elementwise_grain - 1) / elementwise_grain, 0.0);
    parallel_for(block_sums.size(), 1, [&](std::size_t first_block, std::size_t end_block) {
      for (std::size_t block = first_block; block < end_block; ++block) {
        const std::size_t begin = block * elementwise_grain;
        block_sums[block] = dispatch<SquaredSum>(g + begin, std::min(n, begin + elementwise_grain) - begin);
      }
    });
    for (double sum : block_sums) sum_of_squares += sum;
  }
  const double norm = std::sqrt(sum_of_squares);
  if (!std::isfinite(norm)) return norm;
  const double coefficient = max_norm / (norm + 1e-6);
  if (coefficient >= 1) return norm;
  const T scale = static_cast<T>(coefficient);
  for (Tensor<T> parameter : parameters) {
    if (!takes_part(parameter)) continue;
    T* g = parameter.mutable_grad().data();
    parallel_for(parameter.size(), elementwise_grain, [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) g[i] *= scale;
    });
  }
  return norm;
}

template <class T>
double clip_grad_norm(const NamedTensors<T>& parameters, double max_norm) {
  std::vector<Tensor<T>> tensors;
  tensors.reserve(parameters.size());
  for (const auto& [name, parameter] : parameters) tensors.push_back(parameter);
  return clip_grad_norm(tensors, max_norm);
}

#define XGRAD_INSTANTIATE_OPTIM(T)                                       \
  template NamedTensors<T> numbered(const std::vector<Tensor<T>>&);      \
  template class Optimizer<T>;                                           \
  template class SGD<T>;                                                 \
  template class AdamFamily<T>;                                          \
  template class Adam<T>;                                                \
  template class AdamW<T>;                                               \
  template double clip_grad_norm(const std::vector<Tensor<T>>&, double); \
  template double clip_grad_norm(const NamedTensors<T>&, double);

XGRAD_INSTANTIATE_OPTIM(float)
XGRAD_INSTANTIATE_OPTIM(double)

}  // namespace xgrad::optim
