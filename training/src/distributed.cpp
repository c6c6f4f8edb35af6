#include "xgrad/training/distributed.h"

#include <algorithm>
#include <stdexcept>


namespace xgrad::distributed {

void broadcast_state(const nn::Module<float>& module, ProcessGroup& group, int root) {
  if (group.size() == 1) return;
  for (auto& [name, tensor] : module.state_dict()) {
    Array<float>& values = Tensor<float>(tensor).mutable_value();
    group.broadcast(std::span<float>(values.data(), values.size()), root);
  }
}

GradientReducer::GradientReducer(std::vector<Tensor<float>> parameters, ProcessGroup& group, std::size_t bucket_bytes)
    : parameters_(std::move(parameters)), group_(group) {
  if (bucket_bytes == 0) throw std::invalid_argument("GradientReducer: bucket_bytes must be at least 1");
  bucket_floats_ = std::max<std::size_t>(1, bucket_bytes / sizeof(float));
  // In the order given; a tensor larger than a bucket makes a bucket of its own.
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const std::size_t n = parameters_[i].size();
    if (buckets_.empty() || buckets_.back().floats + n > bucket_floats_) buckets_.emplace_back();
    buckets_.back().members.push_back(i);
    buckets_.back().floats += n;
  }
  for (const Bucket& bucket : buckets_) {
    if (bucket.members.size() > 1) packed_.resize(std::max(packed_.size(), bucket.floats));
  }
}

void GradientReducer::sum() {
  if (group_.size() == 1) return;
  // Which parameters hold a gradient on some rank: those get one everywhere, as a single
  // process that saw the whole batch would have; the others stay without.
  std::vector<float> holders(parameters_.size());
  for (std::size_t i = 0; i < parameters_.size(); ++i) holders[i] = parameters_[i].has_grad() ? 1.0f : 0.0f;
  group_.sum(holders);
  for (const Bucket& bucket : buckets_) {
    if (bucket.members.size() == 1) {  // a tensor of a bucket's size or more: summed where it is
      Tensor<float>& parameter = parameters_[bucket.members.front()];
      if (holders[bucket.members.front()] == 0) continue;  // no rank has a gradient for it
      if (!parameter.has_grad()) parameter.impl().grad = Array<float>(xt::zeros<float>(parameter.shape()));
      // A bucket's worth at a time: MPI's allreduce takes a temporary buffer of the message's
      // size, which glibc maps afresh above 32 MB, and faulting those pages in made a 42 MB
      // sum take 125 ms where two of 21 MB take 10 (bench/README.md, "Data parallelism").
      const std::span<float> gradient(parameter.mutable_grad().data(), parameter.size());
      for (std::size_t first = 0; first < gradient.size(); first += bucket_floats_) {
        group_.sum(gradient.subspan(first, std::min(bucket_floats_, gradient.size() - first)));
      }
      continue;
    }
    float* packed = packed_.data();
    for (std::size_t i : bucket.members) {
      const Tensor<float>& parameter = parameters_[i];
      if (parameter.has_grad()) {
        packed = std::copy(parameter.grad().begin(), parameter.grad().end(), packed);
      } else {
        packed = std::fill_n(packed, parameter.size(), 0.0f);
      }
    }
    group_.sum(std::span<float>(packed_.data(), bucket.floats));
    const float* summed = packed_.data();
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
}

}  // namespace xgrad::distributed
