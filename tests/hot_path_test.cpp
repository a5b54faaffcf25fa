// Tests that the hot path's shortcuts give exactly the answers of the plain way.
#include <doctest/doctest.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "diagnose.hpp"
#include "line_format.hpp"
#include "match_rows.hpp"
#include "matcher.hpp"
#include "report_printers.hpp"
#include "source.hpp"
#include "test_support.hpp"

using namespace diskfault;

namespace {

// What the stamp inside "[...]" is worth when read by std::from_chars, or -1.
double plain_seconds(const std::string& stamp) {
  std::size_t first = stamp.find_first_not_of(' ');
  std::size_t last = stamp.find_last_not_of(' ');
  if (first == std::string::npos || stamp[first] < '0' || stamp[first] > '9') return -1;
  double value = -1;
  const char* begin = stamp.data() + first;
  const char* end = stamp.data() + last + 1;
  auto [stop, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || stop != end) return -1;
  return value;
}

// Every match of a log, as text, read with the matcher's fast lane on or off; in place, and then
// with the fast lane's test of the older part on a second thread, if `mode` says so.
std::vector<std::string> matches(const std::string& path, std::optional<LogFormat> forced,
                                 bool fast_lane, Want want, ReadMode mode = ReadMode::kCopy,
                                 std::size_t block = 4096) {
  LogFormat format = LogFormat::kDmesg;
  if (forced) {
    format = *forced;
  } else {
    Source source = open_source(path);
    format = detect_source_format(source.fd.get(), source.size, source.name);
  }
  return test::match_rows(path, format, block, test::default_rule_set(),
                          MatchOptions{.fast_lane = fast_lane, .second_core_min = 0}, want, mode);
}

void check_lanes_agree(const std::string& path, std::optional<LogFormat> format = {}) {
  CAPTURE(path);
  for (Want want : {Want::all(), Want{Want::bit(EventType::kBoot)},
                    Want{Want::bit(EventType::kError) | Want::bit(EventType::kBoot)}}) {
    const std::vector<std::string> full = matches(path, format, false, want);
    CHECK(matches(path, format, true, want) == full);
    // The part the second core scans ends at its share of the file (kSecondCoreShare in
    // matcher.cpp): for these small logs, somewhere in their middle. Small blocks put many of the
    // scan's own stops inside its runs.
    for (std::size_t block : {64u, 4096u}) {
      CAPTURE(block);
      CHECK(matches(path, format, true, want, ReadMode::kMapped, block) == full);
    }
  }
}

// Kernel messages for the random logs: noise, look-alikes and lines that rules take.
const std::vector<std::string>& tricky_messages() {
  static const std::vector<std::string> messages{
      "usb 1-1.2: new high-speed USB device number 12 using xhci_hcd",
      "systemd[1]: Started Session 1234 of User admin.",
      "[UFW BLOCK] IN=eno1 OUT= MAC=3c:ec SRC=203.0.113.7",
      "scsi 2:0:0:0: Direct-Access     ATA      ST4000NM0033-9ZM SN03 PQ: 0 ANSI: 5",
      "sd 2:0:0:0: [sdc] Attached SCSI disk",
      "sd 2:0:0:0 (SERIAL=ZZ12345)",
      "XFS (sdc1): metadata I/O error in \"xfs_imap_to_bp+0x5c/0xa0 [xfs]\" at daddr 0x1 len 32 "
      "error 5",
      "XFS (sdc1): Mounting V5 Filesystem",
      "Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org)",
      "blk_update_request: I/O error, dev sdc, sector 1234 op 0x0:(READ) flags 0x0",
      "ata3: SATA link up 6.0 Gbps (SStatus 133 SControl 300)",
      // A candidate of an nvme rule that RE2 turns away: the lane learns it from the full path.
      "nvme nvme0: Shutdown timeout set to 8 seconds",
      "",
  };
  return messages;
}

// Moves a kernel clock (in microseconds) the way clocks move in logs: on, not at all, back a
// little (within the restart slack) or a lot, to near zero and around the end of the boot
// prelude, and wider than "%5lu".
void step_clock(std::mt19937& rng, std::uint64_t& micros) {
  switch (rng() % 40) {
    case 0:
      micros = rng() % 7000000;
      break;  // restart, maybe in prelude
    case 1:
      micros = 5000000 + (rng() % 3) - 1;
      break;  // around 5.000000
    case 2:
      micros -= std::min<std::uint64_t>(micros, rng() % 1500000);
      break;  // step back
    case 3:
      micros += 100000000000ULL;
      break;  // wider than %5lu
    case 4:
      micros = 0;
      break;
    default:
      micros += rng() % 3 ? rng() % 200000 : 0;
      break;
  }
}

// The "[...] " a line starts its kernel message with: mostly plain, sometimes in another shape,
// missing, or damaged. `priority` allows dmesg -r's "<6>" before it.
std::string tricky_stamp(std::mt19937& rng, std::uint64_t micros, bool priority) {
  const unsigned long long whole = micros / 1000000, part = micros % 1000000;
  char stamp[64];
  switch (rng() % 25) {
    case 0:
      std::snprintf(stamp, sizeof stamp, priority ? "<6>[%5llu.%06llu] " : "[%5llu.%06llu]  ",
                    whole, part);
      break;
    case 1:
      std::snprintf(stamp, sizeof stamp, "[%05llu.%06llu] ", whole, part);
      break;
    case 2:
      std::snprintf(stamp, sizeof stamp, "[%llu.%03llu] ", whole, part / 1000);
      break;
    case 3:
      std::snprintf(stamp, sizeof stamp, "[%5llu.%06llu ] ", whole, part);
      break;
    case 4:
      std::snprintf(stamp, sizeof stamp, "[%5llu.%06llu]", whole, part);
      break;
    case 5:
      stamp[0] = '\0';
      break;
    case 6:  // one byte of the stamp damaged: a letter, a colon, a slash, a space, a zero, or a
             // byte past ASCII
      std::snprintf(stamp, sizeof stamp, "[%5llu.%06llu] ", whole, part);
      stamp[1 + rng() % 12] = "x:/ 0\xc3\xff"[rng() % 7];
      break;
    default:
      std::snprintf(stamp, sizeof stamp, "[%5llu.%06llu] ", whole, part);
      break;
  }
  return stamp;
}

// A dmesg log whose stamps do everything a clock can do in a log (see step_clock()) and lose
// their plain shape (see tricky_stamp()).
std::string tricky_dmesg(std::mt19937& rng, std::size_t lines) {
  const auto& messages = tricky_messages();
  std::string log;
  std::uint64_t micros = 1000000;
  for (std::size_t i = 0; i < lines; ++i) {
    step_clock(rng, micros);
    log += tricky_stamp(rng, micros, true);
    log += messages[rng() % messages.size()];
    log += rng() % 50 ? "\n" : "\r\n";
  }
  return log;
}

// A syslog log (/var/log/syslog, kern.log, journalctl -k) with the kernel's lines stamped as in
// tricky_dmesg(), between lines of other programs, some of which rules take (smartd); whose time
// changes shape, host changes name and length, and whose lines lose the parts the fast lane
// relies on: a priority, journal markers, a tag without ": ", a program with an empty name.
// With `stamped` false the kernel's lines mostly lack their stamp, as `journalctl -k` writes them.
std::string tricky_syslog(std::mt19937& rng, std::size_t lines, bool stamped = true) {
  static const std::vector<std::string> hosts{"store-04", "db1.example.com", "",
                                              std::string(60, 'h')};
  static const std::vector<std::string> times{
      "Nov 22 02:43:01", "Dec  4 01:31:39", "2026-11-22T02:43:01.123456+00:00",
      "2026-11-22T02:43:01+0000", "Nov 22 02:43:0", "<6>Nov 22 02:43:01", "2026-11-22 02:43:01",
      // Out of shape in ways that fit a part of the shape: a space inside an ISO time of the
      // usual width, a priority or a journal marker where a classic time has its spaces and
      // colons.
      "2026-11-22T02 43:01+0000", "<6> ab 12:34:56", "--  bc 12:34:56"};
  static const std::vector<std::string> tags{
      "kernel: ",     "kernel: ", "kernel: ",    "kernel: ",     "kernel: ",
      "kernel: ",     "kernel:",  "kernel[0]: ", "CRON[2694]: ", "smartd[812]: ",
      "systemd[1]: ", "[1234]: ", "two words: ", "sshd:x ",      "postfix/qmgr[77]: ",
      "Kernel: "};
  static const std::vector<std::string> others{
      "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
      "Device: /dev/sdc [SAT], ST4000NM0033-9ZM170, S/N:Z1Z3ABCD, WWN:5-000c50-0a1b2c3d4, FW:SN06, "
      "4.00 TB",
      "Device: /dev/sdc [SAT], 8 Currently unreadable (pending) sectors",
      "Started Session 12 of User root.",
  };
  const auto& messages = tricky_messages();
  std::string log;
  std::uint64_t micros = 1000000;
  std::size_t time = 0, host = 0;
  for (std::size_t i = 0; i < lines; ++i) {
    step_clock(rng, micros);
    if (rng() % 30 == 0) time = rng() % times.size();
    if (rng() % 30 == 0) host = rng() % hosts.size();
    switch (rng() % 60) {
      case 0:
        log += "-- Boot 4f2c9e0d1a --\n";
        continue;
      case 1:
        log += "-- Logs begin at Sun 2026-11-22 02:43:01 UTC. --\n";
        continue;
      case 2:
        log += "a line in no format at all\n";
        continue;
      default:
        break;
    }
    const std::string& tag = tags[rng() % tags.size()];
    log += times[time] + " " + hosts[host] + " " + tag;
    // A kernel's message, or one that looks like it after a tag that is not quite "kernel: ".
    if (tag.starts_with("kernel") || tag.starts_with("Kernel") || tag.starts_with("[")) {
      if (stamped || rng() % 20 == 0) log += tricky_stamp(rng, micros, false);
      log += messages[rng() % messages.size()];
    } else {
      log += others[rng() % others.size()];
    }
    log += rng() % 50 ? "\n" : "\r\n";
  }
  return log;
}

}  // namespace

TEST_CASE("the matcher's fast lane yields exactly what the full path yields") {
  SUBCASE("every log in testdata, in its own format and read as dmesg") {
    for (auto& entry :
         std::filesystem::recursive_directory_iterator(test::source_root() + "/testdata")) {
      if (entry.path().extension() != ".log") continue;
      check_lanes_agree(entry.path().string());
      check_lanes_agree(entry.path().string(), LogFormat::kDmesg);
      check_lanes_agree(entry.path().string(), LogFormat::kSyslog);
    }
  }
  SUBCASE("a run of noise that crosses the end of the boot prelude") {
    // Read backwards, the noise from 5.5 s down to 4.0 s is one run whose newest line is past
    // the prelude and whose oldest is not; the line above it has no stamp, so only the run can
    // tell that boot B had a late clock, which is what makes the jump back from 100 s a reboot.
    test::TempDir dir;
    check_lanes_agree(dir.write("prelude.log",
                                "[    0.000000] Linux version 6.1.0-13-amd64 (boot A)\n"
                                "[  100.000000] usb 1-1: new high-speed USB device\n"
                                "[    4.000000] usb 1-1: new high-speed USB device\n"
                                "[    4.500000] usb 1-1: new high-speed USB device\n"
                                "[    5.500000] usb 1-1: new high-speed USB device\n"
                                "a line without a stamp\n"
                                "[    6.000000] Linux version 6.1.0-13-amd64 (boot C)\n"
                                "[    7.000000] usb 1-1: new high-speed USB device\n"));
  }
  SUBCASE("other programs' lines between a journal's boot separator and the boot's first line") {
    // Read backwards, boot B's "Linux version" line is a boundary, and the separator further
    // back names no other boot: only other programs' lines lie between them, and the fast lane
    // passes those without counting them as the kernel's.
    test::TempDir dir;
    check_lanes_agree(dir.write("separator.log",
                                "Nov 22 02:00:00 h kernel: [    0.000000] Linux version 6.1.0 (A)\n"
                                "Nov 22 02:00:01 h kernel: [    1.000000] usb 1-1: new device\n"
                                "-- Boot 4f2c9e0d1a --\n"
                                "Nov 22 03:00:00 h CRON[1]: (root) CMD (true)\n"
                                "Nov 22 03:00:00 h CRON[1]: (root) CMD (true)\n"
                                "Nov 22 03:00:00 h CRON[1]: (root) CMD (true)\n"
                                "Nov 22 03:00:01 h kernel: [    0.000000] Linux version 6.1.0 (B)\n"
                                "Nov 22 03:00:02 h kernel: [    2.000000] usb 1-1: new device\n"
                                "Nov 22 03:00:03 h kernel: [    3.000000] usb 1-1: new device\n"),
                      LogFormat::kSyslog);
  }
  SUBCASE("a line that leaves its neighbours' shape in one place") {
    // Read backwards, each middle line comes between kernel lines stamped 100 s and 80 s, with
    // the lead of those lines but for one place, where parse_line() then reads it as no kernel
    // line (or no line at all). The lane must not take it for a kernel line stamped 50 s, which
    // would make the older line's 80 s a restart of the clock.
    test::TempDir dir;
    const std::string iso = "2026-11-22T02:43:01+0000", classic = "Nov 22 02:43:01";
    const std::vector<std::pair<std::string, std::string>> cases{
        {iso, "2026-11-22T02:43:01+0000xh kernel: "},  // the time a byte longer
        {iso, "x026-11-22T02:43:01+0000 h kernel: "}, {iso, "2026x11-22T02:43:01+0000 h kernel: "},
        {iso, "2026-11-22x02:43:01+0000 h kernel: "}, {iso, "2026-11-22T02:43 01+0000 h kernel: "},
        {classic, "<6> ab 12:34:56 h kernel: "},  // a priority, stripped
        {classic, "--  bc 12:34:56 h kernel: "},  // a journal marker
        {classic, "Nov-22 02:43:01 h kernel: "},      {classic, "Nov 22-02:43:01 h kernel: "},
        {classic, "Nov 22 02-43:01 h kernel: "},      {classic, "Nov 22 02:43-01 h kernel: "},
        {classic, "Nov 22 02:43:01xh kernel: "},      {classic, "Nov 22 02:43:01 h kerneL: "},
        {classic, "Nov 22 02:43:01 h  kernel: "},
    };
    // And the lead's last byte, the '[' itself: parse_line() reads that line as a kernel line
    // without a stamp, which the lane may take, but not as one stamped 50 s.
    check_lanes_agree(
        dir.write("shape.log", classic + " h kernel: [   80.000000] usb 1-1: x\n" + classic +
                                   " h kernel: (   50.000000] usb 1-1: x\n" + classic +
                                   " h kernel: [  100.000000] usb 1-1: x\n"),
        LogFormat::kSyslog);
    for (const auto& shape : cases) {
      const std::string& time = shape.first;  // not bound: clang 14's CAPTURE cannot see those
      const std::string& middle = shape.second;
      CAPTURE(middle);
      check_lanes_agree(dir.write("shape.log", time + " h kernel: [   80.000000] usb 1-1: x\n" +
                                                   middle + "[   50.000000] usb 1-1: x\n" + time +
                                                   " h kernel: [  100.000000] usb 1-1: x\n"),
                        LogFormat::kSyslog);
    }
  }
  SUBCASE("stamps damaged in each position") {
    // Read backwards, 12 s is the clock the damaged line must not replace: 100 s before it is
    // a reboot only when the damaged stamp is seen not to be one.
    test::TempDir dir;
    for (std::size_t at = 0; at < 12; ++at) {
      for (char damage : {'x', ':', '/', ' ', '0', '\xc3', '\xff'}) {
        std::string damaged = "    9.000000";
        damaged[at] = damage;
        check_lanes_agree(dir.write("damaged.log", "[  100.000000] usb 1-1: new device\n[" +
                                                       damaged +
                                                       "] usb 1-1: new device\n"
                                                       "[   12.000000] usb 1-1: new device\n"));
      }
    }
  }
  SUBCASE("random dmesg logs with every kind of clock") {
    test::TempDir dir;
    std::mt19937 rng(11);
    for (int round = 0; round < 200; ++round) {
      check_lanes_agree(dir.write("tricky.log", tricky_dmesg(rng, 1 + rng() % 400)));
    }
  }
  SUBCASE("random syslog logs: other programs, hosts and times, and lines out of shape") {
    test::TempDir dir;
    std::mt19937 rng(12);
    for (int round = 0; round < 200; ++round) {
      check_lanes_agree(dir.write("tricky.log", tricky_syslog(rng, 1 + rng() % 400)),
                        LogFormat::kSyslog);
    }
  }
  SUBCASE("random syslog logs whose kernel lines mostly have no stamp (journalctl -k)") {
    test::TempDir dir;
    std::mt19937 rng(13);
    for (int round = 0; round < 200; ++round) {
      check_lanes_agree(dir.write("tricky.log", tricky_syslog(rng, 1 + rng() % 400, false)),
                        LogFormat::kSyslog);
    }
  }
}

// Whether the page cache holds every page of the file at `path` (false if it cannot tell).
bool all_cached(const std::string& path) {
  Source source = open_source(path);
  const auto length = static_cast<std::size_t>(source.size);
  try {
    return test::resident_pages(source.fd.get(), 0, length) == (length + 4095) / 4096;
  } catch (const std::runtime_error&) {
    return false;
  }
}

TEST_CASE("a page-cached log is read in place from 64 KiB, and split between cores from 8 MiB") {
  test::TempDir dir;
  std::mt19937 rng(14);
  const RuleSet& rules = test::default_rule_set();
  std::string log = tricky_dmesg(rng, 1000);
  while (log.size() < 70 * 1024) log += log;
  const off_t size = static_cast<off_t>(log.size());
  // A file just written is in the page cache, unless the filesystem keeps none (or memory ran
  // short): then there is nothing to read in place.
  const std::string path = dir.write("cached.log", log);
  if (!all_cached(path)) {
    MESSAGE("the page cache does not hold the files in " << dir.path() << ": nothing to check");
    return;
  }
  {
    Source source = open_source(path);
    ReverseLineReader reader(source.fd.get(), source.size, source.name);
    CHECK(reader.mapped());
  }
  {
    Source source = open_source(dir.write("small.log", log.substr(log.size() - 40 * 1024)));
    ReverseLineReader reader(source.fd.get(), source.size, source.name);
    CHECK_FALSE(reader.mapped());
  }
  {
    // Told to (DiagnoseOptions::map_from, with the heap in a huge page), a reader copies the
    // larger log too; and the diagnosis comes out the same either way.
    Source source = open_source(path);
    ReverseLineReader reader(source.fd.get(), source.size, source.name,
                             ReverseLineReader::kDefaultBlockSize, ReadMode::kAuto, size + 1);
    CHECK_FALSE(reader.mapped());
    DiagnoseOptions in_place, copied;
    copied.map_from = size + 1;
    // diagnose() passes the bound on: read calls only where it copies (reading the count costs
    // read calls itself, as many each time).
    auto read_calls = [] { return test::proc_sum("/proc/self/io", {"syscr:"}); };
    const long long start = read_calls();
    const Report report = diagnose({path}, rules, in_place);
    const long long between = read_calls();
    const Report copied_report = diagnose({path}, rules, copied);
    CHECK(read_calls() - between > between - start);
    CHECK_FALSE(report.drives.empty());
    CHECK(format_json(copied_report, "test") == format_json(report, "test"));
  }
  for (std::size_t second_core_min : {std::size_t{0}, MatchOptions{}.second_core_min}) {
    CAPTURE(second_core_min);
    Source source = open_source(path);
    ReverseLineReader reader(source.fd.get(), size, source.name);
    REQUIRE(reader.mapped());
    MatchOptions options;
    options.second_core_min = second_core_min;
    auto matcher = match_lines(reader, LogFormat::kDmesg, rules, options);
    matcher.send(Want::all());
    CHECK(reader.split() == (second_core_min == 0));
  }
  CHECK(MatchOptions{}.second_core_min > static_cast<std::size_t>(size));
}

TEST_CASE("the format of a log read in place is recognised through the reader's mapping") {
  test::TempDir dir;
  std::mt19937 rng(15);
  std::string log = tricky_syslog(rng, 1000);
  while (log.size() < 70 * 1024) log += log;
  const std::string path = dir.write("syslog.log", log);
  if (!all_cached(path)) {
    MESSAGE("the page cache does not hold the files in " << dir.path() << ": nothing to check");
    return;
  }
  {
    Source source = open_source(path);
    REQUIRE(ReverseLineReader(source.fd.get(), source.size, source.name).mapped());
    REQUIRE(recognise_source_format(source.fd.get(), source.size, source.name) ==
            LogFormat::kSyslog);
  }
  // As the copy of its tail says (just above), and so with the same findings; and with no read
  // call on the way: the sample came through the mapping. Reading the count costs read calls
  // itself, as many each time: they are measured first.
  auto read_calls = [] { return test::proc_sum("/proc/self/io", {"syscr:"}); };
  const long long start = read_calls();
  const long long reading_the_count = read_calls() - start;
  const long long before = read_calls();
  const Report report = diagnose({path}, test::default_rule_set(), {});
  const long long after = read_calls();
  if (start < 0) {
    MESSAGE("this kernel keeps no count of read calls (/proc/self/io): the path is not checked");
  } else {
    CHECK(after - before == reading_the_count);
  }
  REQUIRE(report.sources.size() == 1);
  CHECK(report.sources[0].format == format_name(LogFormat::kSyslog));
  CHECK(report.sources[0].lines ==
        static_cast<std::uint64_t>(std::count(log.begin(), log.end(), '\n')));
  CHECK_FALSE(report.drives.empty());
}

TEST_CASE("dmesg stamps read by the fast path equal std::from_chars bit for bit") {
  std::mt19937_64 rng(3);
  char stamp[64];
  for (int i = 0; i < 200000; ++i) {
    unsigned long long seconds = rng() % (i % 2 ? 100000ULL : 100000000000ULL);
    unsigned long long fraction = rng() % 1000000;
    int width = 1 + static_cast<int>(rng() % 8);
    std::snprintf(stamp, sizeof stamp, "%*llu.%0*llu", 5, seconds, width,
                  fraction % (width >= 6 ? 1000000ULL : 1000ULL));
    Record r = parse_line(LogFormat::kDmesg, std::string("[") + stamp + "] sd 0:0:0:0: x");
    double expected = plain_seconds(stamp);
    CHECK_MESSAGE(r.monotonic == expected, stamp);
  }
  for (const std::string odd :
       {"1.", "0", "000000000001234.5", "1234567890123456.5", "1e3", "12.3.4", "  7.250000",
        "99999999999999.9", "9999999999999999", "0.000000000000001", "1.0000000000000001",
        // Shapes that reach the six-decimal path and must leave it for the general one.
        "12a4.567890", "1 34.567890", "1234.5678.9", "1234.56789x", "123456789.123456",
        "1234567890.123456", "0.000000", "1.1234567"}) {
    Record r = parse_line(LogFormat::kDmesg, "[" + odd + "] msg");
    CHECK_MESSAGE(r.monotonic == plain_seconds(odd), odd);
  }
}
