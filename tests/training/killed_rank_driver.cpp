// A data-parallel training run in which one rank dies: run as `mpirun -np 2 killed_rank_driver
// train DIR`, rank 1 kills itself (SIGKILL) at its 25th step, after rank 0 has checkpointed
// two epochs of 10 steps into DIR; with `fail` instead of `train`, rank 1's backward throws
// at that step instead, after the reducer has started summing the last layer's gradient, and
// the rank ends the job as the programs do (it prints the error, then MPI_Abort).
// `killed_rank_driver check DIR`, as one process, then loads that checkpoint and prints the
// step it holds. check_killed_rank.sh runs them.
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <xgrad/train.h>

using namespace xgrad;

namespace {

struct Model : nn::Module<float> {
  nn::Linear<float> first{{.in_features = 2, .out_features = 2}};
  nn::Linear<float> last{{.in_features = 2, .out_features = 1}};
  Model() {
    register_module("first", first);
    register_module("last", last);
  }
};

struct Run {
  Model model;
  optim::SGD<float> optimizer{model.named_parameters(), {.lr = 0.01}};
};

// x itself, whose backward throws when `fail` is set.
Tensor<float> failing_identity(const Tensor<float>& x, const bool& fail) {
  return record<float>("failing_identity", Array<float>(x.value()), {x}, [&fail](Node<float>& node) {
    if (fail) throw std::runtime_error("rank 1's backward failed on purpose");
    node.input_grad(0) += node.output_grad();
  }, reads_no_values());
}

int train(const std::filesystem::path& dir, bool throw_instead) {
  distributed::ProcessGroup& group = distributed::world();
  manual_seed(3);
  Run run;
  training::TrainerOptions options{.epochs = 100};
  options.checkpoint = dir / "checkpoint.safetensors";
  options.report = nullptr;
  options.progress = nullptr;
  options.group = &group;
  options.bucket_bytes = sizeof(float);  // a bucket a tensor: the last layer's start before the throw
  training::Trainer trainer(run.model, run.optimizer, options);
  std::size_t calls = 0;
  bool fail = false;
  trainer.fit([](Generator&) { return std::vector<int>(10, 0); },
              [&](int) {
                if (++calls == 25 && group.rank() == 1) {
                  if (!throw_instead) std::raise(SIGKILL);
                  fail = true;
                }
                const Tensor<float> x = Tensor<float>::ones({1, 2});
                const Tensor<float> y = run.model.last(failing_identity(run.model.first(x), fail));
                return training::StepOutput{sum(y) * (1.0f / static_cast<float>(group.size())), 1};
              });
  return 0;  // not reached: the job ends when rank 1 dies
}

int check(const std::filesystem::path& dir) {
  Run run;
  const training::TrainingProgress progress =
      training::load_checkpoint(dir / "checkpoint.safetensors", run.model, run.optimizer, {});
  std::printf("checkpoint at step %zu, epoch %zu\n", progress.steps, progress.epoch);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: killed_rank_driver train|fail|check DIR\n");
    return 2;
  }
  const std::string mode = argv[1];
  try {
    return mode == "check" ? check(argv[2]) : train(argv[2], mode == "fail");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "killed_rank_driver: %s\n", e.what());
    if (mode == "check") return 1;
    distributed::world().abort(1);
  }
}
