// An owned file descriptor and the few system calls diskfault makes on it, with errno as
// exceptions.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace diskfault {

// Owns one file descriptor; closes it once (never retried: after EINTR the descriptor is gone).
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor();

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Throws std::system_error whose what() is "<action> <path>: <strerror>" (errno taken as is).
[[noreturn]] void throw_errno(const std::string& action, const std::string& path);

// Reads exactly `size` bytes at `offset`, retrying on EINTR and short reads. Throws
// std::system_error naming `path` on failure or when the file ends early (it shrank under us).
void pread_exact(int fd, char* buffer, std::size_t size, off_t offset, const std::string& path);

// Reads what the page cache holds of the `size` bytes at `offset`, without waiting for a disk
// (preadv2 with RWF_NOWAIT): how many bytes it read, from the start, possibly none. nullopt where
// the file or the kernel cannot read that way. Errors are left to pread_exact() to report.
std::optional<std::size_t> pread_cached(int fd, char* buffer, std::size_t size, off_t offset);

// Asks the kernel to start reading `length` bytes at `offset` into the page cache in the
// background (POSIX_FADV_WILLNEED). A hint: where it is refused, only speed changes.
void advise_will_need(int fd, off_t offset, off_t length);

// Writes all of `data`, retrying on EINTR and short writes. Throws std::system_error naming `path`.
void write_all(int fd, const char* data, std::size_t size, const std::string& path);

}  // namespace diskfault
