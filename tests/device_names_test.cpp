// Tests of block-device naming: partition -> disk, and classes of names.
#include "device_names.hpp"

#include <doctest/doctest.h>

using namespace diskfault;

TEST_CASE("a partition maps to its disk") {
  CHECK(disk_of("sdb1") == "sdb");
  CHECK(disk_of("sdaa3") == "sdaa");
  CHECK(disk_of("sdc") == "sdc");
  CHECK(disk_of("nvme0n1p2") == "nvme0n1");
  CHECK(disk_of("nvme0n1") == "nvme0n1");
  CHECK(disk_of("nvme10n12p3") == "nvme10n12");
  CHECK(disk_of("mmcblk0p1") == "mmcblk0");
  CHECK(disk_of("mmcblk0") == "mmcblk0");
  CHECK(disk_of("vda3") == "vda");
  CHECK(disk_of("xvdb1") == "xvdb");
}

TEST_CASE("names are classed as disks, stacked devices, non-disks or unknown") {
  for (auto name : {"sda", "sdaa3", "nvme0n1", "nvme0n1p1", "mmcblk0p2", "vdb", "xvda1", "hda"}) {
    CAPTURE(name);
    CHECK(classify_device(name) == DeviceClass::kDisk);
  }
  for (auto name : {"dm-3", "md0", "md127"}) {
    CAPTURE(name);
    CHECK(classify_device(name) == DeviceClass::kStacked);
  }
  for (auto name : {"loop0", "sr0", "ram1", "zram0", "fd0", "nbd3"}) {
    CAPTURE(name);
    CHECK(classify_device(name) == DeviceClass::kIgnored);
  }
  for (auto name : {"hci0", "rbd0", "nvme0", "sd", "dm-x"}) {
    CAPTURE(name);
    CHECK(classify_device(name) == DeviceClass::kUnknown);
  }
}

TEST_CASE("an NVMe namespace names its controller") {
  CHECK(nvme_controller_of("nvme0n1") == "nvme0");
  CHECK(nvme_controller_of("nvme12n3") == "nvme12");
  CHECK(nvme_controller_of("sda").empty());
}
