// Tests of the Prometheus printer, --textfile, and a real node_exporter serving diskfault's
// metrics.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "report_printers.hpp"
#include "test_support.hpp"

using diskfault::Finding;
using diskfault::Position;
using diskfault::Report;
using diskfault::Stated;
using diskfault::Unresolved;
using diskfault::test::run_diskfault;
using diskfault::test::TempDir;

namespace {

Finding drive(std::string serial, std::string hctl, std::string device, std::string model) {
  Finding f;
  if (!serial.empty()) f.serial = Stated{serial, {}};
  if (!hctl.empty()) f.hctl = hctl;
  f.devices = {device};
  if (!model.empty()) f.model = Stated{model, {}};
  return f;
}

void add_errors(Finding& f, const std::string& kind, int n) {
  for (int i = 0; i < n; ++i) {
    Position at;
    at.from_end = static_cast<std::uint64_t>(i + 1);
    f.errors.add(kind, at, "x");
  }
}

// The lines of `text` that are samples of `metric` (not HELP/TYPE), in order.
std::vector<std::string> samples(const std::string& text, const std::string& metric) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    std::string line = text.substr(start, end - start);
    if (line.rfind(metric + "{", 0) == 0 || line.rfind(metric + " ", 0) == 0) out.push_back(line);
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Two drives with serials, three and one I/O errors: the log the user stories start from.
const char* const kTwoDrivesLog =
    "Jan  2 03:00:00 host kernel: [    0.000000] Linux version 6.1.0-13-amd64 "
    "(debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 "
    "(2023-09-29)\n"
    "Jan  2 03:00:01 host kernel: [    1.000000] scsi 2:0:0:0: Direct-Access     ATA      "
    "ST4000NM0033-9ZM SN03 PQ: 0 ANSI: 5\n"
    "Jan  2 03:00:01 host kernel: [    1.100000] sd 2:0:0:0: [sdc] 7814037168 512-byte logical "
    "blocks: (4.00 TB/3.64 TiB)\n"
    "Jan  2 03:00:01 host kernel: [    1.300000] scsi 3:0:0:0: Direct-Access     ATA      WDC "
    "WD30EFRX-68A 0A80 PQ: 0 ANSI: 6\n"
    "Jan  2 03:00:01 host kernel: [    1.400000] sd 3:0:0:0: [sdd] 5860533168 512-byte logical "
    "blocks: (3.00 TB/2.73 TiB)\n"
    "Jan  2 03:00:05 host smartd[612]: Device: /dev/sdc [SAT], ST4000NM0033-9ZM170, S/N:Z1Z3ABCD, "
    "WWN:5-000c50-07a1b2c3d, FW:SN03, 4.00 TB\n"
    "Jan  2 03:00:05 host smartd[612]: Device: /dev/sdd [SAT], WDC WD30EFRX-68AX9N0, "
    "S/N:WD-WCC1T0000001, WWN:5-0014ee-0aabbccdd, FW:80.00A80, 3.00 TB\n"
    "Jan  2 04:00:00 host kernel: [ 3600.000000] blk_update_request: I/O error, dev sdc, sector "
    "1234 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n"
    "Jan  2 04:00:01 host kernel: [ 3601.000000] blk_update_request: I/O error, dev sdc, sector "
    "1240 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n"
    "Jan  2 04:00:02 host kernel: [ 3602.000000] blk_update_request: I/O error, dev sdc, sector "
    "1248 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n"
    "Jan  2 05:00:00 host kernel: [ 7200.000000] Buffer I/O error on dev sdd1, logical block "
    "154320, async page read\n";

}  // namespace

TEST_CASE("the prometheus printer writes every family with HELP and TYPE and one series per kind") {
  Report report;
  report.sources.push_back({"kern.log", "syslog", 120, 1});
  report.sources.push_back({"kern.log.1", "syslog", 30, 1});
  Finding a = drive("Z1Z3ABCD", "2:0:0:0", "sdc", "ST4000NM0033");
  add_errors(a, "xfs", 5);
  add_errors(a, "io", 2);
  report.drives.push_back(a);
  Unresolved u;
  u.device = "dm-3";
  u.errors.add("xfs", Position{}, "x");
  report.unresolved.push_back(u);

  std::string text = diskfault::format_prometheus(report, 1700000000.25);
  CHECK(text ==
        "# HELP diskfault_drive_errors Disk errors in the kernel log traced to one drive, by kind "
        "of error.\n"
        "# TYPE diskfault_drive_errors gauge\n"
        "diskfault_drive_errors{serial=\"Z1Z3ABCD\",hctl=\"2:0:0:0\",device=\"sdc\",model="
        "\"ST4000NM0033\",kind=\"io\"} 2\n"
        "diskfault_drive_errors{serial=\"Z1Z3ABCD\",hctl=\"2:0:0:0\",device=\"sdc\",model="
        "\"ST4000NM0033\",kind=\"xfs\"} 5\n"
        "# HELP diskfault_drive_info Identity of each drive with errors in the kernel log; the "
        "value is always 1.\n"
        "# TYPE diskfault_drive_info gauge\n"
        "diskfault_drive_info{serial=\"Z1Z3ABCD\",hctl=\"2:0:0:0\",device=\"sdc\",model="
        "\"ST4000NM0033\"} 1\n"
        "# HELP diskfault_faulty_drives Drives with at least one error in the kernel log.\n"
        "# TYPE diskfault_faulty_drives gauge\n"
        "diskfault_faulty_drives 1\n"
        "# HELP diskfault_unresolved_errors Disk errors in the kernel log that cannot be tied to a "
        "drive.\n"
        "# TYPE diskfault_unresolved_errors gauge\n"
        "diskfault_unresolved_errors 1\n"
        "# HELP diskfault_last_run_timestamp_seconds When diskfault last read the kernel log, in "
        "seconds since the Unix epoch.\n"
        "# TYPE diskfault_last_run_timestamp_seconds gauge\n"
        "diskfault_last_run_timestamp_seconds 1700000000.250\n"
        "# HELP diskfault_log_lines_scanned Lines of kernel log read in the last run.\n"
        "# TYPE diskfault_log_lines_scanned gauge\n"
        "diskfault_log_lines_scanned 150\n");
}

TEST_CASE("label values escape backslash, quote and newline and replace invalid UTF-8") {
  Report report;
  report.sources.push_back({"kern.log", "dmesg", 1, 1});
  Finding f = drive("A\\B\"C\nD\xff", "", "sdz", "M\x01");
  add_errors(f, "io", 1);
  report.drives.push_back(f);
  auto errors = samples(diskfault::format_prometheus(report, 0), "diskfault_drive_errors");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "diskfault_drive_errors{serial=\"A\\\\B\\\"C\\nD\xEF\xBF\xBD\",hctl=\"\",device=\"sdz\","
        "model=\"M?\",kind=\"io\"} 1");
}

TEST_CASE("findings with the same labels become one series, so the collector accepts the file") {
  // A drive without a serial at the same address in two boots: two findings, one label set.
  Report report;
  report.sources.push_back({"kern.log", "dmesg", 10, 2});
  Finding first = drive("", "0:0:0:0", "sda", "");
  add_errors(first, "io", 2);
  Finding second = drive("", "0:0:0:0", "sda", "");
  add_errors(second, "io", 3);
  report.drives = {first, second};
  std::string text = diskfault::format_prometheus(report, 0);
  auto errors = samples(text, "diskfault_drive_errors");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].ends_with("} 5"));
  CHECK(samples(text, "diskfault_drive_info").size() == 1);
  CHECK(samples(text, "diskfault_faulty_drives") ==
        std::vector<std::string>{"diskfault_faulty_drives 2"});
}

TEST_CASE("the series order does not depend on the report's order") {
  Report report;
  report.sources.push_back({"kern.log", "dmesg", 10, 1});
  Finding a = drive("AAA", "1:0:0:0", "sdb", "");
  add_errors(a, "io", 1);
  Finding b = drive("BBB", "2:0:0:0", "sdc", "");
  add_errors(b, "medium", 1);
  report.drives = {b, a};
  std::string one = diskfault::format_prometheus(report, 7);
  report.drives = {a, b};
  CHECK(diskfault::format_prometheus(report, 7) == one);
}

TEST_CASE("an empty report still has every family and zero counts") {
  Report report;
  std::string text = diskfault::format_prometheus(report, 1);
  CHECK(samples(text, "diskfault_drive_errors").empty());
  CHECK(text.find("# TYPE diskfault_drive_errors gauge\n") != std::string::npos);
  CHECK(samples(text, "diskfault_faulty_drives") ==
        std::vector<std::string>{"diskfault_faulty_drives 0"});
  CHECK(samples(text, "diskfault_log_lines_scanned") ==
        std::vector<std::string>{"diskfault_log_lines_scanned 0"});
}

TEST_CASE("report --format prometheus prints the metrics of the log") {
  TempDir dir;
  auto log = dir.write("kern.log", kTwoDrivesLog);
  auto r = run_diskfault({"--format", "prometheus", log});
  CHECK(r.status == 1);
  CHECK(r.err.empty());
  auto errors = samples(r.out, "diskfault_drive_errors");
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] ==
        "diskfault_drive_errors{serial=\"WD-WCC1T0000001\",hctl=\"3:0:0:0\",device=\"sdd\","
        "model=\"WDC WD30EFRX-68AX9N0\",kind=\"io\"} 1");
  CHECK(errors[1] ==
        "diskfault_drive_errors{serial=\"Z1Z3ABCD\",hctl=\"2:0:0:0\",device=\"sdc\","
        "model=\"ST4000NM0033-9ZM170\",kind=\"io\"} 3");
  CHECK(samples(r.out, "diskfault_log_lines_scanned") ==
        std::vector<std::string>{"diskfault_log_lines_scanned 11"});
}

TEST_CASE(
    "--textfile writes DIR/diskfault.prom readable by node_exporter and leaves no temporary file") {
  TempDir dir;
  auto log = dir.write("kern.log", kTwoDrivesLog);
  std::filesystem::create_directory(dir.path() / "textfile");
  std::string textfile = (dir.path() / "textfile").string();
  auto r = run_diskfault({"--textfile", textfile, log});
  CHECK(r.status == 1);
  CHECK(r.out.find("\"schema_version\"") != std::string::npos);  // stdout keeps the report
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(textfile)) {
    names.push_back(entry.path().filename().string());
  }
  CHECK(names == std::vector<std::string>{"diskfault.prom"});
  std::string prom = textfile + "/diskfault.prom";
  CHECK(samples(slurp(prom), "diskfault_faulty_drives") ==
        std::vector<std::string>{"diskfault_faulty_drives 2"});
  struct stat st {};
  REQUIRE(::stat(prom.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
}

TEST_CASE("--textfile refuses to replace a symbolic link and writes nothing through it") {
  TempDir dir;
  auto log = dir.write("kern.log", kTwoDrivesLog);
  auto target = dir.write("target", "untouched\n");
  std::filesystem::create_symlink(target, dir.path() / "diskfault.prom");
  auto r = run_diskfault({"--textfile", dir.path().string(), log});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("symbolic link") != std::string::npos);
  CHECK(slurp(target) == "untouched\n");
  CHECK(std::filesystem::is_symlink(dir.path() / "diskfault.prom"));
}

TEST_CASE("--textfile into a missing directory fails with the directory's name") {
  TempDir dir;
  auto log = dir.write("kern.log", kTwoDrivesLog);
  auto r = run_diskfault({"--textfile", (dir.path() / "nope").string(), log});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find((dir.path() / "nope").string()) != std::string::npos);
}

namespace {

using Clock = std::chrono::steady_clock;

// A child process that is killed (TERM, then KILL) and reaped when the object dies, waiting a
// bounded time, so a failing test cannot leave an exporter running or hang.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int null = ::open("/dev/null", O_RDONLY);
      ::dup2(null, 0);
      ::dup2(log, 1);
      ::dup2(log, 2);
      std::vector<std::string> copy = argv;
      std::vector<char*> args;
      for (auto& a : copy) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(); }

  // True while the child has not exited.
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  void stop() {
    if (!running()) return;
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
      if (!running()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// A port nobody listens on now: the kernel picks it when binding port 0.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t length = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// GET http://127.0.0.1:port/path with HTTP/1.0 (the server closes the connection after the body,
// and no chunked encoding), waiting at most until `deadline`. Returns the whole response, or
// nullopt when nothing listens yet or the deadline passes.
std::optional<std::string> http_get(int port, const std::string& path, Clock::time_point deadline) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string response;
  char buffer[8192];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      ::close(fd);
      if (got == 0) return response;
      return std::nullopt;
    }
    response.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return std::nullopt;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("node_exporter's textfile collector serves diskfault's metrics without a scrape error") {
  const std::string exporter = "/usr/bin/prometheus-node-exporter";
  if (::access(exporter.c_str(), X_OK) != 0) {
    if (std::getenv("CI"))
      FAIL(exporter << " is missing (apt-get install prometheus-node-exporter)");
    MESSAGE("skipped: " << exporter
                        << " is not installed (apt-get install prometheus-node-exporter)");
    return;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  TempDir dir;
  auto log = dir.write("kern.log", kTwoDrivesLog);
  std::filesystem::create_directory(dir.path() / "textfile");
  std::string textfile = (dir.path() / "textfile").string();
  auto r = run_diskfault({"--textfile", textfile, log});
  REQUIRE(r.status == 1);

  // Another process may take the port between free_port() and the exporter's bind; a second
  // port then, within the same deadline.
  std::optional<std::string> response;
  std::string exporter_log = (dir.path() / "exporter.log").string();
  for (int attempt = 0; attempt < 2 && !response; ++attempt) {
    int port = free_port();
    ChildProcess node_exporter({exporter, "--collector.disable-defaults", "--collector.textfile",
                                "--collector.textfile.directory=" + textfile,
                                "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                               exporter_log);
    while (!response && Clock::now() < deadline && node_exporter.running()) {
      response = http_get(port, "/metrics", deadline);
      if (!response) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  INFO("node_exporter said: " << slurp(exporter_log));
  REQUIRE(response.has_value());
  CHECK(response->rfind("HTTP/1.0 200", 0) == 0);
  CHECK(has_line(*response,
                 "diskfault_drive_errors{device=\"sdc\",hctl=\"2:0:0:0\",kind=\"io\","
                 "model=\"ST4000NM0033-9ZM170\",serial=\"Z1Z3ABCD\"} 3"));
  CHECK(has_line(*response, "diskfault_faulty_drives 2"));
  CHECK(has_line(*response, "diskfault_unresolved_errors 0"));
  CHECK(has_line(*response, "diskfault_log_lines_scanned 11"));
  CHECK(response->find("\ndiskfault_last_run_timestamp_seconds ") != std::string::npos);
  CHECK(has_line(*response, "node_textfile_scrape_error 0"));
}
