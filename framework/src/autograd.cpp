#include "xgrad/framework/autograd.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_set>

#include "loops.h"
#include "xgrad/framework/errors.h"

namespace xgrad {

namespace {
thread_local bool grad_mode_enabled = true;
}  // namespace

bool grad_enabled() noexcept { return grad_mode_enabled; }

NoGradGuard::NoGradGuard() noexcept : previous_(grad_mode_enabled) { grad_mode_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_mode_enabled = previous_; }

namespace detail {

// Nodes in creation order, which is a topological order: an op's inputs exist before it.
// The tape does not own nodes; a dying node leaves a hole that is compacted away later.
class Tape {
 public:
  static Tape& current() {
    thread_local Tape tape;
    return tape;
  }

  ~Tape() {
    for (NodeBase* node : nodes_) {
      if (node != nullptr) node->tape_ = nullptr;
    }
    for (FinalGradientReports* listener : listeners_) listener->tape_ = nullptr;
  }

  void record(NodeBase& node) {
    node.tape_ = this;
    node.tape_index_ = nodes_.size();
    nodes_.push_back(&node);
    ++live_;
  }

  void forget(NodeBase& node) noexcept {
    nodes_[node.tape_index_] = nullptr;
    --live_;
    if (node.reached_) --pending_;
    if (!running_) shrink();
  }

  void mark_reached(NodeBase& node) {
    if (node.tape_ != this) {
      throw graph_error(
          "backward(): the graph was built on another thread; run backward on the thread that "
          "recorded it");
    }
    node.reached_ = true;
    ++pending_;
  }

  void attach(FinalGradientReports& reports) {
    refuse_while_running("GradientFinalListener: created");
    listeners_.push_back(&reports);
  }
  void detach(FinalGradientReports& reports) noexcept {
    std::erase(listeners_, &reports);
  }

  // The reverse loop: every node that a gradient reached runs once, after all its consumers.
  void run_backward(NodeBase& start, bool retain_graph) {
    refuse_while_running("backward(): called again");
    running_ = true;
    NodeBase* current = nullptr;
    try {
      if (!listeners_.empty()) find_first_consumers(start.tape_index_);
      for (std::size_t i = start.tape_index_ + 1; i-- > 0 && pending_ > 0;) {
        report_final_gradients(i);
        current = nodes_[i];
        if (current == nullptr || !current->reached_) continue;
        current->reached_ = false;
        --pending_;
        current->run_backward(retain_graph);  // may destroy this node and others
        current = nullptr;
      }
      report_final_gradients(0, /*to_the_end=*/true);
    } catch (...) {
      // A node that throws is still alive (it is destroyed only by its own unpinning).
      if (current != nullptr) current->abandon();
      for (NodeBase* node : nodes_) {
        if (node != nullptr && node->reached_) {
          node->reached_ = false;
          node->abandon();
        }
      }
      pending_ = 0;
      running_ = false;
      shrink();
      throw;
    }
    running_ = false;
    shrink();
  }

  std::size_t live() const noexcept { return live_; }

 private:
  void refuse_while_running(const char* what) const {
    if (running_) throw graph_error(detail::message(what, " from inside a backward function"));
  }

  // A leaf's gradient is final once the pass has run its first consumer on the tape: the
  // nodes before it cannot reach it. Nodes past `end` cannot be reached by this pass.
  void find_first_consumers(std::size_t end) {
    for (FinalGradientReports* listener : listeners_) {
      listener->first_consumer_.assign(listener->leaves_.size(), npos);
      listener->reported_ = 0;
    }
    std::vector<const void*> listened;
    for (std::size_t i = 0; i <= end; ++i) {
      if (nodes_[i] == nullptr) continue;
      listened.clear();
      nodes_[i]->append_listened_inputs(listened);
      for (const void* leaf : listened) {
        for (FinalGradientReports* listener : listeners_) {
          const auto it = listener->index_.find(leaf);
          if (it == listener->index_.end()) continue;
          std::size_t& first = listener->first_consumer_[it->second];
          if (first == npos) first = i;
        }
      }
    }
    for (FinalGradientReports* listener : listeners_) {
      // Latest first consumer first; leaves without one (npos) go last, to the pass's end.
      std::vector<std::size_t>& order = listener->order_;
      order.resize(listener->leaves_.size());
      for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
      const std::vector<std::size_t>& first = listener->first_consumer_;
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return (first[a] == npos ? 0 : first[a] + 1) > (first[b] == npos ? 0 : first[b] + 1);
      });
    }
  }

  // Reports the leaves whose first consumer lies above `index` (every leaf left, to the end).
  void report_final_gradients(std::size_t index, bool to_the_end = false) {
    for (FinalGradientReports* listener : listeners_) {
      while (listener->reported_ < listener->order_.size()) {
        const std::size_t leaf = listener->order_[listener->reported_];
        const std::size_t first = listener->first_consumer_[leaf];
        if (!to_the_end && (first == npos || first <= index)) break;
        ++listener->reported_;
        listener->report_(leaf);
      }
    }
  }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  void shrink() noexcept {
    if (live_ == 0) {
      nodes_.clear();
      return;
    }
    // Compact once most slots are holes, so that the tape stays proportional to live nodes.
    if (nodes_.size() < 2 * live_ + 64) return;
    std::size_t kept = 0;
    for (NodeBase* node : nodes_) {
      if (node == nullptr) continue;
      node->tape_index_ = kept;
      nodes_[kept++] = node;
    }
    nodes_.resize(kept);
  }

  std::vector<NodeBase*> nodes_;
  std::size_t live_ = 0;
  std::size_t pending_ = 0;
  bool running_ = false;
  std::vector<FinalGradientReports*> listeners_;
};

NodeBase::NodeBase() { Tape::current().record(*this); }

NodeBase::~NodeBase() {
  if (tape_ != nullptr) tape_->forget(*this);
}

void NodeBase::mark_reached() {
  if (tape_ == nullptr) {
    throw graph_error("backward(): the thread that recorded this graph has ended");
  }
  tape_->mark_reached(*this);
}

void NodeBase::backpropagate(bool retain_graph) {
  if (tape_ == nullptr) {
    throw graph_error("backward(): the thread that recorded this graph has ended");
  }
  tape_->run_backward(*this, retain_graph);
}

FinalGradientReports::FinalGradientReports(std::vector<const void*> leaves, std::function<void(std::size_t)> report)
    : leaves_(std::move(leaves)), report_(std::move(report)), tape_(&Tape::current()) {
  for (std::size_t i = 0; i < leaves_.size(); ++i) index_.emplace(leaves_[i], i);
  tape_->attach(*this);
}

FinalGradientReports::~FinalGradientReports() {
  if (tape_ != nullptr) tape_->detach(*this);  // null once the thread that made it has ended
}

void release_iteratively(std::shared_ptr<void> object) noexcept {
  struct Queue {
    std::vector<std::shared_ptr<void>> pending;
    bool draining = false;
  };
  thread_local Queue queue;
  if (object.use_count() > 1) return;  // not the last owner: dropping it destroys nothing
  queue.pending.push_back(std::move(object));
  if (queue.draining) return;  // an outer call on this thread will destroy it
  queue.draining = true;
  while (!queue.pending.empty()) {
    std::shared_ptr<void> last = std::move(queue.pending.back());
    queue.pending.pop_back();
    last.reset();  // may destroy nodes whose inputs land in `pending`
  }
  queue.draining = false;
}

}  // namespace detail

std::size_t live_node_count() noexcept { return detail::Tape::current().live(); }

// ---------------------------------------------------------------------------------------
// Node<T>

template <class T>
Node<T>::Node(const char* op, std::vector<Tensor<T>> inputs, const ValuesRead& reads)
    : op_(op), inputs_(std::move(inputs)), reads_every_input_(!reads.inputs), reads_outputs_(reads.outputs) {
  if (inputs_.size() > inline_input_versions) {
    more_input_versions_ = std::make_unique<std::uint32_t[]>(inputs_.size() - inline_input_versions);
  }
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    if (!inputs_[i].defined()) continue;
    const std::uint32_t version = inputs_[i].impl_->version;
    if (i < inline_input_versions) {
      input_versions_[i] = version;
    } else {
      more_input_versions_[i - inline_input_versions] = version;
    }
  }
  if (!reads.inputs) return;
  for (std::size_t i : *reads.inputs) {
    if (i >= ValuesRead::max_listed_input || i >= inputs_.size()) {
      throw std::invalid_argument(detail::message(op, ": ValuesRead lists input ", i, " of ", inputs_.size(),
                                                  " (listed inputs must exist and lie below ",
                                                  ValuesRead::max_listed_input, ")"));
    }
    read_inputs_ |= std::uint64_t(1) << i;
  }
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    if (!reads_input(i) && inputs_[i].defined()) ++inputs_[i].impl_->unread_holders;
  }
}

template <class T>
Node<T>::~Node() {
  release_inputs();
}

template <class T>
void Node<T>::release_inputs() noexcept {
  std::vector<Tensor<T>> inputs = std::move(inputs_);
  inputs_.clear();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].impl_ == nullptr) continue;
    if (!reads_input(i)) --inputs[i].impl_->unread_holders;
    inputs[i].release_unread_value();  // the holders left may all be non-reading
    detail::release_iteratively(std::move(inputs[i].impl_));
  }
}

template <class T>
const Array<T>& Node<T>::input(std::size_t i) const {
  if (!reads_input(i)) {
    throw graph_error(detail::message(op_, ": backward reads input ", i,
                                      ", which the op declared unread (ValuesRead); its value may be freed"));
  }
  const TensorImpl<T>& x = inputs_[i].impl();
  if (x.version != saved_input_version(i)) [[unlikely]] {
    throw_changed_in_place("input", i, input_count() > 1, x.version, saved_input_version(i));
  }
  return inputs_[i].value();
}

template <class T>
void Node<T>::throw_changed_in_place(const char* what, std::size_t index, bool numbered, std::uint32_t version,
                                     std::uint32_t saved) const {
  throw graph_error(detail::message(
      op_, "'s backward needs its ", what, numbered ? detail::message(" ", index) : std::string(),
      ", which was changed in place after the op (version ", version, ", saved at version ", saved,
      "); change values through mutable_value() only after backward (an optimizer step belongs between "
      "backward and the next forward), or compute a new tensor instead of changing this one"));
}

template <class T>
Tensor<T> Node<T>::attach_output(const std::shared_ptr<Node<T>>& node, std::size_t k,
                                 Array<T> value) {
  auto result = std::make_shared<TensorImpl<T>>(std::move(value), true);
  result->producer_reads_value = node->reads_outputs_;
  result->grad_fn = node;
  result->output_index = k;
  node->outputs_[k] = result.get();
  node->output_count_ = std::max(node->output_count_, k + 1);
  return Tensor<T>(std::move(result));
}

template <class T>
Array<T>& Node<T>::gradient_buffer(const std::shared_ptr<TensorImpl<T>>& x) {
  if (!x->grad) x->grad.emplace(detail::parallel_filled(x->shape(), T(0)));
  Node<T>* producer = x->grad_fn.get();
  if (producer != nullptr && !producer->pinned_[x->output_index]) {
    producer->pinned_[x->output_index] = x;
    if (!producer->reached()) producer->mark_reached();
  }
  return *x->grad;
}

template <class T>
Array<T>& Node<T>::input_grad(std::size_t i) {
  return gradient_buffer(inputs_[i].impl_ptr());
}

template <class T>
Array<T>* Node<T>::input_value_as_grad(std::size_t i) {
  const std::shared_ptr<TensorImpl<T>>& x = inputs_[i].impl_ptr();
  if (retaining_graph_ || x.use_count() != 1 || !x->value_releasable() || x->grad) return nullptr;
  x->grad.emplace(x->take_value());
  return &gradient_buffer(x);
}

template <class T>
const Array<T>& Node<T>::output(std::size_t k) const {
  if (k >= output_count_ || outputs_[k] == nullptr) {
    throw graph_error(detail::message(op_, ": output ", k,
                                      " no longer exists; a backward function that needs a "
                                      "discarded output must save it itself"));
  }
  if (!reads_outputs_) {
    throw graph_error(detail::message(op_, ": backward reads output ", k,
                                      ", which the op declared unread (ValuesRead); its value may be freed"));
  }
  const TensorImpl<T>& y = *outputs_[k];
  if (y.version != 0) [[unlikely]] throw_changed_in_place("output", k, output_count_ > 1, y.version, 0);
  return y.value;
}

template <class T>
bool Node<T>::has_output_grad(std::size_t k) const {
  return k < output_count_ && outputs_[k] != nullptr && outputs_[k]->grad.has_value();
}

template <class T>
const Array<T>& Node<T>::output_grad(std::size_t k) const {
  if (!has_output_grad(k)) {
    throw graph_error(detail::message(op_, ": output ", k, " received no gradient"));
  }
  return *outputs_[k]->grad;
}

template <class T>
void Node<T>::run_backward(bool retain_graph) {
  if (released_) {
    throw graph_error(detail::message(
        "backward(): the graph through '", op_,
        "' was already freed by an earlier backward(); pass BackwardOptions{.retain_graph = "
        "true} to the first call to backpropagate twice"));
  }
  {
    NoGradGuard no_recording;
    retaining_graph_ = retain_graph;
    apply();
  }
  if (!retain_graph) {
    release_saved();
    release_inputs();
    released_ = true;
  }
  abandon();  // gradients of this node's outputs are consumed; unpinning may destroy *this
}

template <class T>
void Node<T>::append_listened_inputs(std::vector<const void*>& out) const {
  for (const Tensor<T>& input : inputs_) {
    if (input.impl_ != nullptr && input.impl_->final_gradient_listeners > 0) out.push_back(input.impl_.get());
  }
}

template <class T>
void Node<T>::abandon() noexcept {
  for (std::size_t k = 0; k < output_count_; ++k) {
    TensorImpl<T>* out = outputs_[k];
    if (out != nullptr && !out->retains_grad) out->grad.reset();
  }
  // Move the pins out first: dropping the last pin destroys the output, which owns this node.
  std::array<std::shared_ptr<TensorImpl<T>>, max_outputs> pins = std::move(pinned_);
  for (auto& pin : pins) detail::release_iteratively(std::move(pin));
}

template <class T>
GradientFinalListener<T>::GradientFinalListener(const std::vector<Tensor<T>>& leaves,
                                                std::function<void(std::size_t)> report) {
  std::vector<const void*> addresses;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const Tensor<T>& leaf = leaves[i];
    if (!leaf.defined() || !leaf.requires_grad() || leaf.impl().grad_fn) {
      throw std::invalid_argument(detail::message("GradientFinalListener: tensor ", i,
                                                  " is not a leaf that requires grad (a parameter)"));
    }
    if (std::find(addresses.begin(), addresses.end(), leaf.impl_ptr().get()) != addresses.end()) {
      throw std::invalid_argument(detail::message("GradientFinalListener: tensor ", i, " is listed twice"));
    }
    addresses.push_back(leaf.impl_ptr().get());
  }
  reports_ = std::make_unique<detail::FinalGradientReports>(std::move(addresses), std::move(report));
  leaves_ = leaves;
  for (Tensor<T>& leaf : leaves_) ++leaf.impl().final_gradient_listeners;
}

template <class T>
GradientFinalListener<T>::~GradientFinalListener() {
  for (Tensor<T>& leaf : leaves_) --leaf.impl().final_gradient_listeners;
}

template <class T>
std::vector<ReachedLeaf<T>> reached_leaves(const Tensor<T>& root) {
  std::vector<ReachedLeaf<T>> leaves;
  std::unordered_set<const void*> seen;
  std::vector<ReachedLeaf<T>> stack{{root, ""}};
  while (!stack.empty()) {
    ReachedLeaf<T> current = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(current.tensor.impl_ptr().get()).second) continue;
    const auto& producer = current.tensor.impl().grad_fn;
    if (!producer) {
      if (current.tensor.requires_grad()) leaves.push_back(std::move(current));
      continue;
    }
    const auto& inputs = producer->inputs();
    for (auto it = inputs.rbegin(); it != inputs.rend(); ++it) {
      if (it->requires_grad()) stack.push_back({*it, producer->op()});
    }
  }
  return leaves;
}

template <class T>
std::vector<Tensor<T>> reachable_leaves(const Tensor<T>& root) {
  std::vector<Tensor<T>> leaves;
  for (ReachedLeaf<T>& leaf : reached_leaves(root)) leaves.push_back(std::move(leaf.tensor));
  return leaves;
}

// ---------------------------------------------------------------------------------------
// TensorImpl<T>

template <class T>
Array<T> TensorImpl<T>::take_value() {
  released_shape = std::make_unique<Shape>(value.shape());
  return std::exchange(value, Array<T>::from_shape({0}));
}

template <class T>
void TensorImpl<T>::release_unread_value() noexcept {
  // The shape it keeps takes a heap block of its own: freeing a smaller value saves nothing
  // (a chain of scalar ops would grow by that block per op).
  if (value_releasable() && value.size() * sizeof(T) > sizeof(Shape)) take_value();
}

template <class T>
TensorImpl<T>::~TensorImpl() {
  if (grad_fn) grad_fn->outputs_[output_index] = nullptr;
  detail::release_iteratively(std::move(grad_fn));
}

template struct TensorImpl<float>;
template struct TensorImpl<double>;
template class Node<float>;
template class Node<double>;
template class GradientFinalListener<float>;
template class GradientFinalListener<double>;
template std::vector<Tensor<float>> reachable_leaves(const Tensor<float>&);
template std::vector<Tensor<double>> reachable_leaves(const Tensor<double>&);
template std::vector<ReachedLeaf<float>> reached_leaves(const Tensor<float>&);
template std::vector<ReachedLeaf<double>> reached_leaves(const Tensor<double>&);

}  // namespace xgrad
