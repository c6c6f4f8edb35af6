#include "xgrad/layers/module.h"

#include <algorithm>
#include <type_traits>
#include <unordered_set>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"
#include "xgrad/framework/large_pages.h"
#include "xgrad/framework/tensor_check.h"

namespace xgrad::nn {

template <class T>
void Module<T>::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw std::invalid_argument("Module: the name '" + name + "' must be non-empty and contain no '.'");
  }
  auto taken = [&](const auto& entries) {
    return std::any_of(entries.begin(), entries.end(), [&](const auto& entry) { return entry.first == name; });
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_)) {
    throw std::invalid_argument("Module: the name '" + name + "' is already registered");
  }
}

template <class T>
Tensor<T> Module<T>::register_parameter(const std::string& name, Tensor<T> tensor) {
  check_new_name(name);
  tensor.set_requires_grad(true);
  advise_large_pages(tensor.mutable_value());  // read whole on every step, as long as the module lives
  parameters_.emplace_back(name, tensor);
  return tensor;
}

template <class T>
Tensor<T> Module<T>::register_buffer(const std::string& name, Tensor<T> tensor) {
  check_new_name(name);
  buffers_.emplace_back(name, tensor);
  return tensor;
}

template <class T>
void Module<T>::register_module(const std::string& name, Module& child) {
  check_new_name(name);
  children_.emplace_back(name, &child);
}

template <class T>
void Module<T>::collect(const std::string& prefix, bool parameters, bool buffers, NamedTensors<T>& out) const {
  if (parameters) {
    for (const auto& [name, tensor] : parameters_) out.emplace_back(prefix + name, tensor);
  }
  if (buffers) {
    for (const auto& [name, tensor] : buffers_) out.emplace_back(prefix + name, tensor);
  }
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", parameters, buffers, out);
}

template <class T>
NamedTensors<T> Module<T>::named_parameters() const {
  NamedTensors<T> result;
  collect("", true, false, result);
  return result;
}

template <class T>
std::vector<Tensor<T>> Module<T>::parameters() const {
  std::vector<Tensor<T>> result;
  for (auto& [name, tensor] : named_parameters()) result.push_back(tensor);
  return result;
}

template <class T>
NamedTensors<T> Module<T>::named_buffers() const {
  NamedTensors<T> result;
  collect("", false, true, result);
  return result;
}

template <class T>
NamedTensors<T> Module<T>::state_dict() const {
  NamedTensors<T> result;
  collect("", true, true, result);
  return result;
}

template <class T>
std::vector<std::pair<std::string, const Module<T>*>> Module<T>::named_children() const {
  return {children_.begin(), children_.end()};
}

template <class T>
void Module<T>::train(bool training) {
  if (training && weight_format_ != WeightFormat::float32) {
    throw std::logic_error(detail::message("Module: its weights are rounded to ", weight_format_name(weight_format_),
                                           " for inference; set_weight_format(float32) before training"));
  }
  training_ = training;
  for (auto& [name, child] : children_) child->train(training);
}

template <class T>
void Module<T>::set_weight_format(WeightFormat format) {
  if constexpr (!std::is_same_v<T, float>) {
    throw std::invalid_argument(detail::message("Module: weights in ", weight_format_name(format),
                                                " are for float modules, not double ones"));
  } else {
    if (format != WeightFormat::float32) {
      for (auto& [name, parameter] : named_parameters()) {
        if (parameter.dim() == 2) parameter.mutable_value() = QuantizedMatrix(parameter.value(), format).dequantized();
      }
    }
    eval();
    adopt_weight_format(format);
  }
}

template <class T>
void Module<T>::adopt_weight_format(WeightFormat format) {
  weight_format_ = format;
  use_weight_format(format);
  for (auto& [name, child] : children_) child->adopt_weight_format(format);
}

template <class T>
void Module<T>::zero_grad() {
  for (auto& [name, tensor] : named_parameters()) tensor.zero_grad();
}

template <class T>
void write_state_dict(const Module<T>& module, safetensors::Writer& writer, const std::string& prefix) {
  for (const auto& [name, tensor] : module.state_dict()) writer.add(prefix + name, tensor.value());
}

template <class T>
void save_state_dict(const Module<T>& module, const std::string& path, const std::map<std::string, std::string>& metadata) {
  safetensors::Writer writer;
  write_state_dict(module, writer);
  for (const auto& [key, value] : metadata) writer.set_metadata(key, value);
  writer.write(path);
}

template <class T>
std::vector<std::string> state_dict_mismatches(const Module<T>& module, const safetensors::File& file,
                                               const std::string& prefix) {
  std::vector<safetensors::ExpectedTensor> expected;
  for (const auto& [key, tensor] : module.state_dict()) expected.push_back({.key = key, .shape = tensor.shape()});
  return safetensors::tensor_mismatches(file, prefix, expected);
}

template <class T>
void load_state_dict(Module<T>& module, const safetensors::File& file, const std::string& prefix) {
  const std::vector<std::string> problems = state_dict_mismatches(module, file, prefix);
  if (!problems.empty()) {
    std::string message = file.label() + ": does not match the module's state_dict:";
    for (const std::string& problem : problems) message += "\n  " + problem;
    throw file_error(message);
  }
  NamedTensors<T> state = module.state_dict();
  for (const auto& [key, tensor] : state) {
    if (const std::optional<std::size_t> at = file.first_non_finite(prefix + key)) {
      throw file_error(detail::message(file.label(), ": tensor '", prefix, key, "' holds a NaN or infinite value (element ",
                                       *at, " of shape ", to_string(tensor.shape()), "); the weights are unusable"));
    }
  }
  for (auto& [key, tensor] : state) {
    // Into the registered storage, which already sits on large pages (register_parameter).
    const Array<T> loaded = file.floats<T>(prefix + key);
    std::copy(loaded.begin(), loaded.end(), tensor.mutable_value().begin());
  }
}

template <class T>
void load_state_dict(Module<T>& module, const std::string& path) {
  load_state_dict(module, safetensors::File::read(path));
}

template <class T>
std::vector<UnregisteredParameter<T>> unregistered_parameters(const Module<T>& module, const Tensor<T>& loss) {
  std::unordered_set<const TensorImpl<T>*> registered;
  for (const Tensor<T>& parameter : module.parameters()) registered.insert(parameter.impl_ptr().get());
  std::vector<UnregisteredParameter<T>> found;
  for (ReachedLeaf<T>& leaf : reached_leaves(loss)) {
    if (registered.count(leaf.tensor.impl_ptr().get()) != 0) continue;
    std::string description = "tensor of shape " + to_string(leaf.tensor.shape());
    if (!leaf.used_by.empty()) description += " read by " + leaf.used_by;
    found.push_back({std::move(leaf.tensor), std::move(description)});
  }
  return found;
}

template class Module<float>;
template class Module<double>;
template void save_state_dict(const Module<float>&, const std::string&, const std::map<std::string, std::string>&);
template void save_state_dict(const Module<double>&, const std::string&, const std::map<std::string, std::string>&);
template void write_state_dict(const Module<float>&, safetensors::Writer&, const std::string&);
template void write_state_dict(const Module<double>&, safetensors::Writer&, const std::string&);
template std::vector<std::string> state_dict_mismatches(const Module<float>&, const safetensors::File&, const std::string&);
template std::vector<std::string> state_dict_mismatches(const Module<double>&, const safetensors::File&, const std::string&);
template void load_state_dict(Module<float>&, const safetensors::File&, const std::string&);
template void load_state_dict(Module<double>&, const safetensors::File&, const std::string&);
template void load_state_dict(Module<float>&, const std::string&);
template void load_state_dict(Module<double>&, const std::string&);
template std::vector<UnregisteredParameter<float>> unregistered_parameters(const Module<float>&, const Tensor<float>&);
template std::vector<UnregisteredParameter<double>> unregistered_parameters(const Module<double>&, const Tensor<double>&);

}  // namespace xgrad::nn
