#pragma once
// Tensor: a handle to an n-dimensional array that can take part in reverse-mode autodiff.
//
// Values are contiguous row-major xt::xarray buffers. A tensor produced by an operation
// on tensors that require grad remembers the graph node that made it; backward() walks
// those nodes in reverse creation order and accumulates gradients into every leaf that
// requires grad. Copying a Tensor copies the handle, not the data (as in PyTorch).

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include <type_traits>

#include <xtensor/xarray.hpp>

#include "xgrad/framework/shape.h"

namespace xgrad {

template <class T>
using Array = xt::xarray<T, xt::layout_type::row_major>;

// Boolean masks for masked_fill, where and masked softmax (true marks the masked entries).
using Mask = xt::xarray<bool, xt::layout_type::row_major>;

// Integer indices: token ids, class targets, gather positions (int64 as in PyTorch).
using Indices = xt::xarray<std::int64_t, xt::layout_type::row_major>;

template <class T>
class Node;

template <class T>
concept Scalar = std::is_same_v<T, float> || std::is_same_v<T, double>;

// The state shared by all handles to one tensor.
template <class T>
struct TensorImpl {
  Array<T> value;
  std::optional<Array<T>> grad;
  bool requires_grad = false;
  // Non-leaf tensors drop their gradient once it has been propagated, unless asked to keep it.
  bool retains_grad = false;
  // GradientFinalListeners of this leaf alive (autograd.h); a tape pass looks for them.
  std::uint16_t final_gradient_listeners = 0;
  // Bumped each time the value is handed out for writing (mutable_value()), as PyTorch's
  // _version: a graph node remembers the versions of the values its backward reads and
  // refuses to run on a value changed in place since (graph_error naming the op).
  std::uint32_t version = 0;
  // The node that produced this tensor (empty for leaves) and which of its outputs this is.
  std::shared_ptr<Node<T>> grad_fn;
  std::size_t output_index = 0;

  // An op result's value is freed, keeping its shape, once nothing can read it any more: its
  // producer's backward does not read it and every owner left is a graph node whose backward
  // does not read it either (see ValuesRead in autograd.h). PyTorch keeps no more: only what
  // an op saved for backward outlives the forward pass. Values no larger than the shape that
  // freeing keeps (a few scalars) stay.
  bool producer_reads_value = true;
  std::uint32_t unread_holders = 0;       // graph nodes holding this tensor without reading its value
  std::unique_ptr<Shape> released_shape;  // set when the value was freed (a pointer: small when not)

  explicit TensorImpl(Array<T> v, bool rg = false) : value(std::move(v)), requires_grad(rg) {}
  TensorImpl(const TensorImpl&) = delete;
  TensorImpl& operator=(const TensorImpl&) = delete;
  ~TensorImpl();

  bool value_released() const noexcept { return released_shape != nullptr; }
  const Shape& shape() const noexcept { return value_released() ? *released_shape : value.shape(); }
  // An op result whose producer does not read it, still holding its value.
  bool value_releasable() const noexcept { return grad_fn && !producer_reads_value && !value_released(); }
  // Moves the value out, keeping its shape; value() throws from then on.
  Array<T> take_value();
  // Called when the owners left are the unread holders: frees the value if releasable.
  void release_unread_value() noexcept;
};

struct BackwardOptions {
  // Keep the saved values so that backward can run through the same graph again.
  bool retain_graph = false;
};

template <class T = float>
  requires Scalar<T>
class Tensor {
 public:
  using value_type = T;

  // An undefined tensor (defined() is false); most operations reject it.
  Tensor() = default;
  explicit Tensor(Array<T> value, bool requires_grad = false);
  Tensor(const Tensor&) = default;
  Tensor(Tensor&&) noexcept = default;
  // Dropping a handle may free an intermediate value that only the graph holds, unread.
  Tensor& operator=(const Tensor& other) {
    if (this != &other) {
      release_unread_value();
      impl_ = other.impl_;
    }
    return *this;
  }
  Tensor& operator=(Tensor&& other) noexcept {
    if (this != &other) {
      release_unread_value();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  ~Tensor() { release_unread_value(); }

  static Tensor zeros(const Shape& shape, bool requires_grad = false);
  static Tensor ones(const Shape& shape, bool requires_grad = false);
  static Tensor full(const Shape& shape, T fill, bool requires_grad = false);
  static Tensor scalar(T value, bool requires_grad = false);
  // Values in row-major order with their shape: Tensor<>::from({1, 2, 3, 4, 5, 6}, {2, 3}).
  // (xtensor's nested braces cannot express shapes such as [1, 2] unambiguously.)
  static Tensor from(std::initializer_list<T> values, const Shape& shape, bool requires_grad = false);

  bool defined() const noexcept { return impl_ != nullptr; }
  // graph_error for an intermediate whose value was freed (reachable only through the graph).
  const Array<T>& value() const;
  // In-place access that bypasses autograd: for optimizers, initialisers and loading weights.
  // Counts as a change (version()): a backward that reads this value and was recorded before
  // throws graph_error; change values after backward, as an optimizer step does.
  Array<T>& mutable_value();
  // How many times mutable_value() handed out this tensor's value (PyTorch's _version).
  std::uint32_t version() const { return impl().version; }
  const T* data() const { return value().data(); }
  const Shape& shape() const { return impl().shape(); }
  std::size_t dim() const { return shape().size(); }
  std::size_t size() const {
    const TensorImpl<T>& state = impl();
    return state.value_released() ? element_count(*state.released_shape) : state.value.size();
  }
  std::size_t size(int axis) const;
  // The single value of a one-element tensor; shape_error otherwise.
  T item() const;

  bool requires_grad() const { return impl().requires_grad; }
  // Only leaves can be switched; the result of an op requires grad iff an input does.
  Tensor& set_requires_grad(bool requires_grad);
  bool is_leaf() const { return !impl().grad_fn; }

  bool has_grad() const { return impl().grad.has_value(); }
  // The accumulated gradient; graph_error if backward has not reached this tensor.
  const Array<T>& grad() const;
  Array<T>& mutable_grad();
  // Sets an existing gradient to zero, keeping its buffer for the next step.
  void zero_grad();
  // Keep this non-leaf tensor's gradient after backward (leaves always keep theirs).
  void retain_grad();

  // Backpropagates from a one-element tensor (seed 1).
  void backward(const BackwardOptions& options = {});
  // Backpropagates from any tensor given d(objective)/d(this), shaped like this tensor.
  void backward(const Array<T>& output_grad, const BackwardOptions& options = {});

  // A new leaf holding a copy of the value, cut from the graph.
  Tensor detach() const;

  // The value converted to U (float or double), differentiably: the gradient flows back
  // converted to T. For U == T, this tensor itself (as PyTorch's .to()). gradcheck and
  // reachable_leaves do not follow the graph across a conversion.
  template <class U>
    requires Scalar<U>
  Tensor<U> to() const;

  // True when both handles refer to the same tensor.
  bool same(const Tensor& other) const noexcept { return impl_ == other.impl_; }

  // Internal: the shared state (used by graph nodes and gradcheck).
  TensorImpl<T>& impl() const;
  const std::shared_ptr<TensorImpl<T>>& impl_ptr() const noexcept { return impl_; }
  explicit Tensor(std::shared_ptr<TensorImpl<T>> impl) : impl_(std::move(impl)) {}

 private:
  friend class Node<T>;  // moves its inputs' state out when the graph is released
  // This handle is about to let go: if every other owner is a non-reading graph node, nothing
  // can read the value any more.
  void release_unread_value() noexcept {
    if (impl_ != nullptr && impl_->unread_holders != 0 &&
        impl_.use_count() == static_cast<long>(impl_->unread_holders) + 1) {
      impl_->release_unread_value();
    }
  }
  std::shared_ptr<TensorImpl<T>> impl_;
};

// Tensors with names, in a meaningful order: a module's parameters, an optimizer's state.
template <class T>
using NamedTensors = std::vector<std::pair<std::string, Tensor<T>>>;

// x.to<U>() as a free function: cast<double>(x).
template <class U, class T>
  requires Scalar<U>
Tensor<U> cast(const Tensor<T>& x) {
  return x.template to<U>();
}

// Prints as PyTorch's repr does, followed by the shape: values with 4 decimals (or in
// scientific notation when magnitudes differ widely, or as "1." when all are whole), rows on
// lines, the first and last 3 along each axis around "..." past 1000 elements, then
//   shape=[2, 3], dtype=double (for double), grad_fn=<matmul> or requires_grad=true.
// An intermediate whose value the graph freed prints as <freed>, an undefined tensor as
// tensor(undefined).
template <class T>
std::ostream& operator<<(std::ostream& out, const Tensor<T>& tensor);
// The same text as a string.
template <class T>
std::string to_string(const Tensor<T>& tensor);

namespace detail {
[[noreturn]] void throw_undefined_tensor();
[[noreturn]] void throw_released_value(const Shape& shape);
}

template <class T>
  requires Scalar<T>
inline TensorImpl<T>& Tensor<T>::impl() const {
  if (!impl_) [[unlikely]] detail::throw_undefined_tensor();
  return *impl_;
}

template <class T>
  requires Scalar<T>
inline const Array<T>& Tensor<T>::value() const {
  const TensorImpl<T>& state = impl();
  if (state.value_released()) [[unlikely]] detail::throw_released_value(*state.released_shape);
  return state.value;
}

template <class T>
  requires Scalar<T>
inline Array<T>& Tensor<T>::mutable_value() {
  TensorImpl<T>& state = impl();
  if (state.value_released()) [[unlikely]] detail::throw_released_value(*state.released_shape);
  ++state.version;
  return state.value;
}

}  // namespace xgrad
