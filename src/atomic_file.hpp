// Replacing a file so that readers see the old content or the new, never a torn mix.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace diskfault {

// Replaces `path` with `content`: writes a temporary file in the same directory, gives it `mode`
// (umask does not apply), fsyncs it, renames it over `path` and fsyncs the directory, so a crash
// or a concurrent reader sees either the old file or the whole new one. The temporary name starts
// with '.' and does not end in the target's suffix, so a directory watcher that picks files by
// suffix (node_exporter's textfile collector reads *.prom) never reads it half-written.
// Refuses (std::system_error, ELOOP) when `path` is a symbolic link: it is never written through
// nor replaced. Throws std::system_error naming the path on any other failure; the temporary file
// is removed then and `path` is left as it was.
void write_file_atomically(const std::string& path, std::string_view content, mode_t mode);

}  // namespace diskfault
