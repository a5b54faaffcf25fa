// Tests of the health check: what counts as new, rotated logs and reboots, output, exit codes,
// runs.
#include "check.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "source.hpp"
#include "test_support.hpp"

using diskfault::Change;
using diskfault::CheckContext;
using diskfault::CheckOutcome;
using diskfault::CheckState;
using diskfault::CheckStatus;
using diskfault::compare_with_state;
using diskfault::ExitStyle;
using diskfault::Report;
using diskfault::test::diagnose_text;
using diskfault::test::run_diskfault;
using diskfault::test::TempDir;

namespace {

constexpr std::int64_t kDay = 24 * 3600;
constexpr std::int64_t kNow = 1700000000;

const std::string kBoot =
    "Jan  2 03:00:00 host kernel: [    0.000000] Linux version 6.1.0-13-amd64 "
    "(debian-kernel@lists.debian.org) (gcc-12) #1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 "
    "(2023-09-29)\n";
const std::string kDrives =
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
    "S/N:WD-WCC1T0000001, WWN:5-0014ee-0aabbccdd, FW:80.00A80, 3.00 TB\n";

// An I/O error on sdc `n` steps into the boot (kernel stamps grow with n, as the syslog times do).
std::string sdc_error(int n) {
  int stamp = 3600 + n * 200;
  char time[16];
  std::snprintf(time, sizeof time, "%02d:%02d:%02d", 3 + stamp / 3600, stamp / 60 % 60, stamp % 60);
  return "Jan  2 " + std::string(time) + " host kernel: [" + std::to_string(stamp) +
         ".000000] blk_update_request: I/O error, dev sdc, sector " + std::to_string(1000 + n) +
         " op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n";
}

const std::string kSddError =
    "Jan  2 04:15:00 host kernel: [ 4500.000000] Buffer I/O error on dev sdd1, logical block "
    "154320, async page read\n";

// Two faulty drives with serials: sdc (Z1Z3ABCD) with three errors, sdd (WD-WCC1T0000001) with one.
std::string two_drives_log() {
  return kBoot + kDrives + sdc_error(0) + sdc_error(1) + sdc_error(2) + kSddError;
}

CheckContext at(std::int64_t now, bool remind = false) {
  CheckContext context;
  context.now = now;
  context.remind = remind;
  return context;
}

// Runs one check of `log` against `state` and keeps the state it leaves, as the command does.
struct Checker {
  CheckState state;
  Report report;
  CheckOutcome check(const std::string& log, const CheckContext& context) {
    report = diagnose_text(log);
    CheckOutcome outcome = compare_with_state(report, state, context);
    state = outcome.next;
    return outcome;
  }
  CheckOutcome check_report(Report r, const CheckContext& context) {
    report = std::move(r);
    CheckOutcome outcome = compare_with_state(report, state, context);
    state = outcome.next;
    return outcome;
  }
  // The change found for the drive with `serial` in the last report.
  Change change_of(const CheckOutcome& outcome, const std::string& serial) const {
    for (const auto& c : outcome.drives) {
      const auto& f = report.drives[c.index];
      if (f.serial && f.serial->value == serial) return c.change;
    }
    FAIL("no drive with serial " << serial);
    return Change::kKnown;
  }
};

diskfault::Position at_end(std::uint64_t from_end) {
  diskfault::Position at;
  at.from_end = from_end;
  return at;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("the exit codes follow the Nagios plugin API and node-problem-detector's") {
  CHECK(diskfault::exit_code(CheckStatus::kOk, ExitStyle::kNagios) == 0);
  CHECK(diskfault::exit_code(CheckStatus::kWarning, ExitStyle::kNagios) == 1);
  CHECK(diskfault::exit_code(CheckStatus::kCritical, ExitStyle::kNagios) == 2);
  CHECK(diskfault::exit_code(CheckStatus::kUnknown, ExitStyle::kNagios) == 3);
  CHECK(diskfault::exit_code(CheckStatus::kOk, ExitStyle::kNpd) == 0);
  CHECK(diskfault::exit_code(CheckStatus::kWarning, ExitStyle::kNpd) == 1);
  CHECK(diskfault::exit_code(CheckStatus::kCritical, ExitStyle::kNpd) == 1);
  CHECK(diskfault::exit_code(CheckStatus::kUnknown, ExitStyle::kNpd) == 2);
}

TEST_CASE("the first check reports every faulty drive as new, the second nothing") {
  Checker checker;
  auto first = checker.check(two_drives_log(), at(kNow));
  CHECK(first.status == CheckStatus::kCritical);
  CHECK(checker.change_of(first, "Z1Z3ABCD") == Change::kNew);
  CHECK(checker.change_of(first, "WD-WCC1T0000001") == Change::kNew);
  CHECK(first_line(diskfault::format_check(checker.report, first)) ==
        "DISKFAULT CRITICAL - 2 new faulty drives: serial WD-WCC1T0000001 (sdd, 3:0:0:0, WDC "
        "WD30EFRX-68AX9N0), serial Z1Z3ABCD (sdc, 2:0:0:0, ST4000NM0033-9ZM170) | "
        "faulty_drives=2;;;0 new_faulty_drives=2;;;0 worse_faulty_drives=0;;;0 "
        "unresolved_errors=0;;;0");

  auto second = checker.check(two_drives_log(), at(kNow + 300));
  CHECK(second.status == CheckStatus::kOk);
  CHECK(diskfault::format_check(checker.report, second) ==
        "DISKFAULT OK - nothing new (reported before: 2 faulty drives) | faulty_drives=2;;;0 "
        "new_faulty_drives=0;;;0 worse_faulty_drives=0;;;0 unresolved_errors=0;;;0\n");
}

TEST_CASE("one more error makes only that drive worse, saying by how much") {
  Checker checker;
  checker.check(two_drives_log(), at(kNow));
  auto outcome = checker.check(two_drives_log() + sdc_error(30), at(kNow + 300));
  CHECK(outcome.status == CheckStatus::kCritical);
  CHECK(checker.change_of(outcome, "Z1Z3ABCD") == Change::kWorse);
  CHECK(checker.change_of(outcome, "WD-WCC1T0000001") == Change::kKnown);
  std::string text = diskfault::format_check(checker.report, outcome);
  CHECK(first_line(text).starts_with(
      "DISKFAULT CRITICAL - 1 faulty drive got worse: serial Z1Z3ABCD (sdc, 2:0:0:0, "
      "ST4000NM0033-9ZM170) | "));
  CHECK(text.find("worse: serial Z1Z3ABCD (sdc, 2:0:0:0, ST4000NM0033-9ZM170): errors increased "
                  "from 3 to 4 (io:4), last on line ") != std::string::npos);
  CHECK(text.find("WD-WCC1T0000001") == std::string::npos);
  // The cron mail shows the newest error line itself.
  CHECK(text.find("\n  " + sdc_error(30)) != std::string::npos);
}

TEST_CASE("a clean log is OK and says so") {
  Checker checker;
  auto outcome = checker.check(kBoot + kDrives, at(kNow));
  CHECK(outcome.status == CheckStatus::kOk);
  CHECK(first_line(diskfault::format_check(checker.report, outcome))
            .starts_with("DISKFAULT OK - nothing new, no disk errors in the log | "));
}

TEST_CASE("--remind keeps known faulty drives at WARNING and lists them") {
  Checker checker;
  checker.check(two_drives_log(), at(kNow));
  auto plain = checker.check(two_drives_log(), at(kNow + 60));
  CHECK(plain.status == CheckStatus::kOk);
  auto remind = checker.check(two_drives_log(), at(kNow + 120, true));
  CHECK(remind.status == CheckStatus::kWarning);
  std::string text = diskfault::format_check(checker.report, remind);
  CHECK(
      first_line(text).starts_with("DISKFAULT WARNING - nothing new (reported before: 2 faulty "
                                   "drives): serial WD-WCC1T0000001"));
  CHECK(count_of(text, "\nknown: ") == 2);
}

TEST_CASE("errors that cannot be tied to a drive are a WARNING once") {
  Checker checker;
  std::string log =
      kBoot +
      "Jan  2 04:00:00 host kernel: [ 3600.000000] XFS (dm-3): writeback error on sector 1987234\n";
  auto first = checker.check(log, at(kNow));
  CHECK(first.status == CheckStatus::kWarning);
  std::string text = diskfault::format_check(checker.report, first);
  CHECK(first_line(text).starts_with(
      "DISKFAULT WARNING - new errors not tied to a drive on dm-3 | "));
  CHECK(first_line(text).ends_with(" unresolved_errors=1;;;0"));
  CHECK(checker.check(log, at(kNow + 60)).status == CheckStatus::kOk);
  CHECK(checker.check(log, at(kNow + 60, true)).status == CheckStatus::kWarning);
  // A faulty drive outranks them.
  CHECK(checker.check(log + two_drives_log(), at(kNow + 120)).status == CheckStatus::kCritical);
}

TEST_CASE("a log rotated past a known drive's oldest lines is not a new fault") {
  // A drive without a serial: after rotation neither its boot's first line nor its bus address
  // is in the log any more, only its newest errors.
  const std::string head =
      "[    0.000000] Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org) #1 SMP\n"
      "[    1.000000] scsi 2:0:0:0: Direct-Access     ATA      ST4000NM0033-9ZM SN03 PQ: 0 ANSI: "
      "5\n"
      "[    1.100000] sd 2:0:0:0: [sdc] 7814037168 512-byte logical blocks: (4.00 TB/3.64 TiB)\n"
      "[  100.000000] I/O error, dev sdc, sector 1 op 0x0:(READ) flags 0x0 phys_seg 1 prio class "
      "0\n";
  const std::string tail =
      "[  101.000000] I/O error, dev sdc, sector 2 op 0x0:(READ) flags 0x0 phys_seg 1 prio class "
      "0\n"
      "[  102.000000] I/O error, dev sdc, sector 3 op 0x0:(READ) flags 0x0 phys_seg 1 prio class "
      "0\n";
  Checker checker;
  auto first = checker.check(head + tail, at(kNow));
  REQUIRE(checker.report.drives.size() == 1);
  CHECK(first.drives[0].change == Change::kNew);

  auto rotated = checker.check(tail, at(kNow + 60));
  REQUIRE(checker.report.drives.size() == 1);
  CHECK(rotated.drives[0].change == Change::kKnown);
  CHECK(rotated.status == CheckStatus::kOk);

  // The next error after the rotation is counted from what the rotated log holds.
  const std::string more =
      "[  200.000000] I/O error, dev sdc, sector 4 op 0x0:(READ) flags 0x0 phys_seg 1 prio class "
      "0\n";
  auto worse = checker.check(tail + more, at(kNow + 120));
  CHECK(worse.drives[0].change == Change::kWorse);
  CHECK(diskfault::format_check(checker.report, worse).find("errors increased from 2 to 3") !=
        std::string::npos);
}

TEST_CASE("new errors are reported even when rotation drops as many old ones") {
  Checker checker;
  checker.check(two_drives_log(), at(kNow));
  // Same boot and drives, the oldest sdc error rotated away and a new one added: still 3.
  auto outcome = checker.check(
      kBoot + kDrives + sdc_error(1) + sdc_error(2) + kSddError + sdc_error(40), at(kNow + 60));
  CHECK(checker.change_of(outcome, "Z1Z3ABCD") == Change::kWorse);
  CHECK(checker.change_of(outcome, "WD-WCC1T0000001") == Change::kKnown);
  CHECK(diskfault::format_check(checker.report, outcome)
            .find("new errors since the last check (3 in the log now, 3 before)") !=
        std::string::npos);
}

TEST_CASE("a drive the log no longer shows is remembered, then forgotten after the expiry") {
  Checker checker;
  checker.check(two_drives_log(), at(kNow));
  // Rotated: only sdd's error is left.
  const std::string sdd_only = kBoot + kDrives + kSddError;
  auto gone = checker.check(sdd_only, at(kNow + 10 * kDay));
  CHECK(gone.status == CheckStatus::kOk);
  CHECK(gone.forgotten == 0);
  REQUIRE(checker.state.drives.size() == 2);
  // Shown again within the expiry (an older file passed once more): not new.
  CheckState remembered = checker.state;
  auto again = checker.check(two_drives_log(), at(kNow + 20 * kDay));
  CHECK(again.status == CheckStatus::kOk);
  // After the expiry it is dropped, and reported afresh if it shows up in a log with nothing the
  // state remembers.
  checker.state = remembered;
  auto expired = checker.check(sdd_only, at(kNow + 41 * kDay));
  CHECK(expired.forgotten == 1);
  CHECK(checker.state.drives.size() == 1);
  auto back = checker.check(kBoot + kDrives + sdc_error(0), at(kNow + 42 * kDay));
  CHECK(checker.change_of(back, "Z1Z3ABCD") == Change::kNew);
}

namespace {

// A drive's finding with one error per line name, the newest last; `from_end` of the newest.
diskfault::Finding finding_with(std::optional<std::string> hctl, std::optional<std::string> port,
                                const std::vector<std::string>& lines, std::uint64_t from_end,
                                bool stamped) {
  diskfault::Finding f;
  f.hctl = std::move(hctl);
  f.port = std::move(port);
  if (f.hctl) f.devices = {"sdc"};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    diskfault::Position at;
    at.from_end = from_end + (lines.size() - 1 - i);
    if (stamped) at.time = lines[i];
    f.errors.add("io", at, "[" + lines[i] + "] I/O error, dev sdc");
  }
  return f;
}

Report report_of(std::vector<diskfault::Finding> drives) {
  Report report;
  report.sources.push_back({"kern.log", "dmesg", 100, 1});
  report.drives = std::move(drives);
  return report;
}

}  // namespace

TEST_CASE("errors a rotation split off a known drive are not new when older than a seen line") {
  // The last check saw eight errors of one drive; a rotation took the first one and the line
  // that tied the next two to the drive's address: they now form a finding of their own, keyed
  // by the libata port only, and neither of them was among the lines the state remembers.
  const std::vector<std::string> all = {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"};
  for (bool stamped : {true, false}) {
    CAPTURE(stamped);
    Checker checker;
    checker.check_report(report_of({finding_with("2:0:0:0", {}, all, 13, stamped)}), at(kNow));
    auto split = checker.check_report(
        report_of({finding_with("2:0:0:0", {}, {"t3", "t4", "t5", "t6", "t7"}, 5, stamped),
                   finding_with({}, "ata3.00", {"t1", "t2"}, 10, stamped)}),
        at(kNow + 60));
    CHECK(split.drives[0].change == Change::kKnown);
    // Lines without stamps may repeat word for word, so only stamped ones vouch for older lines.
    CHECK(split.drives[1].change == (stamped ? Change::kKnown : Change::kNew));
  }
  // A part that is newer than every line the last check saw is news.
  Checker checker;
  checker.check_report(report_of({finding_with("2:0:0:0", {}, all, 13, true)}), at(kNow));
  auto fresh = checker.check_report(
      report_of({finding_with("2:0:0:0", {}, {"t3", "t4", "t5", "t6", "t7"}, 5, true),
                 finding_with({}, "ata3.00", {"t8"}, 1, true)}),
      at(kNow + 60));
  CHECK(fresh.drives[0].change == Change::kKnown);
  CHECK(fresh.drives[1].change == Change::kNew);
}

TEST_CASE("a reboot that renames the devices does not report old faults again") {
  // Boot 1: a drive without a serial fails as sdc at 2:0:0:0. Boot 2: the names move, another
  // disk is sdc now; no new errors anywhere.
  const std::string boot1 =
      "[    0.000000] Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org) #1 SMP 1\n"
      "[    1.000000] scsi 2:0:0:0: Direct-Access     ATA      ST4000NM0033-9ZM SN03 PQ: 0 ANSI: "
      "5\n"
      "[    1.100000] sd 2:0:0:0: [sdc] 7814037168 512-byte logical blocks: (4.00 TB/3.64 TiB)\n"
      "[    1.200000] scsi 3:0:0:0: Direct-Access     ATA      WDC WD30EFRX-68A 0A80 PQ: 0 ANSI: "
      "6\n"
      "[    1.300000] sd 3:0:0:0: [sdd] 5860533168 512-byte logical blocks: (3.00 TB/2.73 TiB)\n"
      "[  100.000000] I/O error, dev sdc, sector 1 op 0x0:(READ) flags 0x0 phys_seg 1 prio class "
      "0\n";
  const std::string boot2 =
      "[    0.000000] Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org) #1 SMP 2\n"
      "[    1.000000] scsi 2:0:0:0: Direct-Access     ATA      ST4000NM0033-9ZM SN03 PQ: 0 ANSI: "
      "5\n"
      "[    1.100000] sd 2:0:0:0: [sdd] 7814037168 512-byte logical blocks: (4.00 TB/3.64 TiB)\n"
      "[    1.200000] scsi 3:0:0:0: Direct-Access     ATA      WDC WD30EFRX-68A 0A80 PQ: 0 ANSI: "
      "6\n"
      "[    1.300000] sd 3:0:0:0: [sdc] 5860533168 512-byte logical blocks: (3.00 TB/2.73 TiB)\n";
  Checker checker;
  CHECK(checker.check(boot1, at(kNow)).status == CheckStatus::kCritical);
  CHECK(checker.check(boot1 + boot2, at(kNow + 60)).status == CheckStatus::kOk);
  // An error on the new sdc is another drive, in another boot: new.
  auto outcome = checker.check(boot1 + boot2 +
                                   "[  100.000000] I/O error, dev sdc, sector 9 op 0x0:(READ) "
                                   "flags 0x0 phys_seg 1 prio class 0\n",
                               at(kNow + 120));
  CHECK(outcome.status == CheckStatus::kCritical);
  CHECK(outcome.count(outcome.drives, Change::kNew) == 1);
  CHECK(outcome.count(outcome.drives, Change::kKnown) == 1);
}

TEST_CASE("a drive swapped in at a reported drive's address is a new drive") {
  const std::string first =
      "[    0.000000] Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org) #1 SMP\n"
      "[    1.000000] sd 2:0:0:0 Attached Disk Drive\n"
      "[    1.000100] sd 2:0:0:0 (SERIAL=OLD00001)\n"
      "[    1.000200] sd 2:0:0:0 [sdc] Options\n"
      "[  100.000000] XFS ERROR [sdc]\n"
      "[  101.000000] sd 2:0:0:0: [sdc] Synchronizing SCSI cache\n";
  const std::string swapped =
      "[  200.000000] sd 2:0:0:0 Attached Disk Drive\n"
      "[  200.000100] sd 2:0:0:0 (SERIAL=NEW00002)\n"
      "[  200.000200] sd 2:0:0:0 [sdc] Options\n"
      "[  300.000000] XFS ERROR [sdc]\n";
  Checker checker;
  checker.check(first, at(kNow));
  auto outcome = checker.check(first + swapped, at(kNow + 60));
  REQUIRE(checker.report.drives.size() == 2);
  CHECK(checker.change_of(outcome, "OLD00001") == Change::kKnown);
  CHECK(checker.change_of(outcome, "NEW00002") == Change::kNew);
}

TEST_CASE("two drives without serials at one address in one boot keep their own counts") {
  const std::string old_drive =
      "[    0.000000] Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org) #1 SMP\n"
      "[    1.000000] sd 2:0:0:0 Attached Disk Drive\n"
      "[    1.000200] sd 2:0:0:0 [sdc] Options\n"
      "[  100.000000] XFS ERROR [sdc]\n"
      "[  101.000000] sd 2:0:0:0: [sdc] Synchronizing SCSI cache\n";
  const std::string new_drive =
      "[  200.000000] sd 2:0:0:0 Attached Disk Drive\n"
      "[  200.000200] sd 2:0:0:0 [sdc] Options\n"
      "[  300.000000] XFS ERROR [sdc]\n";
  Checker checker;
  auto first = checker.check(old_drive + new_drive, at(kNow));
  REQUIRE(checker.report.drives.size() == 2);
  CHECK(first.count(first.drives, Change::kNew) == 2);
  auto second =
      checker.check(old_drive + new_drive + "[  400.000000] XFS ERROR [sdc]\n", at(kNow + 60));
  REQUIRE(checker.report.drives.size() == 2);
  CHECK(second.count(second.drives, Change::kWorse) == 1);
  CHECK(second.count(second.drives, Change::kKnown) == 1);
  for (const auto& c : second.drives) {
    // The newer presence (its error at 300 s) got worse, from 1 to 2.
    if (c.change == Change::kWorse) {
      CHECK(c.errors_before == 1);
      CHECK(checker.report.drives[c.index].errors.total() == 2);
    }
  }
  CHECK(checker.state.drives.size() == 2);
}

TEST_CASE("drives in the live kernel log belong to the running boot, by boot id") {
  auto kmsg_report = [](int errors) {
    Report report;
    report.sources.push_back({diskfault::kKernelLogPath, "kmsg", 100, 1});
    diskfault::Finding f;
    f.hctl = "2:0:0:0";
    f.devices = {"sdc"};
    for (int i = 0; i < errors; ++i) {
      f.errors.add("io", at_end(static_cast<std::uint64_t>(errors - i)),
                   "3," + std::to_string(500 + i) + ",100,-;I/O error, dev sdc, sector " +
                       std::to_string(i));
    }
    report.drives.push_back(f);
    return report;
  };
  auto in_boot = [](const std::string& id) {
    CheckContext context = at(kNow);
    context.live_boot_id = id;
    return context;
  };
  Checker checker;
  CHECK(checker.check_report(kmsg_report(2), in_boot("boot-a")).drives[0].change == Change::kNew);
  CHECK(checker.check_report(kmsg_report(2), in_boot("boot-a")).drives[0].change == Change::kKnown);
  CHECK(checker.check_report(kmsg_report(3), in_boot("boot-a")).drives[0].change == Change::kWorse);
  // After a reboot the same address and name are another presence: its errors are new.
  auto rebooted = kmsg_report(1);
  rebooted.drives[0].errors = {};
  rebooted.drives[0].errors.add("io", at_end(1), "3,9,100,-;I/O error, dev sdc, sector 77");
  CHECK(checker.check_report(rebooted, in_boot("boot-b")).drives[0].change == Change::kNew);
  CHECK(checker.state.drives.size() == 2);
}

TEST_CASE("log text cannot break the one status line or fake performance data") {
  const std::string log =
      "[    1.000000] sd 2:0:0:0 Attached Disk Drive\n"
      "[    1.000100] sd 2:0:0:0 (SERIAL=AB|C\x01"
      "D)\n"
      "[    1.000200] sd 2:0:0:0 [sdc] Options\n"
      "[  100.000000] XFS ERROR [sdc] x=1|y=2\xff\x02\n";
  Checker checker;
  auto outcome = checker.check(log, at(kNow));
  std::string text = diskfault::format_check(checker.report, outcome);
  std::string status = first_line(text);
  CHECK(count_of(status, "|") == 1);
  CHECK(count_of(text, "|") == 1);
  CHECK(status.find("serial AB\xC2\xA6"
                    "C?D (sdc, 2:0:0:0)") != std::string::npos);
  CHECK(text.ends_with("x=1\xC2\xA6y=2\xEF\xBF\xBD?\n"));
  CHECK(nlohmann::json(text).dump().size() > 0);  // valid UTF-8, or dump() would throw
}

TEST_CASE("changed_findings keeps only new and worse findings") {
  Checker checker;
  checker.check(two_drives_log(), at(kNow));
  auto outcome = checker.check(two_drives_log() + sdc_error(30), at(kNow + 60));
  Report changed = diskfault::changed_findings(checker.report, outcome);
  REQUIRE(changed.drives.size() == 1);
  CHECK(changed.drives[0].serial->value == "Z1Z3ABCD");
  CHECK(changed.sources.size() == 1);
}

// The user stories of the issue, with the built binary.

namespace {

struct CheckRun {
  TempDir dir;
  std::string log = dir.write("kern.log", two_drives_log());
  std::string state = (dir.path() / "state.json").string();

  diskfault::test::RunResult check(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"check", "--state", state};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(log);
    return run_diskfault(args);
  }
  void append(const std::string& text) const {
    std::ofstream out(log, std::ios::app | std::ios::binary);
    out << text;
  }
};

}  // namespace

TEST_CASE("check: first run exits 2 naming both drives, then 0 with nothing new") {
  CheckRun run;
  auto first = run.check();
  CHECK(first.status == 2);
  CHECK(first.err.empty());
  CHECK(first_line(first.out).starts_with("DISKFAULT CRITICAL - 2 new faulty drives: "));
  CHECK(count_of(first.out, "Z1Z3ABCD") == 2);  // status line and its own line
  CHECK(count_of(first.out, "WD-WCC1T0000001") == 2);
  CHECK(count_of(first.out, "\nnew: serial ") == 2);

  auto second = run.check();
  CHECK(second.status == 0);
  CHECK(second.err.empty());
  CHECK(second.out.starts_with("DISKFAULT OK - nothing new"));
  CHECK(count_of(second.out, "\n") == 1);
}

TEST_CASE("check: one more error for one drive exits 2 naming only it, with the counts") {
  CheckRun run;
  REQUIRE(run.check().status == 2);
  REQUIRE(run.check().status == 0);
  run.append(sdc_error(30));
  auto third = run.check();
  CHECK(third.status == 2);
  CHECK(third.out.find("errors increased from 3 to 4") != std::string::npos);
  CHECK(third.out.find("Z1Z3ABCD") != std::string::npos);
  CHECK(third.out.find("WD-WCC1T0000001") == std::string::npos);
  CHECK(run.check().status == 0);
}

TEST_CASE("check: deleting the state starts over") {
  CheckRun run;
  REQUIRE(run.check().status == 2);
  REQUIRE(run.check().status == 0);
  std::filesystem::remove(run.state);
  auto again = run.check();
  CHECK(again.status == 2);
  CHECK(first_line(again.out).starts_with("DISKFAULT CRITICAL - 2 new faulty drives: "));
}

TEST_CASE("check: a corrupt state file warns on stderr, reports everything and is rebuilt") {
  CheckRun run;
  REQUIRE(run.check().status == 2);
  std::string saved;
  {
    std::ifstream in(run.state);
    saved.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  {
    std::ofstream out(run.state, std::ios::trunc);
    out << saved.substr(0, saved.size() / 2);  // truncated
  }
  auto recovered = run.check();
  CHECK(recovered.status == 2);
  CHECK(count_of(recovered.err, "\n") == 1);
  CHECK(recovered.err.starts_with("diskfault: warning: state file " + run.state + " is corrupt"));
  CHECK(first_line(recovered.out).starts_with("DISKFAULT CRITICAL - 2 new faulty drives: "));
  auto after = run.check();
  CHECK(after.status == 0);
  CHECK(after.err.empty());
}

TEST_CASE("check: the state file is private (0600) and has a lock file beside it") {
  CheckRun run;
  ::umask(022);
  REQUIRE(run.check().status == 2);
  struct stat st {};
  REQUIRE(::stat(run.state.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(std::filesystem::exists(run.state + ".lock"));
}

TEST_CASE(
    "check: a state that is a symbolic link is refused as UNKNOWN, and its target untouched") {
  CheckRun run;
  auto target = run.dir.write("target", "do not touch\n");
  std::filesystem::create_symlink(target, run.state);
  auto r = run.check();
  CHECK(r.status == 3);
  CHECK(first_line(r.out).starts_with("DISKFAULT UNKNOWN - refusing to follow the symbolic link " +
                                      run.state));
  CHECK(count_of(r.out, "\n") == 1);
  std::ifstream in(target);
  CHECK(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()) ==
        "do not touch\n");
}

TEST_CASE("check: a state in a missing directory, or a missing log, is UNKNOWN with the reason") {
  CheckRun run;
  auto missing_dir = run_diskfault(
      {"check", "--state", (run.dir.path() / "nope" / "state.json").string(), run.log});
  CHECK(missing_dir.status == 3);
  CHECK(missing_dir.out.starts_with("DISKFAULT UNKNOWN - cannot open the lock file "));
  CHECK(missing_dir.out.find("No such file or directory") != std::string::npos);

  auto missing_log = run_diskfault({"check", "--state", run.state, "/nonexistent/kern.log"});
  CHECK(missing_log.status == 3);
  CHECK(missing_log.out ==
        "DISKFAULT UNKNOWN - cannot open /nonexistent/kern.log: No such file or directory\n");
  // Nothing was reported, so nothing is remembered: the next good run reports both drives.
  CHECK(run.check().status == 2);

  // Asked for JSON or metrics, stdout stays empty for the tool reading it; the reason is on stderr.
  for (const char* output : {"--json", "--format=prometheus"}) {
    auto as_data = run_diskfault({"check", output, "/nonexistent/kern.log"});
    CAPTURE(output);
    CHECK(as_data.status == 3);
    CHECK(as_data.out.empty());
    CHECK(as_data.err ==
          "diskfault: cannot open /nonexistent/kern.log: No such file or directory\n");
  }
}

TEST_CASE("check: bad usage and a bad rules file are UNKNOWN too") {
  CheckRun run;
  auto usage = run_diskfault({"check", "--no-such-option", run.log});
  CHECK(usage.status == 3);
  CHECK(usage.out.starts_with("DISKFAULT UNKNOWN - "));
  auto bad_rules = run.dir.write("rules.json", "{ not json");
  auto rules = run.check({"--rules", bad_rules});
  CHECK(rules.status == 3);
  CHECK(rules.out.starts_with("DISKFAULT UNKNOWN - "));
  CHECK(count_of(rules.out, "\n") == 1);
  auto help = run_diskfault({"check", "--help"});
  CHECK(help.status == 0);
  CHECK(help.out.find("--exit-style") != std::string::npos);
}

TEST_CASE("check --exit-style npd: 0 OK, 1 problem, 2 unknown") {
  CheckRun run;
  CHECK(run.check({"--exit-style", "npd"}).status == 1);
  CHECK(run.check({"--exit-style", "npd"}).status == 0);
  auto unknown = run_diskfault({"check", "--exit-style", "npd", "/nonexistent/kern.log"});
  CHECK(unknown.status == 2);
}

TEST_CASE("check --remind exits 1 while known faulty drives are in the log") {
  CheckRun run;
  REQUIRE(run.check().status == 2);
  auto r = run.check({"--remind"});
  CHECK(r.status == 1);
  CHECK(r.out.starts_with("DISKFAULT WARNING - nothing new"));
}

TEST_CASE("check --json prints the report of the new findings only") {
  CheckRun run;
  auto first = run.check({"--json"});
  CHECK(first.status == 2);
  CHECK(nlohmann::json::parse(first.out)["drives"].size() == 2);
  run.append(sdc_error(30));
  auto worse = run.check({"--json"});
  CHECK(worse.status == 2);
  auto doc = nlohmann::json::parse(worse.out);
  REQUIRE(doc["drives"].size() == 1);
  CHECK(doc["drives"][0]["serial"] == "Z1Z3ABCD");
  CHECK(doc["drives"][0]["errors"]["total"] == 4);
  auto nothing = run.check({"--json"});
  CHECK(nothing.status == 0);
  CHECK(nlohmann::json::parse(nothing.out)["drives"].empty());
}

TEST_CASE(
    "check --textfile writes the metrics of the whole log, and --format prometheus prints them") {
  CheckRun run;
  REQUIRE(run.check().status == 2);
  auto r = run.check({"--textfile", run.dir.path().string()});
  CHECK(r.status == 0);
  CHECK(r.out.starts_with("DISKFAULT OK"));
  std::ifstream in(run.dir.path() / "diskfault.prom");
  std::string prom((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(prom.find("\ndiskfault_faulty_drives 2\n") != std::string::npos);
  auto printed = run.check({"--format", "prometheus"});
  CHECK(printed.status == 0);
  CHECK(printed.out.starts_with("# HELP diskfault_drive_errors "));
}

TEST_CASE("check without --state reports everything in the log every time") {
  CheckRun run;
  CHECK(run_diskfault({"check", run.log}).status == 2);
  CHECK(run_diskfault({"check", run.log}).status == 2);
  CHECK_FALSE(std::filesystem::exists(run.state));
}
