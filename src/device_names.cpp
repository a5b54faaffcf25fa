// Name rules of the kernel's block devices (sd_format_disk_name, nvme and mmc naming).
#include "device_names.hpp"

#include <array>

namespace diskfault {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }

// "sd" + letters, optionally + digits.
bool letters_then_digits(std::string_view rest) {
  std::size_t i = 0;
  while (i < rest.size() && is_lower(rest[i])) ++i;
  if (i == 0) return false;
  while (i < rest.size() && is_digit(rest[i])) ++i;
  return i == rest.size();
}

bool digits_only(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// "nvme<d>n<d>" optionally followed by "p<d>"; also mmcblk<d>[p<d>].
bool numbered_with_part(std::string_view name, std::string_view prefix, bool namespace_part) {
  if (!name.starts_with(prefix)) return false;
  std::string_view rest = name.substr(prefix.size());
  std::size_t i = 0;
  while (i < rest.size() && is_digit(rest[i])) ++i;
  if (i == 0) return false;
  if (namespace_part) {
    if (i >= rest.size() || rest[i] != 'n') return false;
    std::size_t j = ++i;
    while (i < rest.size() && is_digit(rest[i])) ++i;
    if (i == j) return false;
  }
  if (i == rest.size()) return true;
  return rest[i] == 'p' && digits_only(rest.substr(i + 1));
}

constexpr std::array<std::string_view, 4> kLetterDisks{"sd", "vd", "xvd", "hd"};

}  // namespace

DeviceClass classify_device(std::string_view name) {
  if (numbered_with_part(name, "nvme", true) || numbered_with_part(name, "mmcblk", false)) {
    return DeviceClass::kDisk;
  }
  for (std::string_view prefix :
       {std::string_view("loop"), std::string_view("ram"), std::string_view("zram"),
        std::string_view("sr"), std::string_view("fd"), std::string_view("nbd")}) {
    if (name.starts_with(prefix) && digits_only(name.substr(prefix.size()))) {
      return DeviceClass::kIgnored;
    }
  }
  if (name.starts_with("dm-") && digits_only(name.substr(3))) return DeviceClass::kStacked;
  if (name.starts_with("md") && digits_only(name.substr(2))) return DeviceClass::kStacked;
  for (std::string_view prefix : kLetterDisks) {
    if (name.starts_with(prefix) && letters_then_digits(name.substr(prefix.size()))) {
      return DeviceClass::kDisk;
    }
  }
  return DeviceClass::kUnknown;
}

std::string disk_of(std::string_view name) {
  if (name.starts_with("nvme") || name.starts_with("mmcblk")) {
    std::size_t p = name.rfind('p');
    if (p != std::string_view::npos && p > 4 && is_digit(name[p - 1]) &&
        digits_only(name.substr(p + 1))) {
      return std::string(name.substr(0, p));
    }
    return std::string(name);
  }
  std::size_t end = name.size();
  while (end > 0 && is_digit(name[end - 1])) --end;
  if (end == 0 || end == name.size()) return std::string(name);
  return std::string(name.substr(0, end));
}

std::string nvme_controller_of(std::string_view disk) {
  if (!numbered_with_part(disk, "nvme", true)) return {};
  std::size_t n = disk.find('n', 4);
  return std::string(disk.substr(0, n));
}

}  // namespace diskfault
