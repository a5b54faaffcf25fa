// tail -F on inotify, and /dev/kmsg on poll: lines appended to a log, pushed as they arrive.
#include "follow_source.hpp"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "file_descriptor.hpp"
#include "source.hpp"

namespace diskfault {
namespace {

// A line longer than this without a newline (binary junk, a runaway writer) is handed on in
// pieces rather than held in memory without bound.
constexpr std::size_t kMaxLine = 1 << 20;
constexpr std::size_t kReadBlock = 1 << 16;
// /dev/kmsg hands out one record per read and refuses a buffer shorter than the record.
constexpr std::size_t kKmsgRecordMax = 8192;

ssize_t read_retrying(int fd, char* buffer, std::size_t size) {
  for (;;) {
    ssize_t got = ::read(fd, buffer, size);
    if (got >= 0 || errno != EINTR) return got;
  }
}

ssize_t pread_retrying(int fd, char* buffer, std::size_t size, off_t offset) {
  for (;;) {
    ssize_t got = ::pread(fd, buffer, size, offset);
    if (got >= 0 || errno != EINTR) return got;
  }
}

// Splits bytes into lines across reads: complete lines go straight from the caller's buffer;
// only a line cut by the end of a read is copied.
class LineSplitter {
 public:
  template <typename Push>
  void feed(const char* data, std::size_t size, Push&& push) {
    while (size > 0) {
      const char* newline = static_cast<const char*>(std::memchr(data, '\n', size));
      if (!newline) {
        partial_.append(data, size);
        if (partial_.size() >= kMaxLine) flush(push);
        return;
      }
      std::size_t length = static_cast<std::size_t>(newline - data);
      if (partial_.empty()) {
        push(trim(std::string_view(data, length)));
      } else {
        partial_.append(data, length);
        push(trim(partial_));
        partial_.clear();
      }
      data += length + 1;
      size -= length + 1;
    }
  }
  // Hands on an unfinished last line (its file is done with) and forgets it.
  template <typename Push>
  void flush(Push&& push) {
    if (partial_.empty()) return;
    push(trim(partial_));
    partial_.clear();
  }
  void clear() { partial_.clear(); }

 private:
  static std::string_view trim(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  }
  std::string partial_;
};

class FileFollower final : public FollowSource {
 public:
  FileFollower(std::string path, Notice notice)
      : path_(std::move(path)), notice_(std::move(notice)) {
    std::size_t slash = path_.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
    inotify_ = FileDescriptor(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_.valid()) throw_errno("cannot watch", path_);
    // The directory tells when the name is created or a file is renamed onto it.
    if (::inotify_add_watch(inotify_.get(), dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ONLYDIR) <
        0) {
      throw_errno("cannot watch the directory", dir);
    }
    if (open_by_name()) {
      // Learning reads the complete lines present now; following starts after them.
      struct stat st {};
      if (::fstat(fd_.get(), &st) != 0) throw_errno("cannot stat", path_);
      offset_ = complete_prefix(st.st_size);
      backlog_ = Backlog{fd_.get(), offset_, count_lines(fd_.get(), offset_, path_)};
      number_ = backlog_.lines;
    }
  }

  int poll_fd() const override { return inotify_.get(); }
  Backlog backlog() const override { return backlog_; }
  void release_backlog() override { backlog_ = {}; }
  const std::string& name() const override { return path_; }

  void pump(Consumer<SourceItem>& out) override {
    drain_events();
    auto push = [&](std::string_view text) {
      out.push(SourceItem{SourceItem::What::kLine, text, ++number_});
    };
    for (int switches = 0; switches < 8; ++switches) {
      if (fd_.valid()) read_appended(push);
      // The name now belongs to another file (rotation by rename, or the file appeared): the
      // old one has been read to its end; go on with the new one from its start.
      struct stat st {};
      if (::stat(path_.c_str(), &st) != 0) break;
      if (fd_.valid() && st.st_dev == dev_ && st.st_ino == ino_) break;
      const bool replaced = fd_.valid();
      splitter_.flush(push);
      if (!open_by_name()) break;
      offset_ = 0;
      say(replaced ? path_ + " was replaced (rotated); following the new file"
                   : path_ + " appeared; following it");
    }
    out.push(SourceItem{SourceItem::What::kBatchEnd, {}, number_});
  }

  void reopen(Consumer<SourceItem>& out) override {
    // Whatever the old descriptor still holds is read first; pump() then moves on to the file
    // the name stands for now, if that is another one.
    pump(out);
  }

 private:
  // Opens the file the name stands for now and watches that very inode (through /proc, so a
  // rename between the open and the watch cannot make us watch another file). False if there
  // is no such file yet.
  bool open_by_name() {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return false;
      throw_errno("cannot open", path_);
    }
    FileDescriptor owned(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno("cannot stat", path_);
    if (S_ISDIR(st.st_mode)) {
      throw std::system_error(EISDIR, std::generic_category(), "cannot follow " + path_);
    }
    if (file_wd_ >= 0) ::inotify_rm_watch(inotify_.get(), file_wd_);
    constexpr std::uint32_t kFileEvents = IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF | IN_ATTRIB;
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    file_wd_ = ::inotify_add_watch(inotify_.get(), self.c_str(), kFileEvents);
    if (file_wd_ < 0) file_wd_ = ::inotify_add_watch(inotify_.get(), path_.c_str(), kFileEvents);
    if (file_wd_ < 0) throw_errno("cannot watch", path_);
    fd_ = std::move(owned);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    splitter_.clear();
    return true;
  }

  // The size of the file's complete lines: a last line still being written is left for
  // following, so it is neither learned half nor read twice.
  off_t complete_prefix(off_t size) {
    off_t end = size;
    char block[4096];
    while (end > 0) {
      off_t start = std::max<off_t>(0, end - static_cast<off_t>(sizeof block));
      std::size_t length = static_cast<std::size_t>(end - start);
      pread_exact(fd_.get(), block, length, start, path_);
      for (std::size_t i = length; i > 0; --i) {
        if (block[i - 1] == '\n') return start + static_cast<off_t>(i);
      }
      end = start;
    }
    return 0;
  }

  template <typename Push>
  void read_appended(Push& push) {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw_errno("cannot stat", path_);
    if (st.st_size < offset_) {
      say(path_ + " was truncated; reading it from the start");
      offset_ = 0;
      splitter_.clear();
    }
    for (;;) {
      ssize_t got = pread_retrying(fd_.get(), buffer_.data(), buffer_.size(), offset_);
      if (got < 0) throw_errno("cannot read", path_);
      if (got == 0) return;
      offset_ += got;
      splitter_.feed(buffer_.data(), static_cast<std::size_t>(got), push);
    }
  }

  void drain_events() {
    // The events only wake us: what changed is found out from the file itself, so a burst of
    // events (or an overflowed queue) costs one look, not one per event.
    alignas(inotify_event) char events[4096];
    while (read_retrying(inotify_.get(), events, sizeof events) > 0) {
    }
  }

  void say(const std::string& text) {
    if (notice_) notice_(text);
  }

  std::string path_;
  Notice notice_;
  FileDescriptor inotify_;
  int file_wd_ = -1;
  FileDescriptor fd_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  off_t offset_ = 0;
  std::uint64_t number_ = 0;
  Backlog backlog_;
  LineSplitter splitter_;
  std::vector<char> buffer_ = std::vector<char>(kReadBlock);
};

class KmsgFollower final : public FollowSource {
 public:
  explicit KmsgFollower(Notice notice) : notice_(std::move(notice)) {
    int fd = ::open(kKernelLogPath, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      if (errno == EPERM || errno == EACCES) {
        throw std::system_error(
            errno, std::generic_category(),
            std::string("cannot read the kernel log ") + kKernelLogPath +
                " (run as root, or follow a log file such as /var/log/kern.log)");
      }
      throw_errno("cannot open", kKernelLogPath);
    }
    kmsg_ = FileDescriptor(fd);
    // The records already in the ring buffer are copied to an anonymous file, so that learning
    // reads them backwards like any log; the copy goes once learning is done.
    int copy = ::memfd_create("diskfault-kmsg-backlog", MFD_CLOEXEC);
    if (copy < 0) throw_errno("cannot create a memory file for", kKernelLogPath);
    backlog_fd_ = FileDescriptor(copy);
    off_t size = 0;
    while (auto record = read_record()) {
      write_all(copy, record->data(), record->size(), "memory copy of /dev/kmsg");
      size += static_cast<off_t>(record->size());
      number_ += static_cast<std::uint64_t>(std::count(record->begin(), record->end(), '\n'));
    }
    backlog_ = Backlog{copy, size, number_};
  }

  int poll_fd() const override { return kmsg_.get(); }
  Backlog backlog() const override { return backlog_; }
  void release_backlog() override {
    backlog_ = {};
    backlog_fd_ = FileDescriptor();
  }
  const std::string& name() const override { return name_; }

  void pump(Consumer<SourceItem>& out) override {
    while (auto record = read_record()) {
      std::string_view rest = *record;
      while (!rest.empty()) {
        std::size_t newline = rest.find('\n');
        std::string_view line = rest.substr(0, newline);
        out.push(SourceItem{SourceItem::What::kLine, line, ++number_});
        if (newline == std::string_view::npos) break;
        rest.remove_prefix(newline + 1);
      }
      // One record (with its continuation lines) is complete.
      out.push(SourceItem{SourceItem::What::kBatchEnd, {}, number_});
    }
  }

  // /dev/kmsg does not rotate; opening it again would read the whole ring buffer twice.
  void reopen(Consumer<SourceItem>& out) override { pump(out); }

 private:
  // The next record, or nullopt when there is none for now. A record ends in a newline.
  std::optional<std::string_view> read_record() {
    for (;;) {
      ssize_t got = read_retrying(kmsg_.get(), record_.data(), record_.size());
      if (got > 0) return std::string_view(record_.data(), static_cast<std::size_t>(got));
      if (got == 0 || errno == EAGAIN) return std::nullopt;
      if (errno == EPIPE) {
        // The ring buffer overtook us; the next read goes on from the oldest record left.
        if (notice_) notice_("kernel log records were overwritten before they could be read");
        continue;
      }
      throw_errno("cannot read the kernel log", kKernelLogPath);
    }
  }

  Notice notice_;
  std::string name_ = kKernelLogPath;
  FileDescriptor kmsg_;
  FileDescriptor backlog_fd_;
  Backlog backlog_;
  std::uint64_t number_ = 0;
  std::vector<char> record_ = std::vector<char>(kKmsgRecordMax);
};

}  // namespace

std::uint64_t count_lines(int fd, off_t size, const std::string& name) {
  std::vector<char> block(1 << 20);
  std::uint64_t lines = 0;
  off_t offset = 0;
  char last = '\n';
  while (offset < size) {
    std::size_t length =
        static_cast<std::size_t>(std::min<off_t>(size - offset, static_cast<off_t>(block.size())));
    pread_exact(fd, block.data(), length, offset, name);
    lines += static_cast<std::uint64_t>(
        std::count(block.begin(), block.begin() + static_cast<std::ptrdiff_t>(length), '\n'));
    last = block[length - 1];
    offset += static_cast<off_t>(length);
  }
  return lines + (last == '\n' ? 0 : 1);
}

std::unique_ptr<FollowSource> follow_file(const std::string& path, Notice notice) {
  return std::make_unique<FileFollower>(path, std::move(notice));
}

std::unique_ptr<FollowSource> follow_kernel_log(Notice notice) {
  return std::make_unique<KmsgFollower>(std::move(notice));
}

}  // namespace diskfault
