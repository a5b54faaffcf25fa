// Sink threads and their deliveries: NDJSON on stdout, a command per event, the Prometheus file.
#include "follow_sinks.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <system_error>
#include <vector>

#include "atomic_file.hpp"
#include "report_printers.hpp"

extern char** environ;

namespace diskfault {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

enum class Waited { kReady, kAborted, kTimedOut };

// Waits until `fd` is ready for `events`, `abort_fd` is readable, or `limit` has passed (zero:
// no limit).
Waited wait_for(int fd, short events, int abort_fd, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int timeout = -1;
    if (limit.count() > 0) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return Waited::kTimedOut;
      timeout = static_cast<int>(std::min<std::int64_t>(left.count(), 1 << 30));
    }
    pollfd fds[2] = {{fd, events, 0}, {abort_fd, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (fds[1].revents) return Waited::kAborted;
    if (fds[0].revents) return Waited::kReady;
  }
}

// The same without a limit; false when aborted.
bool wait_for(int fd, short events, int abort_fd) {
  return wait_for(fd, events, abort_fd, std::chrono::milliseconds::zero()) == Waited::kReady;
}

// Writes all of `data` to a pipe or file without ever blocking past an abort: a chunk of at most
// PIPE_BUF bytes goes out only once poll() says there is room for it. Returns false if aborted;
// throws std::system_error (EPIPE included) on failure.
bool write_abortable(int fd, std::string_view data, int abort_fd, const std::string& what) {
  while (!data.empty()) {
    if (!wait_for(fd, POLLOUT, abort_fd)) return false;
    ssize_t put = ::write(fd, data.data(), std::min<std::size_t>(data.size(), PIPE_BUF));
    if (put < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw_errno("cannot write to", what);
    }
    data.remove_prefix(static_cast<std::size_t>(put));
  }
  return true;
}

class StdoutDelivery final : public Delivery {
 public:
  StdoutDelivery(int fd, std::function<void()> closed) : fd_(fd), closed_(std::move(closed)) {}
  std::string name() const override { return "standard output"; }
  void deliver(const Published& item, std::uint64_t dropped, int abort_fd) override {
    if (gone_) return;
    try {
      write_abortable(fd_, event_json(*item.event, dropped), abort_fd, "standard output");
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::broken_pipe) throw;
      gone_ = true;
      if (closed_) closed_();
    }
  }

 private:
  int fd_;
  std::function<void()> closed_;
  bool gone_ = false;
};

class ExecDelivery final : public Delivery {
 public:
  ExecDelivery(std::string command, std::chrono::seconds timeout, QueuedSink::Say say)
      : command_(std::move(command)), timeout_(timeout), say_(std::move(say)) {}
  std::string name() const override { return "--exec '" + command_ + "'"; }

  void deliver(const Published& item, std::uint64_t dropped, int abort_fd) override {
    const FollowEvent& event = *item.event;
    // Everything the child needs is built before it exists: posix_spawn is safe in a threaded
    // process, unlike code between fork and exec that allocates.
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      if (std::string_view(*e).starts_with("DISKFAULT_")) continue;  // ours win
      env.emplace_back(*e);
    }
    for (std::string& e : event_environment(event, dropped)) env.push_back(std::move(e));
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string sh = "/bin/sh", dash_c = "-c", command = command_;
    char* argv[] = {sh.data(), dash_c.data(), command.data(), nullptr};

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("cannot create a pipe for", name());
    FileDescriptor read_end(pipe_fds[0]), write_end(pipe_fds[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, read_end.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attr, &none);  // the follower blocks signals it reads by signalfd
    posix_spawnattr_setsigdefault(&attr, &defaults);  // and ignores SIGPIPE
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid = 0;
    int error = ::posix_spawn(&pid, argv[0], &actions, &attr, argv, envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (error != 0) throw std::system_error(error, std::generic_category(), "cannot run " + name());
    read_end = FileDescriptor();

    bool aborted = false;
    try {
      aborted = !write_abortable(write_end.get(), event_json(event, dropped), abort_fd, name());
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::broken_pipe) say_(e.what());  // a command may ignore stdin
    }
    write_end = FileDescriptor();

    // Through syscall(): glibc 2.36's <sys/pidfd.h> lacks extern "C". Without pidfd_open (a
    // kernel before 5.3) the wait cannot be cut short at exit.
    FileDescriptor pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    bool timed_out = false;
    if (!aborted && pidfd.valid()) {
      // A command that hangs would hold every later event of this sink back until the queue
      // overflows: past its time it is killed, and the next event gets a fresh one.
      const Waited waited = wait_for(pidfd.get(), POLLIN, abort_fd, timeout_);
      aborted = waited == Waited::kAborted;
      timed_out = waited == Waited::kTimedOut;
    }
    if (aborted || timed_out) ::kill(-pid, SIGKILL);  // its process group: the shell and all
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (aborted) {
      say_(name() + " was stopped: the follower is leaving");
    } else if (timed_out) {
      say_(name() + " was killed: still running after " + std::to_string(timeout_.count()) +
           " s (--exec-timeout)");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      say_(name() + " exited with status " + std::to_string(WEXITSTATUS(status)));
    } else if (WIFSIGNALED(status)) {
      say_(name() + " was killed by signal " + std::to_string(WTERMSIG(status)));
    }
  }

 private:
  std::string command_;
  std::chrono::seconds timeout_;  // 0: none
  QueuedSink::Say say_;
};

class TextfileDelivery final : public Delivery {
 public:
  explicit TextfileDelivery(std::string directory) : directory_(std::move(directory)) {}
  std::string name() const override { return "--textfile " + directory_; }
  bool wants_reports() const override { return true; }
  void deliver(const Published& item, std::uint64_t, int) override {
    write_file_atomically(directory_ + "/" + kPrometheusTextfileName,
                          format_prometheus(*item.report, now_seconds()), 0644);
  }

 private:
  std::string directory_;
};

}  // namespace

QueuedSink::QueuedSink(std::unique_ptr<Delivery> delivery, std::size_t capacity, Say say)
    : delivery_(std::move(delivery)),
      capacity_(capacity == 0 ? 1 : capacity),
      say_(std::move(say)),
      reports_(delivery_->wants_reports()),
      abort_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!abort_.valid()) throw_errno("cannot create an eventfd for", delivery_->name());
  worker_ = std::thread([this] { run(); });
}

QueuedSink::~QueuedSink() {
  if (worker_.joinable()) finish(std::chrono::steady_clock::now());
}

void QueuedSink::offer(const std::shared_ptr<const Published>& item) {
  if (reports_ ? !item->report : !item->event) return;
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  if (queue_.size() >= capacity_) {
    if (reports_) {
      queue_.back() = item;  // the newer report supersedes the queued one
      return;
    }
    ++dropped_total_;
    if (dropped_streak_++ == 0) say_(delivery_->name() + " is behind; dropping events");
    return;
  }
  queue_.push_back(item);
  wake_.notify_one();
}

void QueuedSink::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return !queue_.empty() || stopping_; });
    if (queue_.empty() || aborted_) break;
    auto item = std::move(queue_.front());
    queue_.pop_front();
    std::uint64_t dropped = std::exchange(dropped_streak_, 0);
    lock.unlock();
    if (dropped > 0) {
      say_(delivery_->name() + " dropped " + std::to_string(dropped) + " event(s) while behind");
    }
    try {
      delivery_->deliver(*item, dropped, abort_.get());
    } catch (const std::exception& e) {
      say_(delivery_->name() + ": " + e.what());
    }
    lock.lock();
  }
  if (!reports_) dropped_total_ += queue_.size();
  queue_.clear();
  done_ = true;
  finished_.notify_all();
}

void QueuedSink::finish(std::chrono::steady_clock::time_point deadline) {
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
    if (!finished_.wait_until(lock, deadline, [&] { return done_; })) {
      aborted_ = true;
      std::uint64_t one = 1;
      [[maybe_unused]] ssize_t ignored = ::write(abort_.get(), &one, sizeof one);
    }
  }
  worker_.join();
  if (std::uint64_t n = dropped(); n > 0) {
    say_(delivery_->name() + " dropped " + std::to_string(n) + " event(s) in all");
  }
}

std::uint64_t QueuedSink::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_total_;
}

std::unique_ptr<Delivery> stdout_delivery(int fd, std::function<void()> closed) {
  return std::make_unique<StdoutDelivery>(fd, std::move(closed));
}

std::unique_ptr<Delivery> exec_delivery(std::string command, std::chrono::seconds timeout,
                                        QueuedSink::Say say) {
  return std::make_unique<ExecDelivery>(std::move(command), timeout, std::move(say));
}

std::unique_ptr<Delivery> textfile_delivery(std::string directory) {
  return std::make_unique<TextfileDelivery>(std::move(directory));
}

}  // namespace diskfault
