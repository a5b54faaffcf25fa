// Host facts from fake sysfs/udev trees (testdata/host, built by scripts/make-fake-sysfs), and the
// rule that decides when they may be joined with the log.
#include "host_facts.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "host_enrich.hpp"
#include "report_printers.hpp"
#include "test_support.hpp"

namespace diskfault {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::TempDir;

std::string case_dir(const std::string& name) {
  return test::source_root() + "/testdata/host/" + name;
}

HostRoots roots_of(const std::string& dir) { return {dir + "/sys", dir + "/udev"}; }

HostOptions options_of(const std::string& name, bool this_host) {
  HostOptions options;
  options.roots = roots_of(case_dir(name));
  options.this_host = this_host;
  options.boot_id_file = case_dir(name) + "/boot_id";
  return options;
}

// Diagnoses logs of a case (file names inside its directory) and applies the host's facts.
Report diagnose_case(const std::string& name, const std::vector<std::string>& logs, bool this_host,
                     std::vector<std::string>* unreadable = nullptr) {
  std::vector<std::string> paths;
  for (const auto& log : logs) paths.push_back(case_dir(name) + "/" + log);
  Report report = diagnose(paths, test::default_rule_set(), {});
  auto notes = apply_host_facts(report, options_of(name, this_host));
  if (unreadable) *unreadable = notes;
  return report;
}

std::string value(const std::optional<HostValue>& v) { return v ? v->value : "<none>"; }
std::string origin(const std::optional<HostValue>& v) { return v ? v->origin : "<none>"; }
std::string value(const std::optional<Stated>& s) { return s ? s->value : "<none>"; }

// A copy of a case's tree that a test may change.
fs::path copy_case(const std::string& name, const TempDir& dir) {
  fs::path to = dir.path() / name;
  fs::copy(case_dir(name), to, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  return to;
}

TEST_CASE("a SATA disk's address, identity, serial and WWN are read with their origins") {
  HostFacts host(roots_of(case_dir("sata")));
  CHECK(host.disk_of("sdc1") == "sdc");
  CHECK(host.disk_of("sdc") == "sdc");
  CHECK(host.disk_at("2:0:0:0") == "sdc");
  CHECK_FALSE(host.disk_at("9:0:0:0"));
  auto disk = host.disk("sdc1");
  REQUIRE(disk);
  CHECK(disk->name == "sdc");
  CHECK(value(disk->dev) == "8:32");
  CHECK(value(disk->hctl) == "2:0:0:0");
  CHECK(origin(disk->hctl) == "sysfs:block/sdc/device");
  CHECK(value(disk->vendor) == "ATA");  // sysfs pads INQUIRY strings; they are trimmed
  CHECK(value(disk->model) == "ST4000NM0033-9ZM");
  CHECK(value(disk->rev) == "SN03");
  CHECK(value(disk->serial) == "Z1ZFAKE1");
  CHECK(origin(disk->serial) == "udev:b8:32 E:ID_SERIAL_SHORT");
  // libata's device/wwid is a t10 id (vendor, model and serial run together), not a WWN.
  CHECK(value(disk->wwn) == "0x5000c500fa0e0001");
  CHECK(origin(disk->wwn) == "udev:b8:32 E:ID_WWN");
  CHECK_FALSE(disk->slot);
  CHECK(host.unreadable().empty());
}

TEST_CASE(
    "a SAS disk whose ID_SERIAL_SHORT is its WWN takes its serial from SCSI_IDENT_SERIAL or "
    "vpd_pg80") {
  HostFacts host(roots_of(case_dir("sas")));
  auto sda = host.disk("sda");
  REQUIRE(sda);
  CHECK(value(sda->serial) == "ZA1FAKE2");
  CHECK(origin(sda->serial) == "udev:b8:0 E:SCSI_IDENT_SERIAL");
  auto sdb = host.disk("sdb");
  REQUIRE(sdb);
  CHECK(value(sdb->serial) == "ZA1FAKE3");  // not 5000c500fa0e0003, udev's ID_SERIAL_SHORT
  CHECK(origin(sdb->serial) == "sysfs:block/sdb/device/vpd_pg80");
  CHECK(value(sdb->wwn) == "naa.5000c500fa0e0003");
  CHECK(origin(sdb->wwn) == "sysfs:block/sdb/device/wwid");
  CHECK(wwn_digits(value(sdb->wwn)) == wwn_digits("0x5000C500FA0E0003"));
  CHECK(wwn_digits("5-000c50-0ab5e59fc") == "5000c500ab5e59fc");
}

TEST_CASE("an NVMe namespace takes its serial, model and PCI address from its controller") {
  HostFacts host(roots_of(case_dir("nvme")));
  CHECK(host.disk_of("nvme0n1p1") == "nvme0n1");
  auto disk = host.disk("nvme0n1");
  REQUIRE(disk);
  CHECK(value(disk->controller) == "nvme0");
  CHECK_FALSE(disk->hctl);
  CHECK(value(disk->serial) == "S4FAKE0000001");
  CHECK(origin(disk->serial) == "sysfs:class/nvme/nvme0/serial");
  CHECK(value(disk->model) == "Samsung SSD 970 EVO Plus 1TB");
  CHECK(value(disk->pci) == "0000:3d:00.0");
  CHECK(value(disk->wwn) == "eui.0025388fa0e00001");
  CHECK(origin(disk->wwn) == "sysfs:block/nvme0n1/wwid");
  CHECK(host.nvme_controller("nvme0"));
  CHECK_FALSE(host.nvme_controller("nvme7"));
  CHECK_FALSE(host.nvme_controller("../nvme0"));
}

TEST_CASE("a device-mapper device has a mapper name and member partitions") {
  HostFacts host(roots_of(case_dir("dm")));
  auto dm = host.disk("dm-3");
  REQUIRE(dm);
  CHECK(value(dm->mapper_name) == "vg0-data");
  CHECK(origin(dm->mapper_name) == "sysfs:block/dm-3/dm/name");
  CHECK(host.members("dm-3") == std::vector<std::string>{"sdc1", "sdd1"});
  CHECK(host.members("sdc").empty());
  CHECK(host.members("dm-9").empty());
}

TEST_CASE("an md array's members are followed down through stacked members") {
  HostFacts plain(roots_of(case_dir("md")));
  CHECK(plain.members("md0") == std::vector<std::string>{"sdb1", "sdc1"});
  CHECK_FALSE(plain.disk("md0")->mapper_name);

  // A dm-crypt device on md0: its drives are md0's.
  TempDir dir;
  fs::path root = copy_case("md", dir);
  fs::create_directories(root / "sys/devices/virtual/block/dm-0/slaves");
  fs::create_directory_symlink("../../md0", root / "sys/devices/virtual/block/dm-0/slaves/md0");
  fs::create_directory_symlink("../devices/virtual/block/dm-0", root / "sys/block/dm-0");
  HostFacts host(roots_of(root.string()));
  CHECK(host.members("dm-0") == std::vector<std::string>{"sdb1", "sdc1"});
}

TEST_CASE("an enclosure slot is the name of the device's enclosure_device link") {
  HostFacts host(roots_of(case_dir("enclosure")));
  auto disk = host.disk("sdc");
  REQUIRE(disk);
  CHECK(value(disk->slot) == "Slot 05");
  CHECK(origin(disk->slot) == "sysfs:block/sdc/device/enclosure_device:Slot 05");
}

TEST_CASE("a virtio disk's bus vendor id is not its vendor, and its serial is block/vda/serial") {
  TempDir dir;
  fs::path sys = dir.path() / "sys";
  fs::path virtio = sys / "devices/pci0000:00/0000:00:04.0/virtio1";
  fs::create_directories(virtio / "block/vda");
  std::ofstream(virtio / "vendor") << "0x1af4\n";
  std::ofstream(virtio / "block/vda/dev") << "254:0\n";
  std::ofstream(virtio / "block/vda/serial") << "VIRTFAKE01\n";
  fs::create_directory_symlink("../../../virtio1", virtio / "block/vda/device");
  fs::create_directories(sys / "block");
  fs::create_directory_symlink("../devices/pci0000:00/0000:00:04.0/virtio1/block/vda",
                               sys / "block/vda");
  HostFacts host({sys.string(), (dir.path() / "udev").string()});
  auto vda = host.disk("vda");
  REQUIRE(vda);
  CHECK_FALSE(vda->vendor);
  CHECK_FALSE(vda->hctl);
  CHECK(value(vda->serial) == "VIRTFAKE01");
  CHECK(origin(vda->serial) == "sysfs:block/vda/serial");
}

TEST_CASE("a host without the trees has no facts and no complaints") {
  HostFacts host({"/nonexistent/sys", "/nonexistent/udev"});
  CHECK_FALSE(host.disk("sda"));
  CHECK_FALSE(host.disk_at("0:0:0:0"));
  CHECK(host.members("md0").empty());
  CHECK(host.unreadable().empty());
}

TEST_CASE("a host file that cannot be read is noted, not thrown, and the next source is tried") {
  TempDir dir;
  fs::path root = copy_case("sas", dir);
  // A directory where the VPD page should be fails like an unreadable attribute (EISDIR), even
  // for root, who may read any file.
  fs::path vpd =
      root / "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/host0/target0:0:1/0:0:1:0/vpd_pg80";
  fs::remove(vpd);
  fs::create_directory(vpd);
  std::ofstream(root /
                "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/host0/target0:0:1/0:0:1:0/serial")
      << "ZA1FAKE3-FROM-SERIAL\n";
  HostFacts host(roots_of(root.string()));
  auto sdb = host.disk("sdb");
  REQUIRE(sdb);
  CHECK(value(sdb->serial) == "ZA1FAKE3-FROM-SERIAL");
  CHECK(origin(sdb->serial) == "sysfs:block/sdb/device/serial");
  REQUIRE(host.unreadable().size() == 1);
  CHECK(host.unreadable().begin()->find("block/sdb/device/vpd_pg80: ") != std::string::npos);
}

TEST_CASE(
    "an XFS error on sdc1 in the current boot is reported with the serial, WWN and slot from the "
    "tree, and says where each came from") {
  Report report = diagnose_case("enclosure", {"current.log"}, true);
  REQUIRE(report.drives.size() == 1);
  const Finding& f = report.drives[0];
  CHECK(f.partitions == std::vector<std::string>{"sdc1"});
  CHECK(value(f.serial) == "Z1ZFAKE5");
  CHECK(value(f.wwn) == "naa.5000c500fa0e0005");
  CHECK(value(f.slot) == "Slot 05");
  CHECK(f.origin == std::map<std::string, std::string>{
                        {"serial", "udev:b8:32 E:SCSI_IDENT_SERIAL"},
                        {"slot", "sysfs:block/sdc/device/enclosure_device:Slot 05"},
                        {"wwn", "sysfs:block/sdc/device/wwid"}});
  CHECK_FALSE(f.host_mismatch);

  // In the JSON, log values keep their line (stated_at), host values their origin.
  json doc = json::parse(format_json(report, "test"));
  const json& d = doc["drives"][0];
  CHECK(d["serial"] == "Z1ZFAKE5");
  CHECK(d["slot"] == "Slot 05");
  CHECK(d["origin"]["serial"] == "udev:b8:32 E:SCSI_IDENT_SERIAL");
  CHECK(d["stated_at"]["model"]["line"] == 2);
  CHECK_FALSE(d["stated_at"].contains("serial"));
  CHECK_FALSE(d.contains("host_mismatch"));
}

TEST_CASE("the same error in an earlier boot keeps serial null") {
  Report report = diagnose_case("enclosure", {"earlier.log"}, true);
  REQUIRE(report.sources[0].boots == 2);
  REQUIRE(report.drives.size() == 1);
  const Finding& f = report.drives[0];
  CHECK(f.boot == 1);
  CHECK_FALSE(f.serial);
  CHECK_FALSE(f.wwn);
  CHECK_FALSE(f.slot);
  CHECK(f.origin.empty());
  json doc = json::parse(format_json(report, "test"));
  CHECK(doc["drives"][0]["serial"].is_null());
  CHECK_FALSE(doc["drives"][0].contains("origin"));
}

TEST_CASE("a swapped drive is flagged, not mis-attributed") {
  Report report = diagnose_case("swapped", {"current.log"}, true);
  REQUIRE(report.drives.size() == 1);
  const Finding& f = report.drives[0];
  CHECK_FALSE(f.serial);  // the host's WKDFAKE7 belongs to the new drive
  CHECK(value(f.model) == "ST4000NM0033-9ZM");
  REQUIRE(f.host_mismatch);
  CHECK(f.host_mismatch->find("ST4000NM0033-9ZM") != std::string::npos);
  CHECK(f.host_mismatch->find("ST8000VN004-2M21") != std::string::npos);
  CHECK(std::find(f.notes.begin(), f.notes.end(), *f.host_mismatch) != f.notes.end());
  CHECK(f.origin.empty());
  json doc = json::parse(format_json(report, "test"));
  CHECK(doc["drives"][0]["serial"].is_null());
  CHECK(doc["drives"][0]["host_mismatch"] == *f.host_mismatch);
}

TEST_CASE("XFS (dm-3) names its mapper name and member drives") {
  Report report = diagnose_case("dm", {"current.log"}, true);
  CHECK(report.drives.empty());  // reported once, not as a fault of each member
  REQUIRE(report.unresolved.size() == 1);
  const Unresolved& u = report.unresolved[0];
  CHECK(u.device == "dm-3");
  CHECK(u.mapper_name == "vg0-data");
  REQUIRE(u.suspects.size() == 2);
  CHECK(u.suspects[0].device == "sdc1");
  CHECK(u.suspects[0].disk == "sdc");
  CHECK(u.suspects[0].hctl == "2:0:0:0");
  CHECK(u.suspects[0].serial == "Z1ZFAKE1");
  CHECK(u.suspects[0].origin.at("serial") == "udev:b8:32 E:ID_SERIAL_SHORT");
  CHECK(u.suspects[1].disk == "sdd");
  CHECK(u.suspects[1].serial == "Z1ZFAKE4");
  CHECK(u.origin.at("mapper_name") == "sysfs:block/dm-3/dm/name");
  CHECK(report.error_count() == 1);

  json doc = json::parse(format_json(report, "test"));
  const json& j = doc["unresolved"][0];
  CHECK(j["mapper_name"] == "vg0-data");
  CHECK(j["suspects"][1]["serial"] == "Z1ZFAKE4");
  CHECK(j["suspects"][1]["hctl"] == "3:0:0:0");
}

TEST_CASE("an md array's error in the current boot lists its drives as suspects") {
  Report report = diagnose_case("md", {"current.log"}, true);
  REQUIRE(report.unresolved.size() == 1);
  const Unresolved& u = report.unresolved[0];
  CHECK_FALSE(u.mapper_name);
  REQUIRE(u.suspects.size() == 2);
  CHECK(u.suspects[0].serial == "WDFAKE0000B");
  CHECK(u.suspects[1].serial == "WDFAKE0000C");
}

TEST_CASE("a stacked device's error in an earlier boot gets no suspects") {
  Report report = diagnose_case("dm", {"earlier.log"}, true);
  REQUIRE(report.unresolved.size() == 1);
  CHECK_FALSE(report.unresolved[0].mapper_name);
  CHECK(report.unresolved[0].suspects.empty());
}

TEST_CASE("a SAS drive's error in the current boot gets the serial from the VPD page") {
  Report report = diagnose_case("sas", {"current.log"}, true);
  REQUIRE(report.drives.size() == 1);
  CHECK(report.drives[0].devices == std::vector<std::string>{"sdb"});
  CHECK(value(report.drives[0].serial) == "ZA1FAKE3");
  CHECK(report.drives[0].origin.at("serial") == "sysfs:block/sdb/device/vpd_pg80");
}

TEST_CASE("an NVMe error in the current boot gets the controller's serial and model") {
  Report report = diagnose_case("nvme", {"current.log"}, true);
  REQUIRE(report.drives.size() == 1);
  const Finding& f = report.drives[0];
  CHECK(f.controller == "nvme0");
  CHECK(value(f.serial) == "S4FAKE0000001");
  CHECK(value(f.model) == "Samsung SSD 970 EVO Plus 1TB");
  CHECK(f.origin.at("model") == "sysfs:class/nvme/nvme0/model");
  CHECK_FALSE(f.origin.count("pci"));  // the log stated it
}

TEST_CASE("a log file is not the current boot unless something shows it") {
  Report report = diagnose_case("enclosure", {"current.log"}, false);
  REQUIRE(report.drives.size() == 1);
  CHECK_FALSE(report.drives[0].serial);
  CHECK(report.drives[0].origin.empty());
  CHECK(report.drives[0].notes.empty());
}

TEST_CASE("a journal whose last boot separator names the running boot is the current boot") {
  Report report = diagnose_case("enclosure", {"journal.log"}, false);
  REQUIRE(report.drives.size() == 2);
  const Finding& newer = report.drives[0];
  const Finding& older = report.drives[1];
  CHECK(newer.boot == 2);
  CHECK(value(newer.serial) == "Z1ZFAKE5");
  CHECK(older.boot == 1);
  CHECK_FALSE(older.serial);

  Report other = diagnose_case("enclosure", {"journal-other-boot.log"}, false);
  REQUIRE(other.drives.size() == 2);
  CHECK_FALSE(other.drives[0].serial);
  CHECK_FALSE(other.drives[1].serial);
}

TEST_CASE("under --this-host only the last source's last boot is current") {
  Report report = diagnose_case("enclosure", {"current.log", "current.log"}, true);
  REQUIRE(report.drives.size() == 2);
  CHECK(report.drives[0].source == 1);
  CHECK(value(report.drives[0].serial) == "Z1ZFAKE5");
  CHECK(report.drives[1].source == 0);
  CHECK_FALSE(report.drives[1].serial);
}

TEST_CASE("the current boot is the last boot of the live log, or one the boot id proves") {
  Report report;
  report.sources = {{"/dev/kmsg", "kmsg", 10, 1}, {"kern.log", "syslog", 10, 2}};
  HostOptions options;
  const std::optional<std::string> id = "6f1d2c3b4a594e6f8a7b9c0d1e2f3a4b";
  CHECK(is_current_boot(report, 0, 1, "", options, std::nullopt));
  CHECK_FALSE(is_current_boot(report, 1, 2, "Linux version 6.1.0", options, id));
  CHECK_FALSE(
      is_current_boot(report, 1, 1, "-- Boot 6f1d2c3b4a594e6f8a7b9c0d1e2f3a4b --", options, id));
  CHECK(is_current_boot(report, 1, 2, "-- Boot 6f1d2c3b4a594e6f8a7b9c0d1e2f3a4b --", options, id));
  CHECK(is_current_boot(report, 1, 2, "-- Boot 6F1D2C3B-4A59-4E6F-8A7B-9C0D1E2F3A4B --", options,
                        id));
  CHECK_FALSE(
      is_current_boot(report, 1, 2, "-- Boot 0a9b8c7d6e5f4a3b8c1d0e9f8a7b6c5d --", options, id));
  CHECK_FALSE(is_current_boot(report, 1, 2, "-- Reboot --", options, id));
  CHECK_FALSE(is_current_boot(report, 1, 2, "-- Boot 6f1d2c3b4a594e6f8a7b9c0d1e2f3a4b --", options,
                              std::nullopt));
  options.this_host = true;
  CHECK(is_current_boot(report, 1, 2, "", options, std::nullopt));
  CHECK_FALSE(is_current_boot(report, 1, 1, "", options, std::nullopt));
}

// A finding for the current boot of a --this-host source, for testing the agreement rule alone.
Report one_finding(Finding f) {
  Report report;
  report.sources = {{"kern.log", "dmesg", 10, 1}};
  f.boot = 1;
  f.errors.add("xfs", Position{0, 1, 10, ""}, "XFS (sdc1): metadata I/O error");
  report.drives.push_back(std::move(f));
  return report;
}

Stated logged(std::string v) { return Stated{std::move(v), Position{0, 5, 6, ""}}; }

TEST_CASE("the host's facts are given only when nothing the log states about the drive differs") {
  auto run = [](Finding f) {
    Report report = one_finding(std::move(f));
    apply_host_facts(report, options_of("sata", true));
    return report.drives[0];
  };
  Finding base;
  base.hctl = "2:0:0:0";
  base.devices = {"sdc"};

  SUBCASE("the drive's own model agrees with the 16-character INQUIRY one") {
    Finding f = base;
    f.model = logged("ST4000NM0033-9ZM170");
    Finding out = run(f);
    CHECK(value(out.serial) == "Z1ZFAKE1");
    CHECK(value(out.model) == "ST4000NM0033-9ZM170");  // the log's value stays
    CHECK_FALSE(out.origin.count("model"));
  }
  SUBCASE("another model is a swap") {
    Finding f = base;
    f.model = logged("ST4000NM0035-1V4107");
    CHECK(run(f).host_mismatch);
    CHECK_FALSE(run(f).serial);
  }
  SUBCASE("a short model that is only a prefix is another model") {
    Finding f = base;
    f.model = logged("ST4000NM");
    CHECK(run(f).host_mismatch);
  }
  SUBCASE("another vendor is a swap") {
    Finding f = base;
    f.vendor = logged("SEAGATE");
    CHECK(run(f).host_mismatch);
  }
  SUBCASE("another serial in the log is a swap, and the log's serial stays") {
    Finding f = base;
    f.serial = logged("Z1ZOTHER");
    Finding out = run(f);
    CHECK(out.host_mismatch);
    CHECK(value(out.serial) == "Z1ZOTHER");
    CHECK(out.origin.empty());
  }
  SUBCASE("the same WWN spelled as smartd does agrees") {
    Finding f = base;
    f.wwn = logged("5-000c50-0fa0e0001");
    Finding out = run(f);
    CHECK_FALSE(out.host_mismatch);
    CHECK(value(out.serial) == "Z1ZFAKE1");
  }
  SUBCASE("another disk name at the address means the drive was re-attached since") {
    Finding f = base;
    f.devices = {"sdd"};
    Finding out = run(f);
    REQUIRE(out.host_mismatch);
    CHECK(out.host_mismatch->find("sdd") != std::string::npos);
    CHECK_FALSE(out.serial);
  }
  SUBCASE("an address with no disk now gives nothing") {
    Finding f = base;
    f.hctl = "7:0:0:0";
    Finding out = run(f);
    CHECK_FALSE(out.serial);
    CHECK_FALSE(out.host_mismatch);
    CHECK(out.notes.size() == 1);
  }
  SUBCASE("a drive named only by its disk gets the host's address, with a note on the assumption") {
    Finding f;
    f.devices = {"sdc"};
    f.partitions = {"sdc1"};
    Finding out = run(f);
    CHECK(out.hctl == "2:0:0:0");
    CHECK(out.origin.at("hctl") == "sysfs:block/sdc/device");
    CHECK(value(out.serial) == "Z1ZFAKE1");
    CHECK(value(out.model) == "ST4000NM0033-9ZM");
    CHECK(out.notes.size() == 1);
  }
}

TEST_CASE("diskfault --this-host with a fake tree prints host facts and their origins") {
  std::string dir = case_dir("enclosure");
  auto run = test::run_diskfault({"--sysfs-root", dir + "/sys", "--udev-root", dir + "/udev",
                                  "--this-host", dir + "/current.log"});
  CHECK(run.status == 1);
  CHECK(run.err.empty());
  json doc = json::parse(run.out);
  CHECK(doc["drives"][0]["serial"] == "Z1ZFAKE5");
  CHECK(doc["drives"][0]["origin"]["slot"] == "sysfs:block/sdc/device/enclosure_device:Slot 05");

  auto earlier = test::run_diskfault({"--sysfs-root", dir + "/sys", "--udev-root", dir + "/udev",
                                      "--this-host", dir + "/earlier.log"});
  CHECK(earlier.status == 1);
  CHECK(json::parse(earlier.out)["drives"][0]["serial"].is_null());
}

TEST_CASE("the table shows a stacked device's mapper name and suspects, and a swapped drive") {
  auto table = [](const std::string& name) {
    std::string dir = case_dir(name);
    return test::run_diskfault({"--format", "table", "--sysfs-root", dir + "/sys", "--udev-root",
                                dir + "/udev", "--this-host", dir + "/current.log"})
        .out;
  };
  std::string dm = table("dm");
  CHECK(dm.find("(unresolved)  -    dm-3 (vg0-data)") != std::string::npos);
  CHECK(dm.find("suspects: sdc (2:0:0:0, serial Z1ZFAKE1) sdd (3:0:0:0, serial Z1ZFAKE4)") !=
        std::string::npos);
  std::string swapped = table("swapped");
  CHECK(swapped.find("note: sdc at 2:0:0:0: the log has ATA ST4000NM0033-9ZM at 2:0:0:0, the "
                     "host has ATA ST8000VN004-2M21 there now") != std::string::npos);
  CHECK(swapped.find("note:") == swapped.rfind("note:"));  // said once
}

TEST_CASE("diskfault says in one line on stderr which host files it could not read") {
  TempDir dir;
  fs::path root = copy_case("sas", dir);
  fs::path vpd =
      root / "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/host0/target0:0:1/0:0:1:0/vpd_pg80";
  fs::remove(vpd);
  fs::create_directory(vpd);
  auto run = test::run_diskfault({"--sysfs-root", (root / "sys").string(), "--udev-root",
                                  (root / "udev").string(), "--this-host",
                                  (root / "current.log").string()});
  CHECK(run.status == 1);  // faults found; the unreadable file is not an error
  CHECK(run.err.starts_with("diskfault: note: could not read 1 host file"));
  CHECK(run.err.find("vpd_pg80") != std::string::npos);
  CHECK(std::count(run.err.begin(), run.err.end(), '\n') == 1);
  CHECK(json::parse(run.out)["drives"][0]["serial"].is_null());
}

}  // namespace
}  // namespace diskfault
