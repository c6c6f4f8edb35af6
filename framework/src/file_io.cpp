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

void remove_stale_temporaries(const std::string& directory) {
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ignored)) {
    const std::string name = entry.path().filename().string();
    const std::size_t marker = name.rfind(temporary_marker);
    if (name.starts_with('.') && marker != std::string::npos && marker > 1 &&
        name.size() == marker + temporary_marker.size() + mkstemp_template.size()) {
      std::filesystem::remove(entry.path(), ignored);
    }
  }
}

void write_file_atomically(const std::string& path, std::string_view contents) {
  const std::filesystem::path target(path);
  std::string temporary = (target.parent_path() / (temporary_prefix(target) + std::string(mkstemp_template))).string();
  const int fd = ::mkstemp(temporary.data());
  if (fd < 0) throw file_error(detail::message(path, ": cannot create a temporary file beside it (", system_reason(), ")"));
  auto fail = [&](const char* step) {
    const std::string reason = system_reason();
    ::close(fd);
    ::unlink(temporary.c_str());
    throw file_error(detail::message(path, ": ", step, " failed (", reason, "); the previous file is unchanged"));
  };
  std::size_t written = 0;
  while (written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) fail("setting permissions");
  if (::fsync(fd) != 0) fail("flushing to disk");
  if (::close(fd) != 0) {
    const std::string reason = system_reason();
    ::unlink(temporary.c_str());
    throw file_error(detail::message(path, ": closing failed (", reason, "); the previous file is unchanged"));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = system_reason();
    ::unlink(temporary.c_str());
    throw file_error(detail::message(path, ": renaming the finished file into place failed (", reason, ")"));
  }
  sync_directory(target.parent_path());
}

}  // namespace xgrad
