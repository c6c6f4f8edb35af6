#pragma once
// Whole-file reads and crash-safe writes.

#include <cstddef>
#include <string>
#include <string_view>

namespace xgrad {

// What read_file accepts unless its caller names a smaller limit: larger than any corpus the
// examples train on, small enough that a mistaken path cannot exhaust memory.
inline constexpr std::size_t default_max_file_size = std::size_t{4} << 30;  // 4 GiB

// A regular file opened for reading, checked before anything is read: a FIFO, a device
// (a symlink to /dev/zero), a directory or a file over `max_bytes` is a file_error naming the
// path, the kind or the size and the limit, so that nothing is allocated for it.
class InputFile {
 public:
  InputFile(const std::string& path, std::size_t max_bytes);
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  const std::string& path() const noexcept { return path_; }
  std::size_t size() const noexcept { return size_; }
  // Appends the next `count` bytes to `out`; a file that ends sooner (it shrank while being
  // read) is a file_error.
  void read_into(std::string& out, std::size_t count);

 private:
  std::string path_;
  int fd_ = -1;
  std::size_t size_ = 0;
};

// The bytes of `path`, checked as InputFile checks it; file_error naming the path and the
// reason otherwise.
std::string read_file(const std::string& path, std::size_t max_bytes = default_max_file_size);

// Replaces `path` with `contents` so that a crash at any moment leaves either the old file or
// the complete new one: the bytes go to a temporary file in the same directory, are flushed
// to disk, and the temporary is renamed over `path`. A symbolic link stays a link: the file it
// points to is replaced. A device or FIFO (/dev/null, a named pipe) is opened and written,
// never replaced by a regular file; a directory is refused. Every failed step is a
// file_error naming `path` and the system's reason (a full disk, a closed pipe).
void write_file_atomically(const std::string& path, std::string_view contents);

// Whether `file_name` has the form of write_file_atomically's temporaries, which a killed
// process leaves behind ("." + name + ".tmp-XXXXXX").
bool is_atomic_write_temporary(const std::string& file_name);

// Removes from `directory` the temporary files (is_atomic_write_temporary) that
// write_file_atomically leaves when a process is killed in the middle of a write. Call it
// only where no other process is writing into `directory`.
void remove_stale_temporaries(const std::string& directory);

}  // namespace xgrad
