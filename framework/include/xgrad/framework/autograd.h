#pragma once
// The autograd graph: nodes recorded on a per-thread tape in creation order, and the
// reverse pass over them.
//
// An operation computes its result and calls record() with the inputs and a backward
// function. record() adds no node when grad mode is off or no input requires grad.
// A node holds its inputs; a result holds its node; a node refers to its results only
// weakly, so that the graph has no reference cycles and is freed when the last tensor
// that can reach it goes away.
//
// Backward contract: a backward function ACCUMULATES into input_grad(i) (+=), and only for
// inputs with needs_grad(i). It may read the inputs, the outputs and the output gradients,
// except the values that its op declared it does not read (ValuesRead): those are freed as
// soon as no handle outside the graph refers to them. Reading an input or output whose value
// was changed in place (mutable_value()) since the op ran throws graph_error, as in PyTorch.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "xgrad/framework/tensor.h"

namespace xgrad {

// Whether operations on this thread record graph nodes (true unless a NoGradGuard is alive).
bool grad_enabled() noexcept;

// Stops recording on this thread for its lifetime (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() noexcept;
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Graph nodes alive on this thread; 0 once every result of a training step is gone.
std::size_t live_node_count() noexcept;

// The values an op's backward function reads through node.input(i) and node.output(k);
// by default all of them. An op that only routes gradients by shape (concat, reshape, select,
// dropout with its own mask) reads none, a matrix product reads its inputs but not its
// result. A value that no backward reads is freed once the last handle outside the graph
// goes away, so that a decoder's per-step copies do not all live until backward.
struct ValuesRead {
  static constexpr std::size_t max_listed_input = 64;  // a node keeps the list as a bit mask
  // Indices of the inputs whose values backward reads; std::nullopt: every input.
  std::optional<std::vector<std::size_t>> inputs;
  bool outputs = true;
};

// For ops whose backward reads the listed inputs and not its results (products read their
// operands); with none listed, for ops that need only shapes and what they saved themselves.
inline ValuesRead reads_only_inputs(std::initializer_list<std::size_t> inputs) {
  return {.inputs = std::vector<std::size_t>(inputs), .outputs = false};
}
inline ValuesRead reads_no_values() { return reads_only_inputs({}); }

namespace detail {

class Tape;
class NodeBase;

// The type-independent part of a GradientFinalListener, which the tape drives.
class FinalGradientReports {
 public:
  FinalGradientReports(std::vector<const void*> leaves, std::function<void(std::size_t)> report);
  FinalGradientReports(const FinalGradientReports&) = delete;
  FinalGradientReports& operator=(const FinalGradientReports&) = delete;
  ~FinalGradientReports();

 private:
  friend class Tape;
  std::vector<const void*> leaves_;  // TensorImpl addresses
  std::unordered_map<const void*, std::size_t> index_;  // into leaves_
  std::function<void(std::size_t)> report_;
  Tape* tape_;
  // The current pass: each leaf's first consumer on the tape (npos: none), the leaves in the
  // order their gradients become final, and how many of them were reported.
  std::vector<std::size_t> first_consumer_;
  std::vector<std::size_t> order_;
  std::size_t reported_ = 0;
};

// The part of a node the tape knows: its place in creation order and whether a gradient
// has reached it in the current backward pass.
class NodeBase {
 public:
  NodeBase(const NodeBase&) = delete;
  NodeBase& operator=(const NodeBase&) = delete;
  virtual ~NodeBase();

  // Runs the reverse pass from this node, whose output gradients have been seeded.
  void backpropagate(bool retain_graph);

 protected:
  NodeBase();
  // Called when the first gradient for one of this node's outputs arrives.
  void mark_reached();
  bool reached() const noexcept { return reached_; }

 private:
  friend class Tape;
  virtual void run_backward(bool retain_graph) = 0;
  // Appends the addresses of the inputs that a GradientFinalListener listens to.
  virtual void append_listened_inputs(std::vector<const void*>& out) const = 0;
  // Drops the gradients and pins of an interrupted backward pass.
  virtual void abandon() noexcept = 0;

  Tape* tape_ = nullptr;
  std::size_t tape_index_ = 0;
  bool reached_ = false;
};

// Destroys `object` without deep recursion: a chain of a million nodes would otherwise
// overflow the stack when its last tensor goes away.
void release_iteratively(std::shared_ptr<void> object) noexcept;

}  // namespace detail

template <class T>
class Node : public detail::NodeBase {
 public:
  static constexpr std::size_t max_outputs = 4;

  ~Node() override;

  const char* op() const noexcept { return op_; }
  std::size_t input_count() const noexcept { return inputs_.size(); }
  // Empty once backward has released the graph.
  const std::vector<Tensor<T>>& inputs() const noexcept { return inputs_; }
  // The value of input i; graph_error if the op declared that its backward does not read it.
  const Array<T>& input(std::size_t i) const;
  bool needs_grad(std::size_t i) const { return inputs_[i].requires_grad(); }
  // The gradient buffer of input i (zero-filled on first use); backward adds into it.
  Array<T>& input_grad(std::size_t i);
  // Input i's gradient buffer made from input i's own value, for a backward that can turn
  // values into gradients in place (cross-entropy's logits): possible when nothing else holds
  // input i, its producer does not read it, no gradient reached it yet and the graph is not
  // retained. The value is gone afterwards (input(i) throws); null when not possible.
  Array<T>* input_value_as_grad(std::size_t i);

  std::size_t output_count() const noexcept { return output_count_; }
  // The value of output k; an output that was already destroyed has none (graph_error).
  const Array<T>& output(std::size_t k = 0) const;
  // A multi-output node may be reached through some outputs only.
  bool has_output_grad(std::size_t k = 0) const;
  const Array<T>& output_grad(std::size_t k = 0) const;

  // Internal: makes `value` result k of `node` (used by record()).
  static Tensor<T> attach_output(const std::shared_ptr<Node<T>>& node, std::size_t k,
                                 Array<T> value);
  // Internal: the gradient buffer of `x`, zero-filled on first use; the first gradient to
  // reach a non-leaf keeps it alive until its own node has run.
  static Array<T>& gradient_buffer(const std::shared_ptr<TensorImpl<T>>& x);

 protected:
  Node(const char* op, std::vector<Tensor<T>> inputs, const ValuesRead& reads);

 private:
  friend struct TensorImpl<T>;
  virtual void apply() = 0;
  virtual void release_saved() noexcept = 0;
  void run_backward(bool retain_graph) override;
  void append_listened_inputs(std::vector<const void*>& out) const override;
  void abandon() noexcept override;
  void release_inputs() noexcept;
  bool reads_input(std::size_t i) const noexcept {
    return reads_every_input_ || (i < ValuesRead::max_listed_input && ((read_inputs_ >> i) & 1) != 0);
  }
  std::uint32_t saved_input_version(std::size_t i) const noexcept {
    return i < inline_input_versions ? input_versions_[i] : more_input_versions_[i - inline_input_versions];
  }
  [[noreturn]] void throw_changed_in_place(const char* what, std::size_t index, bool numbered,
                                           std::uint32_t version, std::uint32_t saved) const;

  const char* op_;
  std::vector<Tensor<T>> inputs_;
  std::uint64_t read_inputs_ = 0;  // bit i: backward reads input i
  bool reads_every_input_ = true;
  bool reads_outputs_ = true;
  bool retaining_graph_ = false;  // during apply(): the inputs' values must survive
  std::array<TensorImpl<T>*, max_outputs> outputs_{};
  std::array<std::shared_ptr<TensorImpl<T>>, max_outputs> pinned_{};
  std::size_t output_count_ = 0;
  bool released_ = false;
  // The inputs' versions (TensorImpl::version) when the op ran, which input(i) compares with
  // the current ones; outputs are made here, at version 0, so output(k) needs none saved.
  // Every node pays for them (10^6 nodes in a large graph): inline for the first inputs, and
  // the rare op of more inputs keeps the rest behind a bare pointer, not a vector.
  static constexpr std::size_t inline_input_versions = 4;
  std::array<std::uint32_t, inline_input_versions> input_versions_{};
  std::unique_ptr<std::uint32_t[]> more_input_versions_;
};

// A node whose backward is a callable `backward(Node<T>&)`; the callable holds whatever the
// op saved for backward and is destroyed when the graph is released.
template <class T, class Backward>
class FunctionNode final : public Node<T> {
 public:
  FunctionNode(const char* op, std::vector<Tensor<T>> inputs, Backward backward, const ValuesRead& reads)
      : Node<T>(op, std::move(inputs), reads), backward_(std::move(backward)) {}

 private:
  void apply() override { (*backward_)(static_cast<Node<T>&>(*this)); }
  void release_saved() noexcept override { backward_.reset(); }

  std::optional<Backward> backward_;
};

namespace detail {
template <class T>
bool should_record(const std::vector<Tensor<T>>& inputs) noexcept {
  if (!grad_enabled()) return false;
  for (const Tensor<T>& input : inputs) {
    if (input.requires_grad()) return true;
  }
  return false;
}
}  // namespace detail

// Wraps `value` as the result of `op` applied to `inputs`. When a gradient is needed the
// result is connected to a node that runs `backward` during the reverse pass; `reads` says
// which values that backward reads.
template <class T, class Backward>
Tensor<T> record(const char* op, Array<T> value, std::vector<Tensor<T>> inputs,
                 Backward&& backward, const ValuesRead& reads = {}) {
  if (!detail::should_record(inputs)) return Tensor<T>(std::move(value));
  auto node = std::make_shared<FunctionNode<T, std::decay_t<Backward>>>(
      op, std::move(inputs), std::forward<Backward>(backward), reads);
  return Node<T>::attach_output(node, 0, std::move(value));
}

// The same for an op with several results (a fused recurrent cell returns h and c).
template <class T, std::size_t N, class Backward>
std::array<Tensor<T>, N> record(const char* op, std::array<Array<T>, N> values,
                                std::vector<Tensor<T>> inputs, Backward&& backward,
                                const ValuesRead& reads = {}) {
  static_assert(N >= 1 && N <= Node<T>::max_outputs, "record: unsupported number of outputs");
  std::array<Tensor<T>, N> results;
  if (!detail::should_record(inputs)) {
    for (std::size_t k = 0; k < N; ++k) results[k] = Tensor<T>(std::move(values[k]));
    return results;
  }
  auto node = std::make_shared<FunctionNode<T, std::decay_t<Backward>>>(
      op, std::move(inputs), std::forward<Backward>(backward), reads);
  for (std::size_t k = 0; k < N; ++k) {
    results[k] = Node<T>::attach_output(node, k, std::move(values[k]));
  }
  return results;
}

// Reports during every backward() pass on the calling thread, while it is alive, the moment
// each of `leaves` holds its final gradient of the pass: `report(i)` for leaves[i], once per
// pass, when no node left in the pass can add to it. PyTorch's DistributedDataParallel starts
// a bucket's allreduce at that moment (its post-accumulate-grad hooks) while backward goes
// on. A leaf's last contribution comes from its first consumer in creation order, so its
// report follows that node's backward; leaves that no node of the pass consumes are reported
// at the pass's end. The order of the reports follows the graph and may differ between passes.
// A pass that throws reports no more. Create it outside backward and its reports, and destroy
// it on the thread that created it or after that thread has ended.
template <class T>
class GradientFinalListener {
 public:
  // std::invalid_argument for a leaf that is not one (it has a producer or does not require
  // grad), or that is listed twice.
  GradientFinalListener(const std::vector<Tensor<T>>& leaves, std::function<void(std::size_t)> report);
  GradientFinalListener(const GradientFinalListener&) = delete;
  GradientFinalListener& operator=(const GradientFinalListener&) = delete;
  ~GradientFinalListener();

 private:
  std::vector<Tensor<T>> leaves_;
  std::unique_ptr<detail::FinalGradientReports> reports_;
};

// Tensors that require grad and have no producer, reachable from `root` through the graph,
// in the order a depth-first walk over inputs first meets them.
template <class T>
std::vector<Tensor<T>> reachable_leaves(const Tensor<T>& root);

// A leaf met by that walk and the op that reads it on the first path found ("" when the root
// is itself the leaf): what a report about a leaf can say about where it is used.
template <class T>
struct ReachedLeaf {
  Tensor<T> tensor;
  std::string used_by;
};
template <class T>
std::vector<ReachedLeaf<T>> reached_leaves(const Tensor<T>& root);

}  // namespace xgrad
