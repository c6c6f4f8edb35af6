#pragma once
// Whole-file reads and crash-safe writes.

#include <string>
#include <string_view>

namespace xgrad {

// The bytes of `path`; file_error naming the path and the reason otherwise.
std::string read_file(const std::string& path);

// Replaces `path` with `contents` so that a crash at any moment leaves either the old file or
// the complete new one: the bytes go to a temporary file in the same directory, are flushed
// to disk, and the temporary is renamed over `path`.
void write_file_atomically(const std::string& path, std::string_view contents);

// Removes from `directory` the temporary files ("." + name + ".tmp-XXXXXX") that
// write_file_atomically leaves when a process is killed in the middle of a write. Call it
// only where no other process is writing into `directory`.
void remove_stale_temporaries(const std::string& directory);

}  // namespace xgrad
