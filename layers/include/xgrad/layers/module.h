#pragma once
// Module: the base of every layer and model. A module registers its parameters (leaf
// tensors that require grad), buffers (state that is saved but not trained) and child
// modules under names; the names compose with dots into PyTorch's state_dict keys
// (`encoder.rnn.weight_ih_l0`), so that a PyTorch state_dict saved as safetensors loads here.
//
// Modules are neither copyable nor movable: children are registered by reference, as
// members of their parent. Configuration lives in an options struct per layer.

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "xgrad/framework/quantized.h"
#include "xgrad/framework/safetensors.h"
#include "xgrad/framework/tensor.h"

namespace xgrad::nn {

template <class T = float>
class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // Own entries first, in registration order, then each child's under "child.".
  NamedTensors<T> named_parameters() const;
  std::vector<Tensor<T>> parameters() const;
  NamedTensors<T> named_buffers() const;
  // Parameters and buffers: everything a checkpoint holds.
  NamedTensors<T> state_dict() const;
  std::vector<std::pair<std::string, const Module*>> named_children() const;

  // Training mode (dropout active) for this module and all children. std::logic_error while
  // the weights are in another format than float32 (set_weight_format).
  void train(bool training = true);
  void eval() { train(false); }
  bool is_training() const noexcept { return training_; }
  void zero_grad();

  // Inference with weights of fewer bytes (quantized.h): rounds every weight matrix of the
  // module (each parameter of two dimensions, embeddings included) to `format` in place, so
  // that its float values are those the format holds, and lets the layers that multiply by one
  // (Linear and the recurrent cells) run those products in the format. Puts the module in
  // eval mode. float32 returns to float products (the values stay rounded). Float modules
  // only: std::invalid_argument for a double one.
  void set_weight_format(WeightFormat format);
  WeightFormat weight_format() const noexcept { return weight_format_; }

 protected:
  // Called on each module once its weights are rounded to `format`: a layer that multiplies by
  // a weight matrix builds its rounded copy here, and drops it for float32.
  virtual void use_weight_format(WeightFormat format) { (void)format; }

  // Registers a parameter (it is made to require grad) and returns the shared handle.
  Tensor<T> register_parameter(const std::string& name, Tensor<T> tensor);
  Tensor<T> register_buffer(const std::string& name, Tensor<T> tensor);
  // `child` must live as long as this module (normally it is a member).
  void register_module(const std::string& name, Module& child);

 private:
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool parameters, bool buffers, NamedTensors<T>& out) const;
  void adopt_weight_format(WeightFormat format);

  NamedTensors<T> parameters_;
  NamedTensors<T> buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
  WeightFormat weight_format_ = WeightFormat::float32;
};

// PyTorch's nn.ModuleList for children of one kind: the i-th is registered as "i", so that a
// stack's keys read `layers.0.linear1.weight`. Children are built in place and never move.
template <class T, class Child>
class ModuleList : public Module<T> {
 public:
  template <class... Args>
  Child& emplace_back(Args&&... args) {
    children_.push_back(std::make_unique<Child>(std::forward<Args>(args)...));
    this->register_module(std::to_string(children_.size() - 1), *children_.back());
    return *children_.back();
  }
  std::size_t size() const noexcept { return children_.size(); }
  Child& operator[](std::size_t i) { return *children_[i]; }
  const Child& operator[](std::size_t i) const { return *children_[i]; }

 private:
  std::vector<std::unique_ptr<Child>> children_;
};

// Writes the state_dict as safetensors (F32 for float modules, F64 for double), atomically.
template <class T>
void save_state_dict(const Module<T>& module, const std::string& path,
                     const std::map<std::string, std::string>& metadata = {});
// Adds the state_dict to a file being assembled, each key preceded by `prefix` (a checkpoint
// can hold a model beside an optimizer's state).
template <class T>
void write_state_dict(const Module<T>& module, safetensors::Writer& writer, const std::string& prefix = "");

// Every way the file's tensors under `prefix` differ from the module's state_dict: each
// missing and unexpected key and each shape mismatch (with both shapes), one line each, and
// where the missing keys are when the file holds them all under another prefix
// (safetensors::tensor_mismatches); empty when they fit.
template <class T>
std::vector<std::string> state_dict_mismatches(const Module<T>& module, const safetensors::File& file,
                                               const std::string& prefix = "");

// Strict loading: every key of the module must be in the file and every tensor of the file
// must be a key of the module, with equal shapes; otherwise file_error lists each missing
// and unexpected key and each shape mismatch (both shapes), and the prefix to load with when
// the file holds every missing key under another one (a whole checkpoint's "model."), and
// nothing is changed.
// A NaN or infinite value is a file_error naming the file and the tensor (weights that are
// not finite only ever give NaN outputs), and nothing is changed either.
// With a prefix, only the file's tensors under that prefix are considered.
// F32 and F64 files load into either kind of module.
template <class T>
void load_state_dict(Module<T>& module, const safetensors::File& file, const std::string& prefix = "");
template <class T>
void load_state_dict(Module<T>& module, const std::string& path);

// A tensor that a loss depends on and that requires grad but is not a parameter of the module.
template <class T>
struct UnregisteredParameter {
  Tensor<T> tensor;
  std::string description;  // "tensor of shape [3, 4] read by linear"
};

// Every leaf that requires grad, that `loss` reached through the graph it recorded and that is
// not one of module.parameters(): most often a sub-layer that was never registered, which an
// optimizer made from the parameters never trains and a checkpoint never saves. Empty when
// the module owns everything the loss trains. Call it once, on the first step, before backward
// (which releases the graph it walks).
template <class T>
std::vector<UnregisteredParameter<T>> unregistered_parameters(const Module<T>& module, const Tensor<T>& loss);

}  // namespace xgrad::nn
