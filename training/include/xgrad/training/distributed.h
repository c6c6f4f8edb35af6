#pragma once
// Data parallelism over MPI, as PyTorch's DistributedDataParallel, Horovod and Marian do it:
// every rank (process) holds the whole model, computes gradients on its share of each global
// batch, and the gradients are summed across ranks with an allreduce, so that every rank
// takes the same optimizer step.
//
//   distributed::ProcessGroup& group = distributed::world();    // MPI_Init at the first call
//   distributed::broadcast_state(model, group);                 // rank 0's weights everywhere
//   distributed::GradientReducer reducer(model.parameters(), group);
//   ... each rank: loss over its share, scaled to the global batch;
//   reducer.prepare_for_backward();                             // sum buckets while backward goes on
//   loss.backward();
//   reducer.sum();                                               // now every rank holds the global gradient
//   optimizer.step();
//
// A build of xgrad without MPI (it was not found), or a program not started by mpirun, is a
// world of one process: rank 0 of size 1, whose collectives leave the values as they are.
// Only these sources see <mpi.h>; a program includes this header alone.

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "xgrad/framework/autograd.h"
#include "xgrad/framework/tensor.h"
#include "xgrad/layers/module.h"

namespace xgrad::distributed {

// The processes of a job, MPI_COMM_WORLD's. Collectives must be called by every rank in the
// same order, one at a time: from the thread that first called world(), or, where
// threads_may_take_turns(), from any thread while no other calls one. An MPI failure (a rank
// that died) ends the job through MPI's own error handler, which mpirun reports naming the rank.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
  // Whether collectives may come from another thread than the first (MPI_THREAD_SERIALIZED).
  virtual bool threads_may_take_turns() const noexcept = 0;
  // `values` of rank `root` copied into every rank's `values` (of the same length).
  virtual void broadcast(std::span<float> values, int root) = 0;
  // Every rank's `values` replaced by the element-wise sum over the ranks.
  virtual void sum(std::span<float> values) = 0;
  virtual void sum(std::span<double> values) = 0;
  // Ends every rank of the job with `exit_code` (MPI_Abort): what a rank that fails must do,
  // since the others would wait for it in their next collective. One process just exits.
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

// The job's processes: under mpirun, MPI is initialised at the first call (and finalised at
// exit); otherwise, or without MPI in the build, a group of one process.
ProcessGroup& world();

// Every tensor of `module`'s state_dict (parameters and buffers such as batch norm's running
// statistics) copied from rank `root` to all ranks, so that every rank starts from the same
// weights whatever its seed.
void broadcast_state(const nn::Module<float>& module, ProcessGroup& group, int root = 0);

// Sums the gradients of parameters across ranks, packed into buckets of about
// `bucket_bytes`: one allreduce a bucket instead of one a tensor (PyTorch's DDP buckets at
// 25 MB by default); a larger tensor is summed in place, a bucket's worth at a time. Each
// allreduce is MPI's blocking one, which Open MPI tunes for the message size and the
// transport: its non-blocking one (libnbc), started for every bucket and awaited together,
// summed 82 MB between two ranks of one machine 5-8x slower (bench/README.md, "Data
// parallelism").
//
// Buckets are filled in the reverse order of the parameters, roughly the order in which
// backward finishes their gradients (as DDP does). With `overlap`, prepare_for_backward()
// before a backward makes each bucket's allreduce start, on a thread of the reducer's, as
// soon as that backward has made the bucket's gradients final, while it goes on with the
// others; sum() then waits for the last. The buckets start in their order on every rank,
// whatever order the ranks' graphs finish them in, so that the collectives match.
class GradientReducer {
 public:
  static constexpr std::size_t default_bucket_bytes = std::size_t{25} << 20;

  struct Options {
    std::size_t bucket_bytes = default_bucket_bytes;
    // Overlap the allreduces with backward (measured: bench/README.md, "Data parallelism");
    // where the group cannot take collectives from a second thread (MPI without
    // MPI_THREAD_SERIALIZED), they run in sum() instead.
    bool overlap = true;
  };

  // The parameters must outlive the reducer; std::invalid_argument for a bucket_bytes of 0.
  GradientReducer(std::vector<Tensor<float>> parameters, ProcessGroup& group, Options options);
  GradientReducer(std::vector<Tensor<float>> parameters, ProcessGroup& group)
      : GradientReducer(std::move(parameters), group, Options{}) {}
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // The next backward() on this thread is the last before sum(): with overlap, the buckets
  // are summed as its gradients become final. Without, nothing. std::logic_error when called
  // again after that backward has started buckets, before sum().
  void prepare_for_backward();

  // Replaces every parameter's gradient by the sum over the ranks (a parameter that has no
  // gradient on a rank counts as zeros there). Then a step function that scaled each rank's
  // loss by its share of the global batch has the gradient of the global batch's loss.
  void sum();

  std::size_t buckets() const noexcept { return buckets_.size(); }
  bool overlaps() const noexcept { return communication_ != nullptr; }

 private:
  struct Bucket {
    std::vector<std::size_t> members;  // indices into parameters_
    std::size_t floats = 0;
    std::vector<float> packed;  // with overlap, a bucket of several tensors holds its own
  };
  struct Communication;

  bool summed_in_place(const Bucket& bucket) const noexcept { return bucket.members.size() == 1; }
  // The parameter's gradient became final: starts every bucket now complete, in order.
  void gradient_final(std::size_t parameter);
  // Packs a bucket (or gives its one tensor a gradient) and sums it, here or on the thread.
  void start(std::size_t bucket);
  void reduce(Bucket& bucket);
  // The summed gradients back into the parameters that some rank (`holders`) had one for.
  void unpack(Bucket& bucket, const std::vector<float>& holders);
  std::span<float> packed(Bucket& bucket) noexcept;

  std::vector<Tensor<float>> parameters_;
  ProcessGroup& group_;
  std::size_t bucket_floats_ = 0;
  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;  // parameter -> bucket
  std::vector<float> shared_packing_;  // without overlap, one bucket of several tensors at a time
  // This step: whether each parameter had a gradient here when its bucket started, how many
  // members of each bucket are not final yet, and the next bucket to start.
  std::vector<float> had_gradient_;
  std::vector<std::size_t> waiting_;
  std::size_t next_bucket_ = 0;
  std::unique_ptr<GradientFinalListener<float>> listener_;
  std::unique_ptr<Communication> communication_;
};

}  // namespace xgrad::distributed
