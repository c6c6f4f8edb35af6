#include "xgrad/framework/tensor.h"

#include <algorithm>

#include "loops.h"
#include "xgrad/framework/autograd.h"
#include "xgrad/framework/errors.h"

namespace xgrad {

namespace detail {
void throw_undefined_tensor() {
  throw graph_error("use of an undefined tensor (a default-constructed Tensor holds no value)");
}

void throw_released_value(const Shape& shape) {
  throw graph_error(message("the value of this intermediate tensor of shape ", shape,
                            " was freed: no handle outside the graph held it and no backward function "
                            "declared that it reads it (ValuesRead)"));
}
}  // namespace detail

template <class T>
  requires Scalar<T>
Tensor<T>::Tensor(Array<T> value, bool requires_grad)
    : impl_(std::make_shared<TensorImpl<T>>(std::move(value), requires_grad)) {}

template <class T>
  requires Scalar<T>
Tensor<T> Tensor<T>::zeros(const Shape& shape, bool requires_grad) {
  return full(shape, T(0), requires_grad);
}

template <class T>
  requires Scalar<T>
Tensor<T> Tensor<T>::ones(const Shape& shape, bool requires_grad) {
  return full(shape, T(1), requires_grad);
}

template <class T>
  requires Scalar<T>
Tensor<T> Tensor<T>::full(const Shape& shape, T fill, bool requires_grad) {
  return Tensor(detail::parallel_filled(shape, fill), requires_grad);
}

template <class T>
  requires Scalar<T>
Tensor<T> Tensor<T>::scalar(T value, bool requires_grad) {
  return Tensor(Array<T>(value), requires_grad);
}

template <class T>
  requires Scalar<T>
Tensor<T> Tensor<T>::from(std::initializer_list<T> values, const Shape& shape, bool requires_grad) {
  if (values.size() != element_count(shape)) {
    throw shape_error(detail::message("Tensor::from: ", values.size(), " values cannot fill shape ", shape, " (",
                                      element_count(shape), " elements)"));
  }
  Array<T> array = Array<T>::from_shape(shape);
  std::copy(values.begin(), values.end(), array.begin());
  return Tensor(std::move(array), requires_grad);
}

template <class T>
  requires Scalar<T>
std::size_t Tensor<T>::size(int axis) const {
  return shape()[normalize_axis("size", axis, dim())];
}

template <class T>
  requires Scalar<T>
T Tensor<T>::item() const {
  if (size() != 1) {
    throw shape_error(detail::message("item(): the tensor has shape ", shape(),
                                      "; only a one-element tensor has a single value"));
  }
  return *value().data();
}

template <class T>
  requires Scalar<T>
Tensor<T>& Tensor<T>::set_requires_grad(bool requires_grad) {
  if (!is_leaf()) {
    throw graph_error(detail::message(
        "set_requires_grad(): the tensor was produced by '", impl().grad_fn->op(),
        "'; only leaves can change it (use detach() to cut a tensor from its graph)"));
  }
  impl().requires_grad = requires_grad;
  return *this;
}

template <class T>
  requires Scalar<T>
const Array<T>& Tensor<T>::grad() const {
  if (!has_grad()) {
    throw graph_error(detail::message("grad(): the tensor of shape ", shape(),
                                      " has no gradient yet (no backward() has reached it)"));
  }
  return *impl().grad;
}

template <class T>
  requires Scalar<T>
Array<T>& Tensor<T>::mutable_grad() {
  return const_cast<Array<T>&>(std::as_const(*this).grad());
}

template <class T>
  requires Scalar<T>
void Tensor<T>::zero_grad() {
  if (has_grad()) detail::parallel_fill(*impl().grad, T(0));
}

template <class T>
  requires Scalar<T>
void Tensor<T>::retain_grad() {
  if (!requires_grad()) {
    throw graph_error("retain_grad(): the tensor does not require grad");
  }
  impl().retains_grad = true;
}

template <class T>
  requires Scalar<T>
void Tensor<T>::backward(const BackwardOptions& options) {
  if (size() != 1) {
    throw graph_error(detail::message(
        "backward(): the tensor has shape ", shape(),
        "; only a one-element tensor can start backward without an output gradient (pass "
        "backward(output_grad) with a gradient of the same shape)"));
  }
  backward(Array<T>(shape(), T(1)), options);
}

template <class T>
  requires Scalar<T>
void Tensor<T>::backward(const Array<T>& output_grad, const BackwardOptions& options) {
  if (!requires_grad()) {
    throw graph_error(detail::message(
        "backward(): the tensor of shape ", shape(),
        " does not require grad (no input of the ops that produced it requires grad, or it "
        "was computed under NoGradGuard)"));
  }
  if (output_grad.shape() != shape()) {
    throw shape_error(detail::message("backward(): the output gradient has shape ",
                                      output_grad.shape(), " but the tensor has shape ", shape()));
  }
  Array<T>& buffer = Node<T>::gradient_buffer(impl_);
  buffer += output_grad;
  if (Node<T>* producer = impl().grad_fn.get()) {
    producer->backpropagate(options.retain_graph);
  }
}

template <class T>
  requires Scalar<T>
Tensor<T> Tensor<T>::detach() const {
  return Tensor(value(), false);
}

template <class T>
  requires Scalar<T>
template <class U>
  requires Scalar<U>
Tensor<U> Tensor<T>::to() const {
  if constexpr (std::is_same_v<U, T>) {
    return *this;
  } else {
    const Array<T>& source = value();
    Array<U> converted = Array<U>::from_shape(source.shape());
    std::transform(source.begin(), source.end(), converted.begin(), [](T v) { return static_cast<U>(v); });
    if (!grad_enabled() || !requires_grad()) return Tensor<U>(std::move(converted));
    // A node of the result's type with no inputs of that type: it holds this tensor and adds
    // the converted gradient into its buffer, which schedules this tensor's producer (the
    // tape orders nodes of both types together). It holds this tensor's value until backward
    // (a graph node would let it be freed earlier: conversions are few).
    auto backward = [source_tensor = *this](Node<U>& node) {
      const Array<U>& gy = node.output_grad();
      Array<T>& gx = Node<T>::gradient_buffer(source_tensor.impl_ptr());
      const U* pg = gy.data();
      T* px = gx.data();
      for (std::size_t i = 0; i < gy.size(); ++i) px[i] += static_cast<T>(pg[i]);
    };
    const char* op = std::is_same_v<U, double> ? "to<double>" : "to<float>";
    auto node = std::make_shared<FunctionNode<U, decltype(backward)>>(op, std::vector<Tensor<U>>{},
                                                                       std::move(backward), reads_no_values());
    return Node<U>::attach_output(node, 0, std::move(converted));
  }
}

template class Tensor<float>;
template class Tensor<double>;
template Tensor<float> Tensor<float>::to<float>() const;
template Tensor<double> Tensor<float>::to<double>() const;
template Tensor<float> Tensor<double>::to<float>() const;
template Tensor<double> Tensor<double>::to<double>() const;

}  // namespace xgrad
