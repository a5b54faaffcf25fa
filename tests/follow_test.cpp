// Tests of follow mode: the push coroutine, boot boundaries read forward, and the real binary on a
// live file.
#include "follow.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "boot_boundary.hpp"
#include "follow_correlator.hpp"
#include "matcher.hpp"
#include "pipeline.hpp"
#include "source.hpp"
#include "test_support.hpp"

using diskfault::Consumer;
using nlohmann::json;

namespace {

using namespace std::chrono_literals;

Consumer<int> collect(std::vector<int>* into, bool* started) {
  *started = true;
  for (;;) {
    int value = co_await Consumer<int>::receive();
    if (value < 0) co_return;
    into->push_back(value);
  }
}

Consumer<int> doubler(Consumer<int>* next) {
  for (;;) {
    int value = co_await Consumer<int>::receive();
    next->push(value * 2);
  }
}

Consumer<int> refuse_odd() {
  for (;;) {
    int value = co_await Consumer<int>::receive();
    if (value % 2 != 0) throw std::invalid_argument("odd");
  }
}

// The log a follower starts on: one boot, sdc at 2:0:0:0 with serial TEST0001, no error yet.
const char* kBootOne =
    "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP\n"
    "[    1.000000] sd 2:0:0:0: [sdc] 1953525168 512-byte logical blocks: (1.00 TB/932 GiB)\n"
    "[    1.000100] sd 2:0:0:0 (SERIAL=TEST0001)\n"
    "[    1.000200] sd 2:0:0:0: [sdc] Attached SCSI disk\n"
    "[    2.000000] EXT4-fs (sda1): mounted filesystem with ordered data mode\n";

std::string xfs_error(const char* stamp, const char* device = "sdc1") {
  return std::string("[") + stamp + "] XFS (" + device +
         "): metadata I/O error in \"xfs_trans_read_buf_map\" at daddr 0x1 len 8 error 5\n";
}

void append(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
}

// The built diskfault running `follow` with `args`, its stdout and stderr read through pipes with
// bounded waits. Killed if a test leaves it running.
class Follower {
 public:
  static constexpr int kWaitMs = 10000;

  explicit Follower(const std::vector<std::string>& args) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe failed");
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      std::vector<std::string> all = {DISKFAULT_BINARY, "follow"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Follower() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  // Waits until the follower says it follows (it has learned the log and watches it).
  bool ready() {
    while (err_text_.find("following ") == std::string::npos) {
      if (!read_some(err_, err_text_)) return false;
    }
    return true;
  }

  // The next event line, parsed; nullopt if none comes in time or the follower ended.
  std::optional<json> next_event() {
    for (;;) {
      if (std::size_t newline = out_text_.find('\n'); newline != std::string::npos) {
        std::string line = out_text_.substr(0, newline);
        out_text_.erase(0, newline + 1);
        return json::parse(line);
      }
      if (!read_some(out_, out_text_)) return std::nullopt;
    }
  }

  // Sends SIGTERM; returns the exit status and leaves the rest of stdout for next_event().
  int terminate() {
    ::kill(pid_, SIGTERM);
    while (read_some(out_, out_text_)) {
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  const std::string& err() const { return err_text_; }

  // Waits until stderr has said `text` `times` times; false if it does not in time.
  bool said(const std::string& text, int times = 1) {
    auto count = [&] {
      int n = 0;
      for (std::size_t at = err_text_.find(text); at != std::string::npos;
           at = err_text_.find(text, at + 1)) {
        ++n;
      }
      return n;
    };
    while (count() < times) {
      if (!read_some(err_, err_text_)) return false;
    }
    return true;
  }

 private:
  // Appends what `fd` has within the time limit; false at EOF or when the time is up.
  static bool read_some(int fd, std::string& into) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, kWaitMs) <= 0) return false;
    char buffer[4096];
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got <= 0) return false;
    into.append(buffer, static_cast<std::size_t>(got));
    return true;
  }

  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  std::string out_text_, err_text_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("a consumer does not start until the first push, and takes every value in order") {
  std::vector<int> got;
  bool started = false;
  auto sink = collect(&got, &started);
  CHECK_FALSE(started);
  CHECK(sink.push(1));
  CHECK(started);
  CHECK(sink.push(2));
  CHECK(got == std::vector<int>{1, 2});
}

TEST_CASE("consumers chain into a pipeline that runs on the producer's push") {
  std::vector<int> got;
  bool started = false;
  auto sink = collect(&got, &started);
  auto stage = doubler(&sink);
  for (int i = 1; i <= 3; ++i) stage.push(i);
  CHECK(got == std::vector<int>{2, 4, 6});
}

TEST_CASE("a consumer's exception comes out of push, and a finished consumer refuses values") {
  auto picky = refuse_odd();
  CHECK(picky.push(2));
  CHECK_THROWS_AS(picky.push(3), std::invalid_argument);
  CHECK(picky.done());
  CHECK_FALSE(picky.push(4));

  std::vector<int> got;
  bool started = false;
  auto sink = collect(&got, &started);
  CHECK(sink.push(-1));  // the body returns on it
  CHECK(sink.done());
  CHECK_FALSE(sink.push(5));
  CHECK(got.empty());
}

TEST_CASE("quiet periods parse with s, m, h and d units and reject the rest") {
  using diskfault::parse_duration;
  CHECK(parse_duration("30s") == std::chrono::seconds(30));
  CHECK(parse_duration("10m") == std::chrono::seconds(600));
  CHECK(parse_duration("1h") == std::chrono::seconds(3600));
  CHECK(parse_duration("2d") == std::chrono::seconds(172800));
  CHECK(parse_duration("45") == std::chrono::seconds(45));
  CHECK(parse_duration("0") == std::chrono::seconds(0));
  CHECK_FALSE(parse_duration(""));
  CHECK_FALSE(parse_duration("m"));
  CHECK_FALSE(parse_duration("-5s"));
  CHECK_FALSE(parse_duration("10 m"));
  CHECK_FALSE(parse_duration("1w"));
}

TEST_CASE("boot boundaries read forward fall on the lines the matcher finds going backwards") {
  using namespace diskfault;
  const auto& rules = test::default_rule_set();
  std::vector<std::string> logs;
  for (auto& dir : std::filesystem::directory_iterator(test::source_root() + "/testdata")) {
    if (!dir.is_directory()) continue;
    for (auto& file : std::filesystem::directory_iterator(dir.path())) {
      if (file.path().extension() == ".log") logs.push_back(file.path().string());
    }
  }
  int multiboot = 0;
  for (const std::string& path : logs) {
    CAPTURE(path);
    Source source = open_source(path);
    LogFormat format = detect_source_format(source.fd.get(), source.size, source.name);

    // Backwards, as the report reads it; the file's start closes the oldest boot but is not a
    // reboot.
    std::vector<std::uint64_t> backward;
    ReverseLineReader reader(source.fd.get(), source.size, source.name);
    auto matcher = match_lines(reader, format, rules);
    Want boots{Want::bit(EventType::kBoot)};
    while (Match* m = matcher.send(boots)) backward.push_back(m->from_end);
    const std::uint64_t lines = reader.line_count();
    if (!backward.empty() && backward.back() == lines) {
      // The marker for the file's start, unless a real boundary sits on line 1.
      std::ifstream first(path);
      std::string line1;
      std::getline(first, line1);
      auto hit = rules.match(parse_line(format, line1));
      if (!(hit && rules.rules()[hit->rule].yields == EventType::kBoot)) backward.pop_back();
    }
    std::vector<std::uint64_t> backward_lines;
    for (auto it = backward.rbegin(); it != backward.rend(); ++it) {
      backward_lines.push_back(lines - *it + 1);
    }

    std::vector<std::uint64_t> forward_lines;
    ForwardBootTracker tracker;
    std::ifstream in(path, std::ios::binary);
    std::string line;
    std::uint64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      Record record = parse_line(format, line);
      auto hit = rules.match(record);
      bool boot_rule = hit && rules.rules()[hit->rule].yields == EventType::kBoot;
      if (tracker.starts_boot(record, boot_rule)) {
        // A separator's boot starts on the line after it.
        forward_lines.push_back(record.kind == RecordKind::kBootSeparator ? number + 1 : number);
      }
    }
    CHECK(forward_lines == backward_lines);
    if (forward_lines.size() >= 2) ++multiboot;
  }
  CHECK(multiboot >= 2);  // the comparison covers logs with reboots in them
}

TEST_CASE("the follow correlator forgets a boot's devices at a reboot and bounds a flood") {
  using namespace diskfault;
  auto rules = std::make_shared<const RuleSet>(default_rules());
  FollowCorrelator correlator("kern.log", "dmesg");
  std::uint64_t number = 0;
  auto feed = [&](const std::string& line) {
    ++number;
    Record record = parse_line(LogFormat::kDmesg, line);
    auto hit = rules->match(record);
    REQUIRE(hit);
    RetainedMatch kept;
    kept.rules = rules;
    kept.rule = hit->rule;
    for (std::size_t i = 0; i < kFieldCount; ++i) kept.captures[i].assign(hit->captures[i]);
    kept.number = number;
    kept.text = line;
    correlator.retain(std::move(kept));
  };
  feed("[    1.000000] sd 2:0:0:0: [sdc] Attached SCSI disk");
  feed("[    1.000100] sd 2:0:0:0 (SERIAL=TEST0001)");
  feed(xfs_error("  100.000000").substr(0, xfs_error("  100.000000").size() - 1));
  CHECK(correlator.newest_error_key() == std::optional<std::string>("serial TEST0001"));

  correlator.start_boot("Linux version");
  CHECK(correlator.retained() == 0);
  feed("[    1.000000] sd 3:0:0:0: [sdc] Attached SCSI disk");
  feed("[    5.000000] XFS (sdc1): metadata I/O error in \"x\" at daddr 0x1 len 8 error 5");
  const std::uint64_t first_error = number;
  CHECK(correlator.newest_error_key() == std::optional<std::string>("boot 2 hctl 3:0:0:0"));

  for (int i = 0; i < 200; ++i) {
    feed("[    6.000000] XFS (sdc1): metadata I/O error in \"x\" at daddr 0x1 len 8 error 5");
  }
  CHECK(correlator.retained() == 1 + FollowCorrelator::kKeepPerEntity);
  CHECK(correlator.let_go() == 201 - FollowCorrelator::kKeepPerEntity);
  CHECK(correlator.newest_error_key() == std::optional<std::string>("boot 2 hctl 3:0:0:0"));
  Report report = correlator.report(number);
  REQUIRE(report.drives.size() == 1);
  CHECK(report.drives[0].errors.total() == 201);  // every line counted, though few are kept
  CHECK(report.drives[0].errors.last().line == number);
  CHECK(report.drives[0].errors.first().line == first_error);  // not moved up by the flood
}

TEST_SUITE("follow (runs the binary)") {
  TEST_CASE("an appended XFS error comes out as an event with the serial learned from the log") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kern.log", kBootOne);
    Follower follower({log});
    REQUIRE(follower.ready());
    std::string error = xfs_error("  100.000000");
    append(log, error);
    auto event = follower.next_event();
    REQUIRE(event);
    CHECK((*event)["serial"] == "TEST0001");
    CHECK((*event)["hctl"] == "2:0:0:0");
    CHECK((*event)["devices"] == json::array({"sdc"}));
    CHECK((*event)["partitions"] == json::array({"sdc1"}));
    CHECK((*event)["event"]["kind"] == "xfs");
    CHECK((*event)["event"]["reason"] == "error");
    CHECK((*event)["event"]["count"] == 1);
    CHECK((*event)["event"]["line"] == error.substr(0, error.size() - 1));
    CHECK((*event)["event"]["line_number"] == 6);
    CHECK((*event)["stated_at"]["serial"]["line"] == 3);
    CHECK(follower.terminate() == 0);
  }

  TEST_CASE("a followed log that is this host's gets the host's serial, slot and their origins") {
    diskfault::test::TempDir dir;
    const std::string host = diskfault::test::source_root() + "/testdata/host/sata";
    std::string head;
    {
      std::ifstream in(host + "/current.log");
      for (std::string line; std::getline(in, line) && line.find("XFS") == std::string::npos;) {
        head += line + "\n";
      }
    }
    std::string log = dir.write("kern.log", head);
    const std::string error = xfs_error(" 9000.000000");
    for (bool this_host : {false, true}) {
      std::vector<std::string> args{log, "--sysfs-root", host + "/sys", "--udev-root",
                                    host + "/udev"};
      if (this_host) args.push_back("--this-host");
      Follower follower(args);
      REQUIRE(follower.ready());
      append(log, error);
      auto event = follower.next_event();
      REQUIRE(event);
      CAPTURE(this_host);
      CHECK((*event)["hctl"] == "2:0:0:0");
      if (this_host) {
        CHECK((*event)["serial"] == "Z1ZFAKE1");
        CHECK((*event)["origin"]["serial"] == "udev:b8:32 E:ID_SERIAL_SHORT");
      } else {
        CHECK((*event)["serial"] == nullptr);  // a file may be another host's, or an old boot
      }
      CHECK(follower.terminate() == 0);
    }
  }

  TEST_CASE("the follower goes on with a log renamed away and created anew") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kern.log", kBootOne);
    Follower follower({log, "--quiet-period", "0"});
    REQUIRE(follower.ready());
    std::filesystem::rename(log, log + ".1");
    // The old file still gets a line from a writer that has not reopened yet...
    append(log + ".1", xfs_error("  100.000000", "sdc2"));
    auto old_event = follower.next_event();
    REQUIRE(old_event);
    CHECK((*old_event)["partitions"] == json::array({"sdc2"}));
    // ...then the new file appears; it holds no identity lines, those of the boot still hold.
    append(log, xfs_error("  101.000000"));
    auto event = follower.next_event();
    REQUIRE(event);
    CHECK((*event)["serial"] == "TEST0001");
    CHECK((*event)["event"]["line_number"] == 7);
    CHECK(follower.terminate() == 0);
  }

  TEST_CASE("the follower reads a truncated log again from its start") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kern.log", kBootOne);
    Follower follower({log});
    REQUIRE(follower.ready());
    { std::ofstream truncate(log, std::ios::binary | std::ios::trunc); }
    append(log, xfs_error("  100.000000"));
    auto event = follower.next_event();
    REQUIRE(event);
    CHECK((*event)["serial"] == "TEST0001");
    CHECK((*event)["event"]["kind"] == "xfs");
    CHECK(follower.terminate() == 0);
  }

  TEST_CASE("a log that does not exist yet is followed from the moment it appears") {
    diskfault::test::TempDir dir;
    std::string log = (dir.path() / "kern.log").string();
    Follower follower({log});
    REQUIRE(follower.ready());
    append(log, std::string(kBootOne) + xfs_error("  100.000000"));
    auto event = follower.next_event();
    REQUIRE(event);
    CHECK((*event)["serial"] == "TEST0001");
    CHECK(follower.terminate() == 0);
  }

  TEST_CASE("a reboot in the followed log remaps the device names") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kern.log", kBootOne);
    Follower follower({log});
    REQUIRE(follower.ready());
    append(log, xfs_error("  100.000000"));
    auto before = follower.next_event();
    REQUIRE(before);
    CHECK((*before)["serial"] == "TEST0001");
    append(
        log,
        "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP\n"
        "[    1.000000] sd 3:0:0:0: [sdc] 3907029168 512-byte logical blocks: (2.00 TB/1.82 TiB)\n"
        "[    1.000100] sd 3:0:0:0 (SERIAL=TEST0002)\n"
        "[    1.000200] sd 3:0:0:0: [sdc] Attached SCSI disk\n" +
            xfs_error("   50.000000"));
    auto after = follower.next_event();
    REQUIRE(after);
    CHECK((*after)["serial"] == "TEST0002");
    CHECK((*after)["hctl"] == "3:0:0:0");
    CHECK((*after)["errors"]["total"] == 1);  // the old boot's error is not this drive's
    CHECK((*after)["first_seen"]["boot"] == 2);
    CHECK(follower.terminate() == 0);
  }

  TEST_CASE("the quiet period folds repeats into one event and tells their count at exit") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kern.log", kBootOne);
    Follower follower({log, "--quiet-period", "1h"});
    REQUIRE(follower.ready());
    append(log, xfs_error("  100.000000"));
    auto first = follower.next_event();
    REQUIRE(first);
    CHECK((*first)["event"]["count"] == 1);
    append(log, xfs_error("  101.000000") + xfs_error("  102.000000") + xfs_error("  103.000000"));
    // Another drive's error is not folded with them; its event also shows that the three
    // repeats were read before it.
    append(log, "[  104.000000] sd 2:0:0:0: [sdc] tag#1 Sense Key : Medium Error [current]\n");
    auto other = follower.next_event();
    REQUIRE(other);
    CHECK((*other)["event"]["kind"] == "medium");
    CHECK(follower.terminate() == 0);
    auto folded = follower.next_event();
    REQUIRE(folded);
    CHECK((*folded)["event"]["reason"] == "repeats");
    CHECK((*folded)["event"]["kind"] == "xfs");
    CHECK((*folded)["event"]["count"] == 3);
    CHECK((*folded)["event"]["line_number"] == 9);
    CHECK((*folded)["serial"] == "TEST0001");
    CHECK((*folded)["errors"]["by_kind"]["xfs"] == 4);
    CHECK_FALSE(follower.next_event());
  }

  TEST_CASE("--exec runs the command with the event on stdin and in the environment") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kern.log", kBootOne);
    std::string env_file = (dir.path() / "env").string();
    std::string stdin_file = (dir.path() / "stdin").string();
    Follower follower(
        {log, "--exec",
         "env | grep ^DISKFAULT_ | sort > '" + env_file + "'; cat > '" + stdin_file + "'"});
    REQUIRE(follower.ready());
    append(log, xfs_error("  100.000000"));
    REQUIRE(follower.next_event());
    // SIGTERM lets the sinks finish what they have queued before the follower exits.
    CHECK(follower.terminate() == 0);
    std::string env = slurp(env_file);
    CHECK(env.find("DISKFAULT_SERIAL=TEST0001\n") != std::string::npos);
    CHECK(env.find("DISKFAULT_DEVICE=sdc\n") != std::string::npos);
    CHECK(env.find("DISKFAULT_HCTL=2:0:0:0\n") != std::string::npos);
    CHECK(env.find("DISKFAULT_KIND=xfs\n") != std::string::npos);
    CHECK(env.find("DISKFAULT_COUNT=1\n") != std::string::npos);
    CHECK(env.find("DISKFAULT_MODEL=\n") != std::string::npos);
    CHECK(env.find("DISKFAULT_LINE=[  100.000000] XFS (sdc1): metadata I/O error") !=
          std::string::npos);
    json on_stdin = json::parse(slurp(stdin_file));
    CHECK(on_stdin["serial"] == "TEST0001");
    CHECK(on_stdin["event"]["kind"] == "xfs");
  }

  TEST_CASE(
      "an --exec command that hangs is killed after --exec-timeout, and the next event runs") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kern.log", kBootOne);
    std::string runs = (dir.path() / "runs").string();
    Follower follower({log, "--quiet-period", "0", "--exec-timeout", "1s", "--exec",
                       "echo run >> '" + runs + "'; sleep 60"});
    REQUIRE(follower.ready());
    const std::string killed = "was killed: still running after 1 s (--exec-timeout)";
    append(log, xfs_error("  100.000000"));
    REQUIRE(follower.next_event());
    CHECK(follower.said(killed));
    append(log, xfs_error("  101.000000"));
    REQUIRE(follower.next_event());
    CHECK(follower.said(killed, 2));
    CHECK(slurp(runs) == "run\nrun\n");
    CHECK(follower.terminate() == 0);
  }

  TEST_CASE("--from-start reports the faults already in the current boot, one per drive and kind") {
    diskfault::test::TempDir dir;
    std::string log =
        dir.write("kern.log", std::string("[    0.000000] Linux version 6.1.0 #1 SMP\n") +
                                  "[    1.000000] sd 1:0:0:0: [sdc] Attached SCSI disk\n" +
                                  "[    1.000100] sd 1:0:0:0 (SERIAL=OLDBOOT1)\n" +
                                  xfs_error("    9.000000") + kBootOne + xfs_error("   10.000000") +
                                  xfs_error("   11.000000"));
    Follower follower({log, "--from-start"});
    REQUIRE(follower.ready());
    auto event = follower.next_event();
    REQUIRE(event);
    CHECK((*event)["event"]["reason"] == "backlog");
    CHECK((*event)["event"]["count"] == 2);
    CHECK((*event)["serial"] == "TEST0001");
    CHECK(follower.terminate() == 0);
    CHECK_FALSE(follower.next_event());  // nothing about the older boot's drive
  }

  TEST_CASE("an idle follower ends with status 0 on SIGTERM and SIGINT") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kern.log", kBootOne);
    Follower follower({log});
    REQUIRE(follower.ready());
    CHECK(follower.terminate() == 0);
    CHECK_FALSE(follower.next_event());
  }

  TEST_CASE("a kmsg record is reported once the batch with its continuation lines has been read") {
    diskfault::test::TempDir dir;
    std::string log = dir.write("kmsg.log",
                                "5,0,0,-;Linux version 6.1.0-18-amd64 #1 SMP\n"
                                "5,812,2100000,-;sd 6:0:0:0: [sdf] Attached SCSI disk\n"
                                " SUBSYSTEM=scsi\n"
                                " DEVICE=+scsi:6:0:0:0\n");
    Follower follower({log});
    REQUIRE(follower.ready());
    append(log,
           "3,900,9436467330,-;sd 6:0:0:0: [sdf] tag#2 Sense Key : Medium Error [current]\n"
           " SUBSYSTEM=scsi\n"
           " DEVICE=+scsi:6:0:0:0\n");
    auto event = follower.next_event();
    REQUIRE(event);
    CHECK((*event)["hctl"] == "6:0:0:0");
    CHECK((*event)["devices"] == json::array({"sdf"}));
    CHECK((*event)["event"]["time"] == "9436.467330");
    CHECK(follower.terminate() == 0);
  }
}
