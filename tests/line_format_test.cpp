// Tests of log line formats: prefix stripping per format, and detection.
#include "line_format.hpp"

#include <doctest/doctest.h>
#include <re2/re2.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace diskfault;

TEST_CASE("dmesg lines lose their stamp; dmesg -r lines their level too; bare lines stay whole") {
  Record r = parse_line(LogFormat::kDmesg, "[ 1234.567890] sd 2:0:0:0: [sdc] Attached SCSI disk");
  CHECK(r.message == "sd 2:0:0:0: [sdc] Attached SCSI disk");
  CHECK(r.time == "1234.567890");
  CHECK(r.monotonic == doctest::Approx(1234.56789));
  r = parse_line(LogFormat::kDmesg, "<3>[    5.000001] XFS (sdc1): log I/O error -5");
  CHECK(r.message == "XFS (sdc1): log I/O error -5");
  CHECK(r.monotonic == doctest::Approx(5.000001));
  r = parse_line(LogFormat::kDmesg, "XFS ERROR [sda]");
  CHECK(r.message == "XFS ERROR [sda]");
  CHECK(r.monotonic < 0);
}

TEST_CASE("dmesg -T lines keep their wall-clock stamp and have no monotonic time") {
  Record r =
      parse_line(LogFormat::kDmesgCtime, "[Sat Mar  2 18:07:17 2024] ata1.00: error: { UNC }");
  CHECK(r.message == "ata1.00: error: { UNC }");
  CHECK(r.time == "Sat Mar  2 18:07:17 2024");
  CHECK(r.monotonic < 0);
}

TEST_CASE("syslog kernel lines are stripped to the message, with and without the uptime") {
  Record r =
      parse_line(LogFormat::kSyslog,
                 "Nov 22 02:43:01 node17 kernel: [ 1234.567890] XFS (sdc1): log I/O error -5");
  CHECK(r.kernel);
  CHECK(r.program == "kernel");
  CHECK(r.time == "Nov 22 02:43:01");
  CHECK(r.message == "XFS (sdc1): log I/O error -5");
  CHECK(r.monotonic == doctest::Approx(1234.56789));
  r = parse_line(LogFormat::kSyslog,
                 "Feb  6 19:41:48 dom0 kernel: XFS (dm-2): Mounting V5 Filesystem");
  CHECK(r.message == "XFS (dm-2): Mounting V5 Filesystem");
  CHECK(r.monotonic < 0);
}

TEST_CASE("syslog lines of other programs are marked as not from the kernel") {
  Record r = parse_line(LogFormat::kSyslog,
                        "Sep 24 21:03:15 san smartd[6478]: Device: /dev/sdd [SAT], opened");
  CHECK_FALSE(r.kernel);
  CHECK(r.program == "smartd");
  CHECK(r.message == "Device: /dev/sdd [SAT], opened");
}

TEST_CASE("ISO-8601 syslog and journalctl -o short-iso lines are stripped") {
  Record r = parse_line(
      LogFormat::kSyslog,
      "2026-11-22T02:43:01.123456+00:00 node17 kernel: sd 2:0:0:0: [sdc] Attached SCSI disk");
  CHECK(r.time == "2026-11-22T02:43:01.123456+00:00");
  CHECK(r.message == "sd 2:0:0:0: [sdc] Attached SCSI disk");
}

TEST_CASE("journalctl separators are boot separators or meta lines") {
  CHECK(parse_line(LogFormat::kSyslog, "-- Boot 4f2c0a1b2c3d4e5f60718293a4b5c6d7 --").kind ==
        RecordKind::kBootSeparator);
  CHECK(parse_line(LogFormat::kSyslog, "-- Reboot --").kind == RecordKind::kBootSeparator);
  CHECK(parse_line(LogFormat::kSyslog, "-- Logs begin at Mon 2026-11-02 10:00:00 UTC. --").kind ==
        RecordKind::kMeta);
}

TEST_CASE("journalctl -o short-monotonic lines are stripped") {
  Record r = parse_line(LogFormat::kJournalMonotonic,
                        "[ 1234.567890] node17 kernel: XFS (sdc1): log I/O error -5");
  CHECK(r.kernel);
  CHECK(r.message == "XFS (sdc1): log I/O error -5");
  CHECK(r.monotonic == doctest::Approx(1234.56789));
}

TEST_CASE("RFC 5424 lines are stripped past the structured data") {
  Record r =
      parse_line(LogFormat::kRfc5424,
                 "<3>1 2020-12-02T21:55:55.868746+01:00 host1 kernel - - - blk_update_request: "
                 "critical medium error, dev sdd, sector 20975184");
  CHECK(r.kernel);
  CHECK(r.time == "2020-12-02T21:55:55.868746+01:00");
  CHECK(r.message == "blk_update_request: critical medium error, dev sdd, sector 20975184");
  r = parse_line(
      LogFormat::kRfc5424,
      "<6>1 2020-12-02T21:55:55Z host1 kernel - - [meta x=\"a]b\"][o y=\"1\"] sd 3:0:0:1: [sdd] x");
  CHECK(r.message == "sd 3:0:0:1: [sdd] x");
}

TEST_CASE("kmsg records give level, stamp and message; continuation lines are marked") {
  Record r = parse_line(LogFormat::kKmsg,
                        "3,1243,9436467335,-;print_req_error: I/O error, dev sdf, sector 9984");
  CHECK(r.kernel);
  CHECK(r.time == "9436467335");
  CHECK(r.monotonic == doctest::Approx(9436.467335));
  CHECK(r.message == "print_req_error: I/O error, dev sdf, sector 9984");
  CHECK(parse_line(LogFormat::kKmsg, " DEVICE=+scsi:6:0:0:0").kind == RecordKind::kContinuation);
  CHECK_FALSE(
      parse_line(LogFormat::kKmsg, "12,5,100,-;systemd[1]: hello").kernel);  // facility user
  CHECK_FALSE(parse_line(LogFormat::kKmsg, "10 writing to inode 12").kernel);
}

TEST_CASE("format names round-trip") {
  for (auto f : {LogFormat::kDmesg, LogFormat::kDmesgCtime, LogFormat::kSyslog,
                 LogFormat::kJournalMonotonic, LogFormat::kRfc5424, LogFormat::kKmsg}) {
    CHECK(parse_format_name(format_name(f)) == f);
  }
  CHECK_FALSE(parse_format_name("csv").has_value());
}

TEST_CASE("each format is detected from a sample of its lines") {
  auto detect = [](std::vector<std::string> lines) { return detect_format(lines); };
  CHECK(detect({"[    1.000000] Linux version 6.1.0",
                "[    2.5] sd 0:0:0:0: [sda] Attached SCSI disk"}) == LogFormat::kDmesg);
  CHECK(detect({"<6>[    1.000000] Linux version 6.1.0"}) == LogFormat::kDmesg);
  CHECK(detect({"[Sat Mar  2 18:07:17 2024] ata1: EH complete"}) == LogFormat::kDmesgCtime);
  CHECK(detect({"Nov 22 02:43:01 node17 kernel: [ 1.0] x",
                "Nov 22 02:43:02 node17 smartd[1]: y"}) == LogFormat::kSyslog);
  CHECK(detect({"2026-11-22T02:43:01.123456+00:00 node17 kernel: x"}) == LogFormat::kSyslog);
  CHECK(detect({"[ 1234.567890] node17 kernel: x", "[ 1234.567891] node17 systemd[1]: y"}) ==
        LogFormat::kJournalMonotonic);
  CHECK(detect({"<6>1 2020-12-02T21:55:55.868531+01:00 h kernel - - - x"}) == LogFormat::kRfc5424);
  CHECK(detect({"6,1239,9436467326,-;sd 6:0:0:0: x", " SUBSYSTEM=scsi"}) == LogFormat::kKmsg);
  CHECK(detect({"sd 0:0:0:0 Attached Disk Drive", "XFS ERROR [sda]"}) == LogFormat::kDmesg);
  CHECK(detect({}) == LogFormat::kDmesg);
}

TEST_CASE("the format shapes accept exactly what their regular expressions do") {
  // The expressions in line_format.cpp's comments, as RE2 reads them byte-wise: the
  // specification the hand-written shapes (a tenth of the start-up cost) are held to.
  RE2::Options bytes;
  bytes.set_encoding(RE2::Options::EncodingLatin1);
  const RE2 kmsg(R"(^\d+,\d+,\d+,[^;]*;)", bytes);
  const RE2 rfc5424(R"(^<\d{1,3}>1 \d{4}-\d\d-\d\dT\S+ \S+ \S+ \S+ \S+ )", bytes);
  const RE2 syslog(
      R"(^(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ [^\s:]+:(?: |$))",
      bytes);
  const RE2 journal(R"(^\[\s*\d+\.\d+\] \S+ kernel: )", bytes);
  const RE2 ctime(R"(^(?:<\d{1,3}>)?\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\])",
                  bytes);
  const RE2 dmesg(R"(^(?:<\d{1,3}>)?\[\s*\d+\.\d+\])", bytes);

  // Every line of every test log, a line of each shape, and damaged copies of them all.
  std::vector<std::string> lines = {
      "6,1239,9436467326,-;sd 6:0:0:0: x",
      "<6>1 2020-12-02T21:55:55.868531+01:00 h kernel - - - x",
      "<13>Nov  2 02:43:01 node17 kernel:",
      "2026-11-22T02:43:01.123456+00:00 node17 kernel: x",
      "[ 1234.567890] node17 kernel: x",
      "<4>[Sat Mar  2 18:07:17 2024] ata1: EH complete",
      "<3>[\t 5.000001] XFS (sdc1): log I/O error -5",
  };
  const std::size_t kWritten = lines.size();
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(test::source_root() + "/testdata")) {
    if (entry.path().extension() != ".log") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  REQUIRE(lines.size() > 500);
  const std::string alphabet = "0123456789<>[]:;,.-T \t\f\r\nAZaz\xe9";
  std::mt19937 rng(11);
  const std::size_t originals = lines.size();
  for (std::size_t i = 0; i < originals; ++i) {
    // The lines written above stand for shapes that few test logs have: more copies of them.
    for (int copy = 0; copy < (i < kWritten ? 400 : 40); ++copy) {
      std::string line = lines[i];
      for (int edit = 1 + static_cast<int>(rng() % 3); edit > 0 && !line.empty(); --edit) {
        // The shapes read the first bytes: damage those most.
        const std::size_t at = rng() % std::min<std::size_t>(line.size(), 48);
        const char c = alphabet[rng() % alphabet.size()];
        switch (rng() % 4) {
          case 0:
            line[at] = c;
            break;
          case 1:
            line.insert(line.begin() + static_cast<std::ptrdiff_t>(at), c);
            break;
          case 2:
            line.erase(at, 1);
            break;
          default:
            line.resize(at);
            break;
        }
      }
      lines.push_back(line);
    }
  }
  std::array<std::size_t, 6> fits{};
  for (const std::string& line : lines) {
    CAPTURE(line);
    const FormatShapes shapes = format_shapes(line);
    const std::array<std::pair<bool, const RE2*>, 6> pairs{{{shapes.kmsg, &kmsg},
                                                            {shapes.rfc5424, &rfc5424},
                                                            {shapes.syslog, &syslog},
                                                            {shapes.journal_monotonic, &journal},
                                                            {shapes.dmesg_ctime, &ctime},
                                                            {shapes.dmesg, &dmesg}}};
    for (std::size_t k = 0; k < pairs.size(); ++k) {
      CAPTURE(k);
      REQUIRE(pairs[k].first == RE2::PartialMatch(line, *pairs[k].second));
      fits[k] += pairs[k].first;
    }
  }
  // Each shape met many lines that fit it, not only lines that do not.
  for (std::size_t count : fits) CHECK(count > 100);
}
