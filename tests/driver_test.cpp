// Tests of tracing errors to drives: several failing drives, hot-swaps, reboots, missing lines.
#include "driver.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_support.hpp"

using namespace diskfault;
using diskfault::test::diagnose_text;

namespace {

// "serial|hctl|devices|errors" for each drive, in report order.
std::vector<std::string> drives(const Report& report) {
  std::vector<std::string> out;
  for (const Finding& f : report.drives) {
    std::string devices;
    for (auto& d : f.devices) devices += (devices.empty() ? "" : ",") + d;
    out.push_back((f.serial ? f.serial->value : "-") + "|" + (f.hctl ? *f.hctl : "-") + "|" +
                  devices + "|" + std::to_string(f.errors.total()));
  }
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string attach(const std::string& hctl, const std::string& disk, const std::string& serial) {
  return "scsi " + hctl + ": Direct-Access     ATA      TESTDISK-4000    T001 PQ: 0 ANSI: 5\n" +
         "sd " + hctl + " (SERIAL=" + serial + ")\n" + "sd " + hctl + ": [" + disk +
         "] 7814037168 512-byte logical blocks: (4.00 TB/3.64 TiB)\n" + "sd " + hctl + ": [" +
         disk + "] Attached SCSI disk\n";
}

const std::string kNoise =
    "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex\n"
    "audit: type=1400 audit(1700000000.000:42): apparmor=\"STATUS\"\n"
    "XFS (sdb1): Mounting V5 Filesystem\n"
    "XFS (sdb1): Ending clean mount\n";

}  // namespace

TEST_CASE("the seed's example log names exactly its two failing drives") {
  std::string log = kNoise + "sd 0:0:0:0 Attached Disk Drive\n" + kNoise +
                    "sd 0:0:0:0 (SERIAL=ZZ12345)\n" + kNoise + "sd 0:0:0:0 [sda] Options\n" +
                    kNoise + "sd 2:0:0:1 Attached Disk Drive\n" + "sd 2:0:0:1 (SERIAL=ZZ67890)\n" +
                    "sd 2:0:0:1 [sdb] Options\n" + "sd 3:0:1:8 Attached Disk Drive\n" + kNoise +
                    "sd 3:0:1:8 (SERIAL=WW11111)\n" + "sd 3:0:1:8 [sdc] Options\n" + kNoise +
                    "XFS ERROR [sdc]\n" + kNoise + "XFS ERROR [sda]\n" + kNoise;
  CHECK(drives(diagnose_text(log)) ==
        std::vector<std::string>{"ZZ12345|0:0:0:0|sda|1", "WW11111|3:0:1:8|sdc|1"});
}

TEST_CASE("errors logged between an error and its serial line are not lost (the seed's bug)") {
  // The seed resumes its search for errors from the serial line it found, skipping sdb's error.
  std::string log = attach("0:0:0:0", "sda", "AAAA0001") + attach("1:0:0:0", "sdb", "BBBB0002") +
                    "XFS (sdb1): log I/O error -5\n" + kNoise + "XFS (sda1): log I/O error -5\n";
  CHECK(sorted(drives(diagnose_text(log))) ==
        std::vector<std::string>{"AAAA0001|0:0:0:0|sda|1", "BBBB0002|1:0:0:0|sdb|1"});
}

TEST_CASE("three failing drives are traced whatever the order of their errors") {
  std::string head = attach("0:0:0:0", "sda", "AAAA0001") + kNoise +
                     attach("1:0:0:0", "sdb", "BBBB0002") + attach("2:0:0:0", "sdc", "CCCC0003") +
                     kNoise;
  std::vector<std::string> errors{
      "XFS (sda1): metadata I/O error in \"xfs_imap_to_bp+0x5c/0xa0 [xfs]\" at daddr 0x1 len 32 "
      "error 5\n",
      "I/O error, dev sdb, sector 1234 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n"
      "sd 1:0:0:0: [sdb] tag#3 Sense Key : Medium Error [current]\n",
      "EXT4-fs error (device sdc2): ext4_find_entry:1455: inode #2: comm ls: reading directory "
      "lblock 0\n"};
  std::vector<int> order{0, 1, 2};
  int permutations = 0;
  do {
    std::string log = head;
    for (int i : order) log += errors[i] + kNoise;
    CAPTURE(log);
    CHECK(sorted(drives(diagnose_text(log))) == std::vector<std::string>{"AAAA0001|0:0:0:0|sda|1",
                                                                         "BBBB0002|1:0:0:0|sdb|2",
                                                                         "CCCC0003|2:0:0:0|sdc|1"});
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(permutations == 6);
}

TEST_CASE("interleaved errors of two drives keep their own drives") {
  std::string log = attach("0:0:0:0", "sda", "AAAA0001") + attach("1:0:0:0", "sdb", "BBBB0002");
  for (int i = 0; i < 5; ++i) {
    log +=
        "Buffer I/O error on dev sda1, logical block " + std::to_string(i) + ", async page read\n";
    log +=
        "Buffer I/O error on dev sdb2, logical block " + std::to_string(i) + ", async page read\n";
  }
  CHECK(sorted(drives(diagnose_text(log))) ==
        std::vector<std::string>{"AAAA0001|0:0:0:0|sda|5", "BBBB0002|1:0:0:0|sdb|5"});
}

TEST_CASE("after a hot-swap, each drive keeps its own serial") {
  std::string log = attach("2:0:0:0", "sdc", "OLD00001") + "XFS (sdc1): log I/O error -5\n" +
                    "sd 2:0:0:0: [sdc] Synchronizing SCSI cache\n" + kNoise +
                    attach("2:0:0:0", "sdc", "NEW00002") + kNoise +
                    "XFS (sdc1): log I/O error -5\n" + "XFS (sdc1): log I/O error -5\n";
  CHECK(drives(diagnose_text(log)) ==
        std::vector<std::string>{"NEW00002|2:0:0:0|sdc|2", "OLD00001|2:0:0:0|sdc|1"});
}

TEST_CASE("a new drive whose serial is never stated gets null, not the old drive's serial") {
  std::string log =
      attach("2:0:0:0", "sdc", "OLD00001") + "sd 2:0:0:0: [sdc] Synchronizing SCSI cache\n" +
      "scsi 2:0:0:0: Direct-Access     ATA      OTHERDISK-2000   T002 PQ: 0 ANSI: 5\n" +
      "sd 2:0:0:0: [sdc] Attached SCSI disk\n" + "XFS (sdc1): log I/O error -5\n";
  Report report = diagnose_text(log);
  CHECK(drives(report) == std::vector<std::string>{"-|2:0:0:0|sdc|1"});
  REQUIRE(report.drives.size() == 1);
  CHECK(report.drives[0].model->value == "OTHERDISK-2000");
}

TEST_CASE("a serial stated after the error, in the same presence, is used") {
  std::string log =
      "scsi 2:0:0:0: Direct-Access     ATA      TESTDISK-4000    T001 PQ: 0 ANSI: 5\n"
      "sd 2:0:0:0: [sdc] Attached SCSI disk\n"
      "XFS (sdc1): log I/O error -5\n"
      "sd 2:0:0:0 (SERIAL=LATE0001)\n";
  CHECK(drives(diagnose_text(log)) == std::vector<std::string>{"LATE0001|2:0:0:0|sdc|1"});
}

TEST_CASE("a sense line after a block-layer error ties the device to its address") {
  std::string log =
      "I/O error, dev sdc, sector 1234 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n"
      "sd 2:0:0:0: [sdc] tag#0 Add. Sense: Unrecovered read error\n";
  CHECK(drives(diagnose_text(log)) == std::vector<std::string>{"-|2:0:0:0|sdc|1"});
}

TEST_CASE("a log whose attach lines were rotated away reports nulls, not a guess") {
  std::string log = kNoise + "XFS (sdc1): log I/O error -5\n" + kNoise;
  Report report = diagnose_text(log);
  CHECK(drives(report) == std::vector<std::string>{"-|-|sdc|1"});
  REQUIRE(report.drives.size() == 1);
  CHECK_FALSE(report.drives[0].model.has_value());
  CHECK(report.drives[0].partitions == std::vector<std::string>{"sdc1"});
}

TEST_CASE("device names bind only within their boot, and one drive under two names is one entry") {
  // Boot 1: sdb is BBBB0002 and fails. Boot 2: names are reshuffled; BBBB0002 is now sdc and fails
  // again, CCCC0003 (now sda) and AAAA0001 (now sdb) fail too.
  std::string boot1 = "[    0.000000] Linux version 6.1.0-13-amd64 (builder@example) #1 SMP\n" +
                      attach("0:0:0:0", "sda", "AAAA0001") + attach("1:0:0:0", "sdb", "BBBB0002") +
                      attach("2:0:0:0", "sdc", "CCCC0003") +
                      "[  100.000000] XFS (sdb1): log I/O error -5\n";
  std::string boot2 = "[    0.000000] Linux version 6.1.0-13-amd64 (builder@example) #1 SMP\n" +
                      attach("2:0:0:0", "sda", "CCCC0003") + attach("0:0:0:0", "sdb", "AAAA0001") +
                      attach("1:0:0:0", "sdc", "BBBB0002") +
                      "[   50.000000] XFS (sdc1): log I/O error -5\n"
                      "[   51.000000] XFS (sda1): log I/O error -5\n"
                      "[   52.000000] XFS (sdb1): log I/O error -5\n";
  Report report = diagnose_text(boot1 + boot2);
  CHECK(sorted(drives(report)) == std::vector<std::string>{"AAAA0001|0:0:0:0|sdb|1",
                                                           "BBBB0002|1:0:0:0|sdb,sdc|2",
                                                           "CCCC0003|2:0:0:0|sda|1"});
  CHECK(report.sources.at(0).boots == 2);
}

TEST_CASE("an error in a later boot is never explained by an earlier boot's lines") {
  std::string log = "Linux version 6.1.0 (a@b) #1\n" + attach("2:0:0:0", "sdc", "CCCC0003") +
                    "Linux version 6.1.0 (a@b) #1\n" + "XFS (sdc1): log I/O error -5\n";
  CHECK(drives(diagnose_text(log)) == std::vector<std::string>{"-|-|sdc|1"});
}

TEST_CASE("a monotonic clock that starts again is a reboot, even without a Linux version line") {
  std::string log =
      "[    5.000000] sd 0:0:0:0 (SERIAL=AAAA0001)\n"
      "[    5.100000] sd 0:0:0:0: [sda] Attached SCSI disk\n"
      "[ 9999.000000] e1000e: eth0 NIC Link is Down\n"
      "[    3.000000] sd 1:0:0:0: [sda] Attached SCSI disk\n"
      "[   60.000000] XFS (sda1): log I/O error -5\n";
  Report report = diagnose_text(log);
  CHECK(drives(report) == std::vector<std::string>{"-|1:0:0:0|sda|1"});
  CHECK(report.sources.at(0).boots == 2);
}

TEST_CASE("journal separators and Linux version lines mark one boundary per reboot") {
  std::string log =
      "-- Logs begin at Mon 2026-11-02 10:00:00 UTC. --\n"
      "Nov 02 10:00:00 node17 kernel: Linux version 6.1.0 (a@b) #1\n"
      "Nov 02 10:00:01 node17 kernel: sd 0:0:0:0 (SERIAL=AAAA0001)\n"
      "Nov 02 10:00:01 node17 kernel: sd 0:0:0:0: [sda] Attached SCSI disk\n"
      "-- Boot 4f2c0a1b2c3d4e5f60718293a4b5c6d7 --\n"
      "Nov 03 09:00:00 node17 kernel: Linux version 6.1.0 (a@b) #1\n"
      "Nov 03 09:00:05 node17 kernel: XFS (sda1): log I/O error -5\n";
  Report report = diagnose_text(log);
  CHECK(drives(report) == std::vector<std::string>{"-|-|sda|1"});
  CHECK(report.sources.at(0).boots == 2);
  CHECK(report.sources.at(0).format == "syslog");
}

TEST_CASE("a drive with two serials stated in one presence gets none, and a note") {
  std::string log =
      "sd 2:0:0:0 (SERIAL=FIRST001)\n"
      "sd 2:0:0:0: [sdc] Write Protect is off\n"
      "sd 2:0:0:0 (SERIAL=OTHER002)\n"
      "XFS (sdc1): log I/O error -5\n";
  Report report = diagnose_text(log);
  REQUIRE(report.drives.size() == 1);
  CHECK_FALSE(report.drives[0].serial.has_value());
  REQUIRE(report.drives[0].notes.size() == 1);
  CHECK(report.drives[0].notes[0].find("FIRST001, OTHER002") != std::string::npos);
}

TEST_CASE("libata errors join the disk that the same error-handling episode names") {
  std::string episode_without_sd =
      "ata1.00: exception Emask 0x0 SAct 0x3 SErr 0x0 action 0x0\n"
      "ata1.00: failed command: READ FPDMA QUEUED\n"
      "ata1.00: error: { UNC }\n"
      "ata1: EH complete\n";
  std::string episode_with_sd =
      "ata1.00: exception Emask 0x0 SAct 0x3 SErr 0x0 action 0x0\n"
      "ata1.00: failed command: READ FPDMA QUEUED\n"
      "sd 0:0:0:0: [sda] tag#1 Sense Key : Medium Error [current]\n"
      "ata1: EH complete\n";
  Report report = diagnose_text(episode_without_sd + episode_with_sd);
  CHECK(drives(report) == std::vector<std::string>{"-|0:0:0:0|sda|3"});
  REQUIRE(report.drives.size() == 1);
  CHECK(report.drives[0].port == "ata1.00");
  CHECK(report.drives[0].errors.by_kind().at("ata") == 2);
}

TEST_CASE("libata errors that no line ties to a disk are reported by port") {
  Report report = diagnose_text(
      "ata4.00: exception Emask 0x0 SAct 0x0 SErr 0x0 action 0x6 frozen\n"
      "ata4.00: failed command: FLUSH CACHE EXT\n"
      "ata4: EH complete\n");
  REQUIRE(report.drives.size() == 1);
  CHECK(report.drives[0].port == "ata4.00");
  CHECK_FALSE(report.drives[0].hctl.has_value());
}

TEST_CASE("stacked and non-disk devices are unresolved or ignored, never guessed") {
  Report report = diagnose_text(
      "XFS (dm-3): log I/O error -5\n"
      "I/O error, dev loop0, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n"
      "print_req_error: I/O error, dev sr0, sector 64\n"
      "EXT4-fs error (device md127): ext4_find_entry:1455: inode #2\n");
  CHECK(report.drives.empty());
  REQUIRE(report.unresolved.size() == 2);
  CHECK(report.unresolved[0].device == "md127");
  CHECK(report.unresolved[1].device == "dm-3");
  CHECK(report.unresolved_errors() == 2);
}

TEST_CASE("a kmsg record's DEVICE field ties its device to the address") {
  Report report = diagnose_text(
      "3,10,5000000,-;print_req_error: I/O error, dev sdf, sector 9984\n"
      " SUBSYSTEM=block\n"
      " DEVICE=+scsi:6:0:0:0\n");
  CHECK(drives(report) == std::vector<std::string>{"-|6:0:0:0|sdf|1"});
  CHECK(report.sources.at(0).format == "kmsg");
  REQUIRE(report.drives.size() == 1);
  CHECK(report.drives[0].errors.last().time == "5.000000");
}

TEST_CASE("NVMe errors on a controller and its namespace are one drive") {
  Report report = diagnose_text(
      "nvme nvme0: pci function 0000:41:00.0\n"
      "nvme nvme0: I/O 123 QID 4 timeout, aborting\n"
      "blk_update_request: I/O error, dev nvme0n1, sector 500118016 op 0x0:(READ) flags 0x80700 "
      "phys_seg 1 prio class 0\n"
      "Buffer I/O error on dev nvme0n1p1, logical block 62514752, async page read\n");
  REQUIRE(report.drives.size() == 1);
  const Finding& f = report.drives[0];
  CHECK(f.controller == "nvme0");
  CHECK(f.pci->value == "0000:41:00.0");
  CHECK(f.devices == std::vector<std::string>{"nvme0n1"});
  CHECK(f.partitions == std::vector<std::string>{"nvme0n1p1"});
  CHECK(f.errors.total() == 3);
}

TEST_CASE("line numbers count from the start of the file and evidence is capped") {
  std::string log = "first line\n";
  for (int i = 0; i < 20; ++i)
    log += "Buffer I/O error on dev sdc1, logical block " + std::to_string(i) +
           ", lost async page write\n";
  Report report = diagnose_text(log);
  REQUIRE(report.drives.size() == 1);
  const Finding& f = report.drives[0];
  CHECK(f.errors.first().line == 2);
  CHECK(f.errors.last().line == 21);
  auto evidence = f.errors.evidence();
  CHECK(evidence.size() == ErrorTally::kEvidenceLimit);
  CHECK(evidence.front().at.line == 2);
  CHECK(evidence.back().at.line == 21);
}

TEST_CASE("the driver yields nothing for a healthy log and the matcher reads every line") {
  Report report = diagnose_text(kNoise + "sda3: WRITE SAME failed. Manually zeroing.\n");
  CHECK(report.drives.empty());
  CHECK(report.unresolved.empty());
  CHECK(report.sources.at(0).lines == 5);
}

TEST_CASE("a reboot in kern.log counts once, even with unstamped kernel lines around it") {
  std::string log =
      "Nov 20 09:00:00 h kernel: [    0.000000] Linux version 6.1.0 (a@b) #1\n"
      "Nov 20 17:12:44 h kernel: [29564.100000] sd 1:0:0:0: [sdb] Attached SCSI disk\n"
      "Nov 20 23:59:59 h kernel: imklog 8.2302.0, log source = /proc/kmsg started.\n"
      "Nov 21 07:30:00 h kernel: [    0.000000] Linux version 6.1.0 (a@b) #1\n"
      "Nov 21 07:30:00 h kernel: [    0.000000] Command line: ro quiet\n"
      "Nov 21 14:40:00 h kernel: [25680.000000] XFS (sdb1): log I/O error -5\n";
  Report report = diagnose_text(log);
  CHECK(report.sources.at(0).boots == 2);
  CHECK(drives(report) == std::vector<std::string>{"-|-|sdb|1"});
  REQUIRE(report.drives.size() == 1);
  CHECK(report.drives[0].errors.last().boot == 2);
}

TEST_CASE("one drive seen in two boots reports each end in its own boot") {
  std::string log = "Linux version 6.1.0 (a@b) #1\n" + attach("0:0:0:0", "sda", "AAAA0001") +
                    "XFS (sda1): log I/O error -5\n" + "Linux version 6.1.0 (a@b) #1\n" +
                    attach("1:0:0:0", "sdb", "AAAA0001") + "XFS (sdb1): log I/O error -5\n";
  Report report = diagnose_text(log);
  REQUIRE(report.drives.size() == 1);
  CHECK(report.drives[0].errors.first().boot == 1);
  CHECK(report.drives[0].errors.last().boot == 2);
  CHECK(report.drives[0].hctl == "1:0:0:0");  // the newest presence's address
}

TEST_CASE("a journal boot is named by its separator, not by the version line all boots share") {
  std::string log =
      "Nov 02 10:00:00 n kernel: Linux version 6.1.0 (a@b) #1\n"
      "Nov 02 10:00:05 n kernel: XFS (sda1): log I/O error -5\n"
      "-- Boot 4f2c0a1b2c3d4e5f60718293a4b5c6d7 --\n"
      "Nov 03 09:00:00 n kernel: Linux version 6.1.0 (a@b) #1\n"
      "Nov 03 09:00:05 n kernel: XFS (sdb1): log I/O error -5\n";
  Report report = diagnose_text(log);
  REQUIRE(report.drives.size() == 2);
  CHECK(report.sources.at(0).boots == 2);
  CHECK(report.drives[0].devices == std::vector<std::string>{"sdb"});
  CHECK(report.drives[0].boot_key == "-- Boot 4f2c0a1b2c3d4e5f60718293a4b5c6d7 --");
  CHECK(report.drives[1].boot_key == "Nov 02 10:00:00 n kernel: Linux version 6.1.0 (a@b) #1");
}

TEST_CASE("an HBA's sense report goes to the drive of the SCSI command printed just before it") {
  const std::string sde_command =
      "[ 1212.352770] sd 0:0:4:0: [sde] tag#3885 CDB: Read(16) 88 00 00 00 00 00 1b 5c 5b 00 00 00 "
      "00 08 00 00\n";
  const std::string sdj_command =
      "[ 1212.353248] sd 0:0:9:0: [sdj] tag#3886 CDB: Read(16) 88 00 00 00 00 00 0a 11 20 00 00 00 "
      "00 08 00 00\n";
  auto report_block = [](const char* key, int slot) {
    std::string phy = std::to_string(slot);
    return "[ 1212.353300] mpt3sas_cm0:     sas_address(0x443322110" + phy + "000000), phy(" + phy +
           ")\n[ 1212.353301] mpt3sas_cm0: enclosure logical id(0x500062b200d564c0), slot(" + phy +
           ")\n[ 1212.353302] mpt3sas_cm0:     handle(0x0015), ioc_status(success)(0x0000), "
           "smid(3886)\n[ 1212.353303] mpt3sas_cm0:     scsi_status(check condition)(0x02), "
           "scsi_state(autosense valid )(0x01)\n[ 1212.353304] mpt3sas_cm0:     "
           "[sense_key,asc,ascq]: [" +
           std::string(key) + ",0x11,0x00], count(18)\n";
  };
  const std::string attach =
      "[    3.000000] sd 0:0:4:0: [sde] Attached SCSI disk\n"
      "[    3.000100] sd 0:0:9:0: [sdj] Attached SCSI disk\n";

  SUBCASE("interleaved reports: a recovered error is no fault, a medium error is sdj's") {
    Report r = diagnose_text(attach + sde_command + report_block("0x01", 4) + sdj_command +
                             report_block("0x03", 9));
    REQUIRE(r.drives.size() == 1);
    CHECK(r.drives[0].hctl == "0:0:9:0");
    CHECK(r.drives[0].devices == std::vector<std::string>{"sdj"});
    CHECK(r.drives[0].errors.by_kind().at("medium") == 1);
    CHECK(r.unresolved.empty());
  }
  SUBCASE("a report whose command line is not just before it is not given to any drive") {
    std::string far_away = sdj_command;
    for (int i = 0; i < 20; ++i)
      far_away += "[ 1212.353250] usb 1-1: reset high-speed USB device\n";
    Report r = diagnose_text(attach + far_away + report_block("0x04", 9));
    CHECK(r.drives.empty());
    REQUIRE(r.unresolved.size() == 1);
    CHECK(r.unresolved[0].device == "mpt3sas_cm0");
    CHECK(r.unresolved[0].errors.by_kind().at("hardware") == 1);

    Report orphan = diagnose_text(attach + report_block("0x03", 9));
    CHECK(orphan.drives.empty());
    REQUIRE(orphan.unresolved.size() == 1);
    CHECK(orphan.unresolved[0].reason.find("does not tie to a drive") != std::string::npos);
  }
}
