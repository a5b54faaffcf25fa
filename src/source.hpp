// Log sources: a file, standard input or the running kernel's /dev/kmsg, made seekable for reading.
#pragma once

#include <sys/types.h>

#include <string>

#include "file_descriptor.hpp"

namespace diskfault {

// A log opened for random access. `name` is what the user called it ("-" for stdin,
// "/dev/kmsg" for the live log); `size` is fixed at open time, so bytes appended later are
// not read.
struct Source {
  std::string name;
  FileDescriptor fd;
  off_t size = 0;
  bool live_kernel_log = false;  // read from /dev/kmsg (records in kmsg format)
};

// The name that stands for the running kernel's log.
inline constexpr const char* kKernelLogPath = "/dev/kmsg";

// Opens `path` ("-" is stdin). A regular file is used in place; anything that cannot seek (a
// pipe, a terminal) is first copied to an unlinked temporary file, as GNU tac does, so it can be
// read backwards like a file. /dev/kmsg is read record by record without blocking. Throws
// std::system_error naming the path when it cannot be opened or read (a directory included).
Source open_source(const std::string& path);

}  // namespace diskfault
