#pragma once
// Whole-file reads and crash-safe writes.

#include <string>
#include <string_view>

namespace xgrad {

// The bytes of `path`; file_error naming the path and the reason otherwise.
std::string read_file(const std::string& path);

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
