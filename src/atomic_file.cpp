// Atomic file replacement: temporary file in the same directory, fsync, rename, fsync the
// directory.
#include "atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

#include "file_descriptor.hpp"

namespace diskfault {
namespace {

std::string directory_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Removes the temporary file unless it has been renamed into place.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void keep() { path_.clear(); }

 private:
  std::string path_;
};

}  // namespace

void write_file_atomically(const std::string& path, std::string_view content, mode_t mode) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) {
      throw std::system_error(ELOOP, std::generic_category(),
                              "refusing to write through the symbolic link " + path);
    }
  } else if (errno != ENOENT) {
    throw_errno("cannot check", path);
  }

  const std::string dir = directory_of(path);
  std::string pattern = dir + "/." + base_of(path) + ".tmp.XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  int raw = ::mkostemp(name.data(), O_CLOEXEC);
  if (raw < 0) throw_errno("cannot create a temporary file in", dir);
  const std::string temp(name.data());
  TempFileGuard guard(temp);
  {
    FileDescriptor fd(raw);
    write_all(fd.get(), content.data(), content.size(), temp);
    if (::fchmod(fd.get(), mode) != 0) throw_errno("cannot set the mode of", temp);
    if (::fsync(fd.get()) != 0) throw_errno("cannot sync", temp);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) throw_errno("cannot replace", path);
  guard.keep();
  // The rename itself is durable only once the directory is; failing that is not worth an error
  // (the new file is in place for every reader), so the result is ignored.
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace diskfault
