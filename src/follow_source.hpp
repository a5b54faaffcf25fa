// Follow sources: the lines appended to a log file (tail -F) or to the kernel's log (/dev/kmsg).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "pipeline.hpp"

namespace diskfault {

// What a follow source pushes: lines in file order, and the end of each batch of lines read at
// once (a kmsg record with its continuation lines is one batch, so a stage that holds a record
// until its continuation lines have passed can let it go there).
struct SourceItem {
  enum class What { kLine, kBatchEnd };
  What what = What::kLine;
  // The line without its newline; a view into the source's buffer, valid during the push only.
  std::string_view text;
  // The line's number in the followed stream: the lines present at start-up are 1..N, and the
  // count goes on across rotations and truncations (the stream, not one file).
  std::uint64_t number = 0;
};

// Tells the operator what happened to the followed file (rotated, truncated, appeared).
using Notice = std::function<void(const std::string&)>;

// A log followed forward. Nothing here sleeps or polls on a timer: the owner waits with poll()
// on poll_fd() and calls pump() when it is readable.
class FollowSource {
 public:
  virtual ~FollowSource() = default;

  // The descriptor to wait on for POLLIN: an inotify descriptor, or /dev/kmsg itself.
  virtual int poll_fd() const = 0;

  // The complete lines present when the source was opened, for learning the current boot: a
  // descriptor to read them backwards with (valid until release_backlog()), their size in
  // bytes and their number. fd is -1 when there were none (the file did not exist yet).
  struct Backlog {
    int fd = -1;
    off_t size = 0;
    std::uint64_t lines = 0;
  };
  virtual Backlog backlog() const = 0;
  // Frees what backlog() kept for learning (kmsg keeps a copy of the ring buffer).
  virtual void release_backlog() {}

  // Reads everything appended since the last call and pushes it line by line, ending with a
  // kBatchEnd. Survives rotation by rename (the rest of the old file is read, then the new file
  // from its start), truncation (read again from the start) and a file that is missing or
  // deleted (it is picked up when it appears). Throws std::system_error when reading fails, or
  // what `out` threw.
  virtual void pump(Consumer<SourceItem>& out) = 0;

  // SIGHUP: opens the log again by name (a different file is read from its start) and pumps.
  virtual void reopen(Consumer<SourceItem>& out) = 0;

  // How the operator called the log ("/var/log/kern.log", "/dev/kmsg").
  virtual const std::string& name() const = 0;
};

// Follows the file at `path`, which need not exist yet; its directory must (std::system_error
// otherwise). The file's content at this moment is the backlog; reading forward starts after its
// last complete line. `notice` (may be empty) hears about rotations and truncations.
std::unique_ptr<FollowSource> follow_file(const std::string& path, Notice notice);

// Follows the running kernel's log. The records already in the ring buffer are the backlog.
// Throws std::system_error when /dev/kmsg cannot be opened (with a hint when it is a matter of
// permission).
std::unique_ptr<FollowSource> follow_kernel_log(Notice notice);

// The number of lines in the first `size` bytes of `fd` (a last line without a newline counts).
// Reads with pread; throws std::system_error naming `name`.
std::uint64_t count_lines(int fd, off_t size, const std::string& name);

}  // namespace diskfault
