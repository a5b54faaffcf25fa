// Kernel block-device names: partition -> disk, and which names are disks at all.
#pragma once

#include <string>
#include <string_view>

namespace diskfault {

enum class DeviceClass {
  kDisk,     // a drive or a partition of one: sdc, sdc1, nvme0n1p2, mmcblk0p1, vda3, xvdb
  kStacked,  // built on other devices: dm-3, md127 (the log alone cannot name the drive)
  kIgnored,  // not a disk: loop, ram, zram, sr (optical), fd, nbd
  kUnknown,  // anything else
};

DeviceClass classify_device(std::string_view name);

// The disk a partition belongs to ("sdb1" -> "sdb", "nvme0n1p2" -> "nvme0n1", "mmcblk0p1" ->
// "mmcblk0"); a whole-disk name is returned unchanged.
std::string disk_of(std::string_view name);

// The NVMe controller of a namespace ("nvme0n1" -> "nvme0"), or "" for other names.
std::string nvme_controller_of(std::string_view disk);

}  // namespace diskfault
