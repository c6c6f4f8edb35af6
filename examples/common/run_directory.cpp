#include "run_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>
#include <xgrad/framework/errors.h>
#include <xgrad/framework/file_io.h>
#include <xgrad/training/distributed.h>

namespace xgrad::cli {
namespace {

namespace fs = std::filesystem;

const char* const lock_name = "run.lock";
const char* const record_name = "run.json";
const char* const record_format = "xgrad-run";

std::string listed(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

std::string system_reason() { return std::strerror(errno); }

}  // namespace

std::string joined_flags(const std::vector<ModelFlag>& flags) {
  std::string text;
  for (const ModelFlag& flag : flags) text += (text.empty() ? "" : " ") + flag.name + " " + flag.value;
  return text;
}

RunDirectory::RunDirectory(fs::path dir, std::vector<std::string> model_files, bool resume, std::vector<ModelFlag> model_flags)
    : dir_(std::move(dir)),
      model_files_(std::move(model_files)),
      resume_(resume),
      model_flags_(std::move(model_flags)),
      writes_(distributed::world().rank() == 0) {
  model_files_.insert(model_files_.end(), {checkpoint_file_name, log_file_name, epochs_folder_name});
  if (!writes_) return;  // rank 0 checks, and ends the job if a check fails
  const std::string out = "--out " + dir_.string();  // as messages name it
  std::error_code error;
  const fs::file_status status = fs::status(dir_, error);
  if (!fs::exists(status)) {
    if (resume_) throw UsageError("--resume: " + out + " does not exist, so there is no run to continue");
    return;
  }
  if (!fs::is_directory(status)) throw UsageError(out + " exists and is not a directory");
  if (fs::exists(lock_file())) {
    lock_fd_ = ::open(lock_file().c_str(), O_RDWR | O_CLOEXEC);
    if (lock_fd_ < 0) throw file_error(lock_file().string() + ": cannot open the run's lock (" + system_reason() + ")");
    lock();
  }
  refuse_foreign_files();
  const bool holds_run = fs::exists(dir_ / checkpoint_file_name);
  if (holds_run && !resume_) {
    throw UsageError(out + " already holds a training run; pass --resume to continue it or choose another directory");
  }
  if (!holds_run && resume_) {
    throw UsageError("--resume: " + out + " holds no training run to continue (no " + checkpoint_file_name + ")");
  }
  if (resume_) refuse_changed_model_flags();
}

RunDirectory::~RunDirectory() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock; the file stays, as a lock file must
}

fs::path RunDirectory::lock_file() const { return dir_ / lock_name; }
fs::path RunDirectory::record_file() const { return dir_ / record_name; }

void RunDirectory::lock() {
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) return;
  if (errno != EWOULDBLOCK) throw file_error(lock_file().string() + ": cannot lock (" + system_reason() + ")");
  std::string holder = read_file(lock_file().string());
  holder.erase(std::remove(holder.begin(), holder.end(), '\n'), holder.end());
  throw UsageError("--out " + dir_.string() + " is in use by another training run (pid " +
                   (holder.empty() ? "unknown" : holder) + "); wait for it to end or choose another directory");
}

// Without run.json nothing in the directory is known to be ours, not even files with our
// names: a user's own config.json or model.safetensors must not be overwritten.
void RunDirectory::refuse_foreign_files() const {
  std::set<std::string> ours{lock_name};
  if (fs::exists(record_file())) {
    ours.insert(record_name);
    ours.insert(model_files_.begin(), model_files_.end());
  }
  std::vector<std::string> foreign;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (!ours.contains(name) && !is_atomic_write_temporary(name)) foreign.push_back(name);
  }
  if (foreign.empty()) return;
  std::sort(foreign.begin(), foreign.end());
  throw UsageError("--out " + dir_.string() + " holds files that no training run of ours wrote (" +
                   listed(foreign) + "); choose another directory or move them away (nothing was written)");
}

void RunDirectory::refuse_changed_model_flags() const {
  nlohmann::json saved;
  try {
    saved = nlohmann::json::parse(read_file(record_file().string())).at("model_flags");
  } catch (const nlohmann::json::exception& e) {
    throw file_error(record_file().string() + ": not a run record (" + e.what() + ")");
  }
  std::vector<std::string> changed;
  for (const ModelFlag& flag : model_flags_) {
    if (!saved.contains(flag.name) || !saved[flag.name].is_string()) continue;  // not a flag of the saved run's version
    const std::string saved_value = saved[flag.name].get<std::string>();
    if (saved_value != flag.value) changed.push_back(flag.name + " " + saved_value + " (given " + flag.value + ")");
  }
  if (changed.empty()) return;
  throw UsageError("--resume: the run in --out " + dir_.string() + " was started with " + listed(changed) +
                   "; the model's shape cannot change, so give the saved values or start a new run elsewhere");
}

void RunDirectory::claim() {
  if (!writes_) return;
  fs::create_directories(dir_);
  if (lock_fd_ < 0) {
    lock_fd_ = ::open(lock_file().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) throw file_error(lock_file().string() + ": cannot create the run's lock (" + system_reason() + ")");
    lock();
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    throw file_error(lock_file().string() + ": writing the pid failed (" + system_reason() + ")");
  }
  remove_stale_temporaries(dir_.string());  // only this process writes here now
  if (resume_) return;
  nlohmann::json flags = nlohmann::json::object();
  for (const ModelFlag& flag : model_flags_) flags[flag.name] = flag.value;
  const nlohmann::json record{{"format", record_format}, {"version", 1}, {"model_flags", flags}};
  write_file_atomically(record_file().string(), record.dump(2) + "\n");
}

}  // namespace xgrad::cli
