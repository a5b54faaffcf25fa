// Opens log sources; spools non-seekable input into an unlinked temporary file.
#include "source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

namespace diskfault {
namespace {

std::string temp_dir() {
  const char* dir = std::getenv("TMPDIR");
  return dir && *dir ? dir : "/tmp";
}

// An anonymous file nobody else can open; it disappears with its descriptor.
FileDescriptor make_spool_file() {
  std::string dir = temp_dir();
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return FileDescriptor(fd);
  // Some filesystems (older overlayfs, NFS) lack O_TMPFILE: fall back to create-then-unlink.
  std::string pattern = dir + "/diskfault.XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) throw_errno("cannot create a temporary file in", dir);
  ::unlink(name.data());
  return FileDescriptor(fd);
}

off_t spool_stream(int in, const std::string& name, int out, bool kmsg) {
  std::vector<char> buffer(kmsg ? 8192 : 1 << 16);
  off_t total = 0;
  for (;;) {
    ssize_t got = ::read(in, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      // /dev/kmsg: EAGAIN is the end of the records so far; EPIPE says the ring buffer wrapped
      // past our position, and the next read continues from the oldest record still there.
      if (kmsg && errno == EAGAIN) break;
      if (kmsg && errno == EPIPE) continue;
      throw_errno(kmsg ? "cannot read the kernel log" : "cannot read", name);
    }
    if (got == 0) break;
    write_all(out, buffer.data(), static_cast<std::size_t>(got), "temporary copy of " + name);
    total += got;
  }
  return total;
}

Source spool(FileDescriptor in, std::string name, bool kmsg) {
  Source source;
  source.name = std::move(name);
  source.fd = make_spool_file();
  source.size = spool_stream(in.get(), source.name, source.fd.get(), kmsg);
  source.live_kernel_log = kmsg;
  return source;
}

}  // namespace

Source open_source(const std::string& path) {
  if (path == "-") return spool(FileDescriptor(::dup(STDIN_FILENO)), "-", false);

  const bool kmsg = path == kKernelLogPath;
  int flags = O_RDONLY | O_CLOEXEC | (kmsg ? O_NONBLOCK : 0);
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    if (kmsg && (errno == EPERM || errno == EACCES)) {
      throw std::system_error(errno, std::generic_category(),
                              "cannot read the kernel log " + path +
                                  " (run as root, or pass a log file such as /var/log/kern.log)");
    }
    throw_errno("cannot open", path);
  }
  FileDescriptor owned(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("cannot stat", path);
  if (S_ISDIR(st.st_mode)) {
    throw std::system_error(EISDIR, std::generic_category(), "cannot read " + path);
  }
  if (S_ISREG(st.st_mode)) {
    Source source;
    source.name = path;
    source.fd = std::move(owned);
    source.size = st.st_size;
    return source;
  }
  return spool(std::move(owned), path, kmsg);
}

}  // namespace diskfault
