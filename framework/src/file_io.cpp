#include "xgrad/framework/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "xgrad/framework/errors.h"

namespace xgrad {
namespace {

std::string system_reason() { return std::strerror(errno); }

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

// A write goes first to a hidden sibling ".<name>.tmp-XXXXXX" (the rename then stays within
// one file system), where mkstemp replaces the X's; remove_stale_temporaries matches the same.
constexpr std::string_view temporary_marker = ".tmp-";
constexpr std::string_view mkstemp_template = "XXXXXX";

std::string temporary_prefix(const std::filesystem::path& target) {
  std::string prefix = ".";  // appended, not operator+: GCC 12 warns falsely (-Wrestrict) on the latter
  prefix += target.filename().string();
  prefix += temporary_marker;
  return prefix;
}

// Writes all of `contents` to `fd`, retrying after signals; the failed step's name, or
// nullptr when everything was written (errno holds the reason).
const char* write_all(int fd, std::string_view contents) {
  std::size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return "writing";
    }
    written += static_cast<std::size_t>(n);
  }
  return nullptr;
}

// The file a chain of symbolic links ends at (which need not exist), or `path` itself: a
// write through a link must replace the link's target, not the link.
std::filesystem::path symlink_target(const std::filesystem::path& path) {
  constexpr int max_links = 40;  // as the kernel's ELOOP limit
  std::filesystem::path current = path;
  for (int links = 0; links < max_links; ++links) {
    std::error_code error;
    if (!std::filesystem::is_symlink(std::filesystem::symlink_status(current, error))) return current;
    const std::filesystem::path next = std::filesystem::read_symlink(current, error);
    if (error) throw file_error(detail::message(path.string(), ": cannot read the symbolic link (", error.message(), ")"));
    current = next.is_absolute() ? next : current.parent_path() / next;
  }
  throw file_error(detail::message(path.string(), ": too many levels of symbolic links"));
}

// A device or FIFO (/dev/null, /dev/stdout, a pipe) cannot be replaced by renaming a regular
// file over it, and must not be: it is opened and written like a shell redirection does.
void write_in_place(const std::string& path, std::string_view contents) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw file_error(detail::message(path, ": cannot open for writing (", system_reason(), ")"));
  if (const char* step = write_all(fd, contents)) {
    const std::string reason = system_reason();
    ::close(fd);
    throw file_error(detail::message(path, ": ", step, " failed (", reason, ")"));
  }
  if (::close(fd) != 0) throw file_error(detail::message(path, ": closing failed (", system_reason(), ")"));
}

void sync_directory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.empty() ? "." : directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // the rename is done; a directory we cannot open cannot be synced either
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

InputFile::InputFile(const std::string& path, std::size_t max_bytes) : path_(path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) throw file_error(detail::message(path, ": cannot open for reading (", system_reason(), ")"));
  struct stat status {};
  if (::fstat(fd_, &status) != 0) {
    const std::string reason = system_reason();
    ::close(fd_);
    throw file_error(detail::message(path, ": cannot inspect (", reason, ")"));
  }
  if (!S_ISREG(status.st_mode)) {
    ::close(fd_);
    throw file_error(detail::message(path, ": not a regular file (", file_kind(status.st_mode),
                                     "); only regular files are read, so that a device or pipe cannot be read without end"));
  }
  size_ = static_cast<std::size_t>(status.st_size);
  if (size_ > max_bytes) {
    ::close(fd_);
    throw file_error(detail::message(path, ": ", size_, " bytes exceeds the limit of ", max_bytes, " bytes for this file"));
  }
}

InputFile::~InputFile() { ::close(fd_); }

void InputFile::read_into(std::string& out, std::size_t count) {
  const std::size_t start = out.size();
  out.resize(start + count);
  std::size_t done = 0;
  while (done < count) {
    const ssize_t n = ::read(fd_, out.data() + start + done, count - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw file_error(detail::message(path_, ": read failed (", system_reason(), ")"));
    if (n == 0) throw file_error(detail::message(path_, ": ended after ", start + done, " bytes; it changed while being read"));
    done += static_cast<std::size_t>(n);
  }
}

std::string read_file(const std::string& path, std::size_t max_bytes) {
  InputFile file(path, max_bytes);
  std::string bytes;
  file.read_into(bytes, file.size());
  return bytes;
}

bool is_atomic_write_temporary(const std::string& file_name) {
  const std::size_t marker = file_name.rfind(temporary_marker);
  return file_name.starts_with('.') && marker != std::string::npos && marker > 1 &&
         file_name.size() == marker + temporary_marker.size() + mkstemp_template.size();
}

void remove_stale_temporaries(const std::string& directory) {
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ignored)) {
    if (is_atomic_write_temporary(entry.path().filename().string())) std::filesystem::remove(entry.path(), ignored);
  }
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  const std::filesystem::path target = symlink_target(path);
  struct stat existing {};
  if (::stat(target.c_str(), &existing) == 0 && !S_ISREG(existing.st_mode)) {
    if (S_ISDIR(existing.st_mode)) throw file_error(detail::message(path, ": is a directory, not a file"));
    write_in_place(path, contents);
    return;
  }
  std::string temporary = (target.parent_path() / (temporary_prefix(target) + std::string(mkstemp_template))).string();
  const int fd = ::mkstemp(temporary.data());
  if (fd < 0) throw file_error(detail::message(path, ": cannot create a temporary file beside it (", system_reason(), ")"));
  auto fail = [&](const std::string& step) {
    const std::string reason = system_reason();
    ::close(fd);
    ::unlink(temporary.c_str());
    throw file_error(detail::message(path, ": ", step, " failed (", reason, "); the previous file is unchanged"));
  };
  if (const char* step = write_all(fd, contents)) fail(step);
  if (::fchmod(fd, 0644) != 0) fail("setting permissions");
  if (::fsync(fd) != 0) fail("flushing to disk");
  if (::close(fd) != 0) {
    const std::string reason = system_reason();
    ::unlink(temporary.c_str());
    throw file_error(detail::message(path, ": closing failed (", reason, "); the previous file is unchanged"));
  }
  if (std::rename(temporary.c_str(), target.c_str()) != 0) {
    const std::string reason = system_reason();
    ::unlink(temporary.c_str());
    throw file_error(detail::message(path, ": renaming the finished file into place failed (", reason, ")"));
  }
  sync_directory(target.parent_path());
}

}  // namespace xgrad
