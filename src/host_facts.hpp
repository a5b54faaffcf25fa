// What the running host says about its block devices now, from sysfs and udev (as lsblk reads
// them).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace diskfault {

// A value read from the host, with where it was read: "sysfs:<path under the sysfs root>" or
// "udev:b<major>:<minor> E:<KEY>" (for instance "sysfs:block/sdc/device/vpd_pg80",
// "udev:b8:32 E:SCSI_IDENT_SERIAL").
struct HostValue {
  std::string value;
  std::string origin;
};

// One block device as the host sees it now. Fields the host does not have stay empty.
struct HostDisk {
  std::string name;                     // "sdc", "nvme0n1", "dm-3", "md0"
  std::optional<HostValue> dev;         // "8:32" (major:minor)
  std::optional<HostValue> hctl;        // SCSI address, the name of the device link's target
  std::optional<HostValue> controller;  // NVMe controller ("nvme0") of a namespace
  std::optional<HostValue> vendor, model, rev, serial, wwn, slot, pci;
  std::optional<HostValue> mapper_name;  // device-mapper name (dm/name), "vg0-data"
};

// A WWN as bare lowercase hex digits, however it is spelled: "0x5000c500...",
// "naa.5000C500...", "5-000c50-0ab5e59fc" (smartd) all give "5000c500...".
std::string wwn_digits(std::string_view wwn);

// Where the host's facts are read. Tests point these at a fake tree (testdata/host/<case>/).
struct HostRoots {
  std::string sysfs = "/sys";
  std::string udev = "/run/udev/data";
};

// Reads the host's current view of its block devices, lazily and each file at most once.
// Missing files are normal (a device without udev data, a kernel without vpd_pg80) and give
// empty fields; a file that exists but cannot be read (permission denied, I/O error) also gives
// an empty field and is remembered in unreadable(). No method throws for what it reads.
class HostFacts {
 public:
  explicit HostFacts(HostRoots roots);

  // The whole disk that block device `name` is or belongs to on the host ("sdc1" -> "sdc",
  // through /sys/class/block/sdc1/partition and its parent; "sdc" -> "sdc"), or nullopt when
  // the host has no such block device.
  std::optional<std::string> disk_of(const std::string& name);

  // The block device at SCSI address `hctl` ("2:0:0:0"), or nullopt when nothing is there now.
  std::optional<std::string> disk_at(const std::string& hctl);

  // Everything the host says about block device `name` (a partition is read as its disk), or
  // nullopt when /sys/block has no such device. Serial in this order: udev's
  // E:SCSI_IDENT_SERIAL, E:ID_SCSI_SERIAL, E:ID_SERIAL_SHORT, E:ID_SERIAL (each skipped when
  // it is only the WWN, as on many SAS drives), the NVMe controller's serial,
  // device/vpd_pg80, device/serial, serial (virtio). Vendor, model and rev from device/ for a
  // SCSI device, from the controller for NVMe. WWN from device/wwid (an naa. or eui. id only),
  // wwid, then E:ID_WWN.
  std::optional<HostDisk> disk(const std::string& name);

  // The NVMe controller `controller` ("nvme0") by itself: serial, model, pci (address); nullopt
  // when /sys/class/nvme has no such controller.
  std::optional<HostDisk> nvme_controller(const std::string& controller);

  // The block devices a stacked device (dm-N, mdN) is built on, followed down through stacked
  // members to the devices that are not stacked (often partitions: "sdc1"), sorted. Empty when
  // `name` has no slaves/ directory.
  std::vector<std::string> members(const std::string& name);

  // Paths that exist but could not be read, each with the reason ("/sys/block/sda/device/vpd_pg80:
  // Permission denied"), sorted.
  const std::set<std::string>& unreadable() const { return unreadable_; }

 private:
  // Reads a small file under the sysfs root; nullopt when it is missing or unreadable.
  std::optional<std::string> read_sysfs(const std::string& rel);
  // The name of a symlink's target ("block/sdc/device" -> "2:0:0:0"), or nullopt.
  std::optional<std::string> link_name(const std::string& rel);
  std::vector<std::string> list_dir(const std::string& rel);
  const std::map<std::string, std::string>& udev_entries(const std::string& dev);
  void note_unreadable(const std::string& path, int error);
  void members_into(const std::string& name, std::set<std::string>& out,
                    std::set<std::string>& seen);

  HostRoots roots_;
  std::set<std::string> unreadable_;
  std::map<std::string, std::map<std::string, std::string>> udev_;  // by "8:32"
  std::optional<std::map<std::string, std::string>> by_hctl_;       // hctl -> block device
};

}  // namespace diskfault
