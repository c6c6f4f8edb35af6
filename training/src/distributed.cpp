#include "xgrad/training/distributed.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>


namespace xgrad::distributed {

void broadcast_state(const nn::Module<float>& module, ProcessGroup& group, int root) {
  if (group.size() == 1) return;
  for (auto& [name, tensor] : module.state_dict()) {
    Array<float>& values = Tensor<float>(tensor).mutable_value();
    group.broadcast(std::span<float>(values.data(), values.size()), root);
  }
}

// The reducer's thread: it sums the buckets handed to it, one at a time, in order.
struct GradientReducer::Communication {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::size_t> queue;  // buckets to sum
  std::size_t unfinished = 0;     // queued or being summed
  bool stopping = false;
  std::exception_ptr failure;
  std::thread thread;  // last: it starts once the rest exists

  explicit Communication(GradientReducer& reducer) : thread([this, &reducer] { serve(reducer); }) {}

  void serve(GradientReducer& reducer) {
    std::unique_lock lock(mutex);
    while (true) {
      changed.wait(lock, [&] { return stopping || !queue.empty(); });
      if (stopping) return;
      const std::size_t bucket = queue.front();
      queue.pop_front();
      lock.unlock();
      std::exception_ptr error;
      try {
        reducer.reduce(reducer.buckets_[bucket]);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      if (error && !failure) failure = error;
      --unfinished;
      changed.notify_all();
    }
  }
  void hand_over(std::size_t bucket) {
    {
      const std::lock_guard lock(mutex);
      queue.push_back(bucket);
      ++unfinished;
    }
    changed.notify_all();
  }
  void wait_for_all() {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return unfinished == 0; });
    if (failure) std::rethrow_exception(std::exchange(failure, nullptr));
  }
  // What was handed over and not started is dropped; a sum under way ends first (the other
  // ranks, which start the same buckets in the same order, complete it with this one), so that
  // a rank unwinding from an error does not wait on collectives no rank will join.
  ~Communication() {
    {
      const std::lock_guard lock(mutex);
      stopping = true;
      queue.clear();
    }
    changed.notify_all();
    thread.join();
  }
};

GradientReducer::GradientReducer(std::vector<Tensor<float>> parameters, ProcessGroup& group, Options options)
    : parameters_(std::move(parameters)), group_(group) {
  if (options.bucket_bytes == 0) throw std::invalid_argument("GradientReducer: bucket_bytes must be at least 1");
  bucket_floats_ = std::max<std::size_t>(1, options.bucket_bytes / sizeof(float));
  // The last parameters first: backward makes their gradients final first. A tensor larger
  // than a bucket makes a bucket of its own.
  bucket_of_.resize(parameters_.size());
  for (std::size_t i = parameters_.size(); i-- > 0;) {
    const std::size_t n = parameters_[i].size();
    if (buckets_.empty() || buckets_.back().floats + n > bucket_floats_) buckets_.emplace_back();
    buckets_.back().members.push_back(i);
    buckets_.back().floats += n;
    bucket_of_[i] = buckets_.size() - 1;
  }
  const bool overlap = options.overlap && group_.size() > 1 && group_.threads_may_take_turns();
  for (Bucket& bucket : buckets_) {
    if (summed_in_place(bucket)) continue;
    if (overlap) {
      bucket.packed.resize(bucket.floats);
    } else {
      shared_packing_.resize(std::max(shared_packing_.size(), bucket.floats));
    }
  }
  had_gradient_.resize(parameters_.size());
  if (overlap) communication_ = std::make_unique<Communication>(*this);
}

GradientReducer::~GradientReducer() = default;

void GradientReducer::prepare_for_backward() {
  if (!communication_) return;
  if (listener_ && next_bucket_ > 0) {
    throw std::logic_error("GradientReducer: prepare_for_backward() again before sum(), after a backward started buckets");
  }
  listener_.reset();
  waiting_.clear();
  for (const Bucket& bucket : buckets_) waiting_.push_back(bucket.members.size());
  next_bucket_ = 0;
  // A frozen parameter (one that does not require grad) gets no gradient: final already.
  std::vector<Tensor<float>> listened;
  std::vector<std::size_t> frozen, index_of_listened;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    if (parameters_[i].requires_grad() && parameters_[i].is_leaf()) {
      listened.push_back(parameters_[i]);
      index_of_listened.push_back(i);
    } else {
      frozen.push_back(i);
    }
  }
  listener_ = std::make_unique<GradientFinalListener<float>>(
      listened, [this, index_of_listened](std::size_t k) { gradient_final(index_of_listened[k]); });
  for (std::size_t i : frozen) gradient_final(i);
}

void GradientReducer::gradient_final(std::size_t parameter) {
  --waiting_[bucket_of_[parameter]];
  while (next_bucket_ < buckets_.size() && waiting_[next_bucket_] == 0) start(next_bucket_++);
}

std::span<float> GradientReducer::packed(Bucket& bucket) noexcept {
  return communication_ ? std::span<float>(bucket.packed) : std::span<float>(shared_packing_.data(), bucket.floats);
}

void GradientReducer::start(std::size_t index) {
  Bucket& bucket = buckets_[index];
  if (summed_in_place(bucket)) {
    Tensor<float>& parameter = parameters_[bucket.members.front()];
    had_gradient_[bucket.members.front()] = parameter.has_grad() ? 1.0f : 0.0f;
    if (!parameter.has_grad()) parameter.impl().grad = Array<float>(xt::zeros<float>(parameter.shape()));
  } else {
    float* packing = packed(bucket).data();
    for (std::size_t i : bucket.members) {
      const Tensor<float>& parameter = parameters_[i];
      had_gradient_[i] = parameter.has_grad() ? 1.0f : 0.0f;
      if (parameter.has_grad()) {
        packing = std::copy(parameter.grad().begin(), parameter.grad().end(), packing);
      } else {
        packing = std::fill_n(packing, parameter.size(), 0.0f);
      }
    }
  }
  if (communication_) {
    communication_->hand_over(index);
  } else {
    reduce(bucket);
  }
}

void GradientReducer::reduce(Bucket& bucket) {
  if (!summed_in_place(bucket)) {
    group_.sum(packed(bucket));
    return;
  }
  // A bucket's worth at a time: MPI's allreduce takes a temporary buffer of the message's
  // size, which glibc maps afresh above 32 MB, and faulting those pages in made a 42 MB sum
  // take 125 ms where two of 21 MB take 10 (bench/README.md, "Data parallelism").
  Tensor<float>& parameter = parameters_[bucket.members.front()];
  const std::span<float> gradient(parameter.mutable_grad().data(), parameter.size());
  for (std::size_t first = 0; first < gradient.size(); first += bucket_floats_) {
    group_.sum(gradient.subspan(first, std::min(bucket_floats_, gradient.size() - first)));
  }
}

void GradientReducer::sum() {
  if (group_.size() == 1) return;
  // Which parameters held a gradient on some rank: those get one everywhere, as a single
  // process that saw the whole batch would have; the others stay without.
  std::vector<float> holders;
  const auto find_holders = [&] {
    holders = had_gradient_;
    group_.sum(holders);
  };
  if (communication_) {
    if (!listener_) next_bucket_ = 0;  // no prepare_for_backward(): every bucket starts here
    listener_.reset();  // the buckets that backward left (with parameters it did not reach)
    while (next_bucket_ < buckets_.size()) start(next_bucket_++);
    communication_->wait_for_all();
    find_holders();
    for (Bucket& bucket : buckets_) unpack(bucket, holders);
    return;
  }
  for (std::size_t i = 0; i < parameters_.size(); ++i) had_gradient_[i] = parameters_[i].has_grad() ? 1.0f : 0.0f;
  find_holders();
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    start(b);
    unpack(buckets_[b], holders);  // before the next bucket reuses the packing
  }
}

void GradientReducer::unpack(Bucket& bucket, const std::vector<float>& holders) {
  if (summed_in_place(bucket)) {
    if (holders[bucket.members.front()] == 0) parameters_[bucket.members.front()].impl().grad.reset();
    return;
  }
  const float* summed = packed(bucket).data();
  for (std::size_t i : bucket.members) {
    Tensor<float>& parameter = parameters_[i];
    const std::size_t n = parameter.size();
    if (holders[i] > 0) {
      if (!parameter.has_grad()) parameter.impl().grad = Array<float>::from_shape(parameter.shape());
      std::copy(summed, summed + n, parameter.mutable_grad().begin());
    }
    summed += n;
  }
}

}  // namespace xgrad::distributed
