// System-call wrappers: retry on EINTR, report errno with the file's name.
#include "file_descriptor.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace diskfault {

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

void throw_errno(const std::string& action, const std::string& path) {
  throw std::system_error(errno, std::generic_category(), action + " " + path);
}

void pread_exact(int fd, char* buffer, std::size_t size, off_t offset, const std::string& path) {
  while (size > 0) {
    ssize_t got = ::pread(fd, buffer, size, offset);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path);
    }
    if (got == 0) {
      // A log rotated by truncation while we read it: say so rather than invent bytes.
      throw std::system_error(EIO, std::generic_category(), "file shrank while reading " + path);
    }
    buffer += got;
    size -= static_cast<std::size_t>(got);
    offset += got;
  }
}

std::optional<std::size_t> pread_cached(int fd, char* buffer, std::size_t size, off_t offset) {
  iovec into{buffer, size};
  for (;;) {
    const ssize_t got = ::preadv2(fd, &into, 1, offset, RWF_NOWAIT);
    if (got >= 0) return static_cast<std::size_t>(got);
    if (errno == EINTR) continue;
    // Not for this file, this kernel, or this sandbox (a seccomp filter may refuse the call).
    if (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS || errno == EPERM) {
      return std::nullopt;
    }
    return 0;  // EAGAIN: the disk holds the first byte; any other error is pread_exact()'s
  }
}

void advise_will_need(int fd, off_t offset, off_t length) {
  ::posix_fadvise(fd, offset, length, POSIX_FADV_WILLNEED);
}

void write_all(int fd, const char* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t put = ::write(fd, data, size);
    if (put < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path);
    }
    data += put;
    size -= static_cast<std::size_t>(put);
  }
}

}  // namespace diskfault
