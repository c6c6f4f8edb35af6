// A data-parallel training run in which one rank dies: run as `mpirun -np 2 killed_rank_driver
// train DIR`, rank 1 kills itself (SIGKILL) at its 25th step, after rank 0 has checkpointed
// two epochs of 10 steps into DIR; `killed_rank_driver check DIR`, as one process, then loads
// that checkpoint and prints the step it holds. check_killed_rank.sh runs both.
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <xgrad/train.h>

using namespace xgrad;

namespace {

struct Run {
  nn::Linear<float> model{{.in_features = 2, .out_features = 1}};
  optim::SGD<float> optimizer{model.named_parameters(), {.lr = 0.01}};
};

int train(const std::filesystem::path& dir) {
  distributed::ProcessGroup& group = distributed::world();
  manual_seed(3);
  Run run;
  training::TrainerOptions options{.epochs = 100};
  options.checkpoint = dir / "checkpoint.safetensors";
  options.report = nullptr;
  options.progress = nullptr;
  options.group = &group;
  training::Trainer trainer(run.model, run.optimizer, options);
  std::size_t calls = 0;
  trainer.fit([](Generator&) { return std::vector<int>(10, 0); },
              [&](int) {
                if (++calls == 25 && group.rank() == 1) std::raise(SIGKILL);
                const Tensor<float> x = Tensor<float>::ones({1, 2});
                return training::StepOutput{sum(run.model(x)) * (1.0f / static_cast<float>(group.size())), 1};
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
    std::fprintf(stderr, "usage: killed_rank_driver train|check DIR\n");
    return 2;
  }
  try {
    return std::string(argv[1]) == "train" ? train(argv[2]) : check(argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "killed_rank_driver: %s\n", e.what());
    return 1;
  }
}
