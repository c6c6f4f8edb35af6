#pragma once
// The --out directory of a training run, guarded as git guards a repository: one run per
// directory at a time, no file overwritten that a run of ours did not write, nothing written
// before every check has passed, and no --resume that would continue something else.
//
// Beside its model files a run keeps two of its own: run.lock, locked (flock) for as long as
// the run lives and holding its pid, and run.json, which marks the directory as a run's and
// records the model flags the run started with.

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cli.h"
#include "data_checks.h"

namespace xgrad::cli {

// The file of a run's --out directory that holds everything --resume needs
// (training::save_checkpoint); its presence is what makes a directory hold a run.
inline constexpr const char* checkpoint_file_name = "checkpoint.safetensors";
inline constexpr const char* log_file_name = "log.csv";
// The folder of the weights after each of the last epochs (--keep-epochs), for `average --last`.
inline constexpr const char* epochs_folder_name = "epochs";

// A command-line flag that decides the model's shape or vocabulary (--hidden, --cell,
// --min-freq, ...) with its value as given.
struct ModelFlag {
  std::string name;
  std::string value;
};

// "--emb 8 --cell gru": the flags as they would be typed.
std::string joined_flags(const std::vector<ModelFlag>& flags);

class RunDirectory {
 public:
  // Checks `dir` (the value of --out) without writing anything into it; `model_files` are
  // the names of the model's files (models/model_directory.h) a run writes there beside its
  // checkpoint and log, `model_flags` the flags as given now.
  // UsageError (naming the directory) when it is not a directory; when another training run
  // holds it (naming that run's pid); when it holds files that are not a run's of ours
  // (naming them); when it holds a run (checkpoint_file_name) and `resume` is false, or none
  // and `resume` is true; and when resuming with model flags other than the run's (naming
  // each flag with the saved and the given value).
  // Under mpirun, rank 0 alone checks, claims and writes the directory (writes() is false on
  // the others, which only read a resumed run's model files from it).
  RunDirectory(std::filesystem::path dir, std::vector<std::string> model_files, bool resume,
               std::vector<ModelFlag> model_flags);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  // Makes the directory this process's: creates it, takes the lock (UsageError naming the
  // other run's pid if one took it since), writes the pid, removes what a killed run left
  // mid-write and, for a new run, records run.json. Call when every other check has passed.
  void claim();

  const std::filesystem::path& path() const noexcept { return dir_; }
  // Whether this process writes the run's files: rank 0 of a data-parallel job, or a process alone.
  bool writes() const noexcept { return writes_; }
  std::filesystem::path file(const std::string& name) const { return dir_ / name; }
  // Everything --resume needs (training::save_checkpoint).
  std::filesystem::path checkpoint() const { return file(checkpoint_file_name); }
  // The CSV log of the run's epochs.
  std::filesystem::path log() const { return file(log_file_name); }
  // The weights kept after the last epochs (training::epoch_weights_file names them).
  std::filesystem::path epochs() const { return file(epochs_folder_name); }

 private:
  std::filesystem::path lock_file() const;
  std::filesystem::path record_file() const;
  // Takes the lock on lock_fd_ without waiting; UsageError naming the holder when it is taken.
  void lock();
  void refuse_foreign_files() const;
  void refuse_changed_model_flags() const;

  std::filesystem::path dir_;
  std::vector<std::string> model_files_;
  bool resume_;
  std::vector<ModelFlag> model_flags_;
  bool writes_;
  int lock_fd_ = -1;
};

// The model built from options the flags gave. Options that do not fit together (heads that
// do not divide the size, dot attention between unequal sizes) are the command line's
// mistake: a UsageError naming the model flags.
template <class Build>
auto model_from_flags(const std::vector<ModelFlag>& flags, Build build) -> decltype(build()) {
  try {
    return build();
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("the model flags ") + joined_flags(flags) + " do not fit together: " + e.what());
  }
}

// A new run's model: `Model` aggregates `parts` (its vocabularies) and the network `build`
// makes (model_from_flags), named if memory runs out.
template <class Model, class Build, class... Parts>
std::unique_ptr<Model> new_model(const std::vector<ModelFlag>& flags, Build build, Parts&&... parts) {
  return building("the model", [&] {
    return std::unique_ptr<Model>(new Model{std::forward<Parts>(parts)..., model_from_flags(flags, build)});
  });
}

}  // namespace xgrad::cli
