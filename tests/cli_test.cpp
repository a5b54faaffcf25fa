// Tests of the command line as a user meets it: exit statuses, one-line errors, outputs.
#include <doctest/doctest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

using diskfault::test::run_diskfault;
using diskfault::test::source_root;
using diskfault::test::TempDir;

namespace {

std::string seed_log() { return source_root() + "/testdata/seed-example/kern.log"; }

}  // namespace

TEST_CASE("the seed sample gives its two serials as JSON and exit status 1") {
  auto r = run_diskfault({seed_log()});
  CHECK(r.status == 1);
  CHECK(r.err.empty());
  auto doc = nlohmann::json::parse(r.out);
  REQUIRE(doc["drives"].size() == 2);
  CHECK(doc["drives"][0]["serial"] == "ZZ12345");
  CHECK(doc["drives"][1]["serial"] == "WW11111");
  CHECK(doc["schema_version"] == 1);
}

TEST_CASE("a missing file is one line on stderr, exit status 2 and nothing on stdout") {
  auto r = run_diskfault({"/nonexistent/kern.log"});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "diskfault: cannot open /nonexistent/kern.log: No such file or directory\n");
}

TEST_CASE("a directory given as a log is refused the same way") {
  TempDir dir;
  auto r = run_diskfault({dir.path().string()});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(r.err == "diskfault: cannot read " + dir.path().string() + ": Is a directory\n");
}

TEST_CASE("an unreadable file among good ones fails the whole run with nothing printed") {
  auto r = run_diskfault({seed_log(), "/nonexistent/b.log"});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
}

TEST_CASE("a healthy log exits 0 with an empty drive list") {
  TempDir dir;
  auto path = dir.write("ok.log", "[    1.0] XFS (sda1): Mounting V5 Filesystem\n");
  auto r = run_diskfault({path});
  CHECK(r.status == 0);
  CHECK(nlohmann::json::parse(r.out)["drives"].empty());
}

TEST_CASE("standard input is read when the log is '-'") {
  auto r =
      run_diskfault({"-", "--format", "table"},
                    "sd 0:0:0:0 (SERIAL=PIPE0001)\nsd 0:0:0:0 [sda] Options\nXFS ERROR [sda]\n");
  CHECK(r.status == 1);
  CHECK(r.out.find("PIPE0001") != std::string::npos);
  CHECK(r.out.find("SERIAL") == 0);
}

TEST_CASE("the table shows serial, bus, device, model, errors and last seen") {
  auto r = run_diskfault({seed_log(), "--format", "table"});
  CHECK(r.status == 1);
  CHECK(r.out.find("SERIAL   BUS      DEVICE  MODEL  ERRORS     LAST SEEN") == 0);
  CHECK(r.out.find("WW11111  3:0:1:8  sdc") != std::string::npos);
}

TEST_CASE("invalid UTF-8 in a log line still gives valid JSON") {
  TempDir dir;
  auto path = dir.write("bad.log", "sd 0:0:0:0 [sda] Options\nXFS ERROR [sda] \xff\xfe\n");
  auto r = run_diskfault({path});
  CHECK(r.status == 1);
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(doc.is_discarded());
  CHECK(doc["drives"][0]["evidence"][0]["text"] == "XFS ERROR [sda] \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("bad usage is one line on stderr, exit status 2 and nothing on stdout") {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--format", "yaml", seed_log()},
        {"--no-such-option"},
        {"--input-format", "csv", seed_log()},
        {"--rules", "/nonexistent/rules.json", seed_log()},
        {"follow", "--bogus"},
        {"follow", "--quiet-period", "5x"},
        {"follow", "--exec-timeout", "abc"},
        {"--sysfs-root", "/nonexistent/sys", "--this-host", seed_log()},
        {"--udev-root", "/nonexistent/udev", seed_log()}}) {
    auto r = run_diskfault(args);
    CAPTURE(args.front());
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("diskfault: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  CHECK(run_diskfault({"--rules", "/nonexistent/rules.json", seed_log()}).err ==
        "diskfault: --rules: File does not exist: /nonexistent/rules.json (see --help)\n");
  // A mistyped fake tree would otherwise read as a host without disks.
  CHECK(run_diskfault({"--sysfs-root", "/nonexistent/sys", seed_log()}).err ==
        "diskfault: --sysfs-root: Directory does not exist: /nonexistent/sys (see --help)\n");
}

TEST_CASE("a forced format the log does not have is a warning naming the file") {
  const std::string log = source_root() + "/testdata/dmesg-xfs-shutdown/dmesg.log";
  auto wrong = run_diskfault({"--input-format", "syslog", log});
  CHECK(wrong.err == "diskfault: warning: " + log +
                         ": its lines look like dmesg, not syslog as --input-format says: errors "
                         "in it may be missed\n");
  CHECK(wrong.out.find("\"schema_version\"") != std::string::npos);  // the report still stands
  auto right = run_diskfault({"--input-format", "dmesg", log});
  CHECK(right.err.empty());
  CHECK(right.status == 1);  // the faults are found
  auto check = run_diskfault({"check", "--input-format", "kmsg", log});
  CHECK(check.err.find("diskfault: warning: " + log + ": its lines look like dmesg, not kmsg") ==
        0);
}

TEST_CASE("--help and --version exit 0") {
  auto help = run_diskfault({"--help"});
  CHECK(help.status == 0);
  CHECK(help.out.find("LOG") != std::string::npos);
  auto version = run_diskfault({"--version"});
  CHECK(version.status == 0);
  CHECK(version.out.find("diskfault ") == 0);
}

TEST_CASE("rules --check accepts the shipped rules and names a broken rule") {
  auto ok = run_diskfault({"rules", "--check", source_root() + "/rules/default.json"});
  CHECK(ok.status == 0);
  TempDir dir;
  auto bad = dir.write("bad.json", R"j({"rules": [{"name": "mine", "yields": "error", "kind": "x",
      "pattern": "^boom (?P<device>\\w+)", "samples": ["bang sda"]}]})j");
  auto r = run_diskfault({"rules", "--check", bad});
  CHECK(r.status == 1);
  CHECK(r.err.find("rule 'mine': sample does not match: bang sda") != std::string::npos);
  auto broken = dir.write("broken.json", "{");
  auto b = run_diskfault({"rules", "--check", broken});
  CHECK(b.status == 2);
  CHECK(b.err == "diskfault: " + broken + ": not valid JSON (near byte 2)\n");
  // A pattern that does not compile is refused naming the file as well as the rule.
  auto bad_pattern = dir.write("bad-pattern.json", R"j({"rules": [{"name": "bad-re",
      "yields": "error", "kind": "xfs", "pattern": "^XFS \\((?P<device>[a-z", "samples": []}]})j");
  auto log = dir.write("kern.log", "XFS (sdc1): log I/O error -5\n");
  auto p = run_diskfault({"--rules", bad_pattern, log});
  CHECK(p.status == 2);
  CHECK(p.out.empty());
  CHECK(p.err.rfind("diskfault: " + bad_pattern + ": rule 'bad-re': bad pattern: ", 0) == 0);
  // Following standard input is refused at once rather than waiting for a file called "-".
  auto f = run_diskfault({"follow", "-"});
  CHECK(f.status == 2);
  CHECK(f.err.rfind("diskfault: follow: standard input cannot be followed", 0) == 0);
}

TEST_CASE("--rules adds rules that are tried before the built-in ones") {
  TempDir dir;
  auto rules =
      dir.write("mine.json", R"j({"rules": [{"name": "vendor-raid-error", "yields": "error",
      "kind": "raid", "pattern": "^myraid: disk (?P<device>sd[a-z]+) failed", "samples": ["myraid: disk sdb failed"]}]})j");
  auto log = dir.write("k.log", "myraid: disk sdb failed\n");
  auto r = run_diskfault({"--rules", rules, log});
  CHECK(r.status == 1);
  CHECK(nlohmann::json::parse(r.out)["drives"][0]["errors"]["by_kind"]["raid"] == 1);
  auto listed = run_diskfault({"rules", "--list", "--rules", rules});
  CHECK(listed.out.find("vendor-raid-error\terror\traid") == 0);
  auto only = run_diskfault({"--no-default-rules", "--rules", rules, seed_log()});
  CHECK(only.status == 0);
}
