// The process group of one process: rank 0 of 1, whose collectives leave the values as they are.
#include "process_group_single.h"

#include <cstdlib>

namespace xgrad::distributed {
namespace {

class SingleProcess final : public ProcessGroup {
 public:
  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return 1; }
  bool threads_may_take_turns() const noexcept override { return true; }
  void broadcast(std::span<float>, int) override {}
  void sum(std::span<float>) override {}
  void sum(std::span<double>) override {}
  [[noreturn]] void abort(int exit_code) override { std::exit(exit_code); }
};

}  // namespace

ProcessGroup& single_process() {
  static SingleProcess group;
  return group;
}

}  // namespace xgrad::distributed
