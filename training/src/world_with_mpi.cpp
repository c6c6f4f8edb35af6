// world() over MPI, in a build that found it.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "xgrad/training/distributed.h"
#include "process_group_single.h"

namespace xgrad::distributed {
namespace {

// Collectives of more elements than an int counts go in slices.
constexpr std::size_t max_count = std::numeric_limits<int>::max();

class MpiGroup final : public ProcessGroup {
 public:
  MpiGroup() {
    // Serialized: a GradientReducer that overlaps sums its buckets on a thread of its own.
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    serialized_ = provided >= MPI_THREAD_SERIALIZED;
    // A failing collective ends the whole job (MPI_ERRORS_ARE_FATAL, the default, said once
    // more): no rank waits for one that died.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    std::atexit(finalize);
  }
  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }
  bool threads_may_take_turns() const noexcept override { return serialized_; }

  void broadcast(std::span<float> values, int root) override {
    for_slices(values, [&](float* data, int count) { MPI_Bcast(data, count, MPI_FLOAT, root, MPI_COMM_WORLD); });
  }
  void sum(std::span<float> values) override {
    for_slices(values, [](float* data, int count) {
      MPI_Allreduce(MPI_IN_PLACE, data, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
  }
  void sum(std::span<double> values) override {
    for_slices(values, [](double* data, int count) {
      MPI_Allreduce(MPI_IN_PLACE, data, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    });
  }
  [[noreturn]] void abort(int exit_code) override {
    std::fflush(nullptr);  // what the rank printed before it failed
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; the compiler cannot know
  }

 private:
  template <class T, class Call>
  static void for_slices(std::span<T> values, Call&& call) {
    for (std::size_t first = 0; first < values.size(); first += max_count) {
      call(values.data() + first, static_cast<int>(std::min(max_count, values.size() - first)));
    }
  }
  static void finalize() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank_ = 0, size_ = 1;
  bool serialized_ = false;
};

// Whether mpirun (Open MPI, or a PMI launcher such as MPICH's or Slurm's) started this
// process: a program run by itself stays one process and never starts MPI.
bool launched_by_mpi() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) {
    if (std::getenv(variable) != nullptr) return true;
  }
  return false;
}

}  // namespace

ProcessGroup& world() {
  if (!launched_by_mpi()) return single_process();
  static MpiGroup group;
  return group;
}

}  // namespace xgrad::distributed
