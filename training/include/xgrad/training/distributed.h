#pragma once
// Data parallelism over MPI, as PyTorch's DistributedDataParallel, Horovod and Marian do it:
// every rank (process) holds the whole model, computes gradients on its share of each global
// batch, and the gradients are summed across ranks with an allreduce, so that every rank
// takes the same optimizer step.
//
//   distributed::ProcessGroup& group = distributed::world();    // MPI_Init at the first call
//   distributed::broadcast_state(model, group);                 // rank 0's weights everywhere
//   distributed::GradientReducer reducer(model.parameters(), group);
//   ... each rank: loss over its share, scaled to the global batch; loss.backward();
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

#include "xgrad/framework/tensor.h"
#include "xgrad/layers/module.h"

namespace xgrad::distributed {

// The processes of a job, MPI_COMM_WORLD's. Collectives must be called by every rank in the
// same order, from the thread that first called world(). An MPI failure (a rank that died)
// ends the job through MPI's own error handler, which mpirun reports naming the rank.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
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
// parallelism"). The sums run after backward, not overlapped with it (measured there too).
class GradientReducer {
 public:
  static constexpr std::size_t default_bucket_bytes = std::size_t{25} << 20;

  // The parameters must outlive the reducer; std::invalid_argument for a bucket_bytes of 0.
  GradientReducer(std::vector<Tensor<float>> parameters, ProcessGroup& group,
                  std::size_t bucket_bytes = default_bucket_bytes);

  // Replaces every parameter's gradient by the sum over the ranks (a parameter that has no
  // gradient on a rank counts as zeros there). Then a step function that scaled each rank's
  // loss by its share of the global batch has the gradient of the global batch's loss.
  void sum();

  std::size_t buckets() const noexcept { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<std::size_t> members;  // indices into parameters_
    std::size_t floats = 0;
  };
  std::vector<Tensor<float>> parameters_;
  ProcessGroup& group_;
  std::size_t bucket_floats_ = 0;
  std::vector<Bucket> buckets_;
  std::vector<float> packed_;  // one bucket of several tensors at a time
};

}  // namespace xgrad::distributed
