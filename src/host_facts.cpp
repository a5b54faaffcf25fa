// Reading sysfs and udev's database: bus addresses, identity strings, slots and stacked members.
#include "host_facts.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <system_error>

#include "device_names.hpp"
#include "file_descriptor.hpp"

namespace diskfault {
namespace {

namespace fs = std::filesystem;

// sysfs attributes are at most a page; udev database files are a few hundred bytes. Anything
// longer is not what we look for, and a bound keeps a strange file from costing memory.
constexpr std::size_t kMaxFileBytes = 64 * 1024;

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\0'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool looks_like_hctl(std::string_view s) {
  int parts = 0;
  while (true) {
    std::size_t colon = s.find(':');
    if (!all_digits(s.substr(0, colon))) return false;
    ++parts;
    if (colon == std::string_view::npos) break;
    s.remove_prefix(colon + 1);
  }
  return parts == 4;
}

bool is_nvme_controller(std::string_view s) {
  return s.starts_with("nvme") && all_digits(s.substr(4));
}

// The unit serial number VPD page: a 4-byte header whose last two bytes give the length.
std::optional<std::string> vpd_serial(std::string_view page) {
  if (page.size() < 4) return std::nullopt;
  std::size_t length =
      (static_cast<unsigned char>(page[2]) << 8) | static_cast<unsigned char>(page[3]);
  std::string_view serial = trim(page.substr(4, length));
  if (serial.empty()) return std::nullopt;
  return std::string(serial);
}

// Reads a small file whole. On failure returns nullopt with `error` set to errno (ENOENT for a
// file that is not there).
std::optional<std::string> read_small_file(const std::string& path, int& error) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) {
    error = errno;
    return std::nullopt;
  }
  std::string data;
  char buffer[4096];
  while (data.size() < kMaxFileBytes) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // EISDIR, or an attribute whose driver fails the read (EIO on an offline disk).
      error = errno;
      return std::nullopt;
    }
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  return data;
}

bool missing(int error) { return error == ENOENT || error == ENOTDIR; }

}  // namespace

std::string wwn_digits(std::string_view s) {
  s = trim(s);
  for (std::string_view prefix : {"0x", "naa.", "eui.", "NAA.", "EUI."}) {
    if (s.starts_with(prefix)) {
      s.remove_prefix(prefix.size());
      break;
    }
  }
  std::string out;
  for (char c : s) {
    if (c == '-') continue;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

HostFacts::HostFacts(HostRoots roots) : roots_(std::move(roots)) {}

void HostFacts::note_unreadable(const std::string& path, int error) {
  unreadable_.insert(path + ": " + std::strerror(error));
}

std::optional<std::string> HostFacts::read_sysfs(const std::string& rel) {
  std::string path = roots_.sysfs + "/" + rel;
  int error = 0;
  auto data = read_small_file(path, error);
  if (!data && !missing(error)) note_unreadable(path, error);
  return data;
}

std::optional<std::string> HostFacts::link_name(const std::string& rel) {
  std::error_code ec;
  fs::path target = fs::read_symlink(roots_.sysfs + "/" + rel, ec);
  if (ec) {
    // EINVAL: not a symlink (a fake or unusual tree); treat as absent like a missing link.
    if (!missing(ec.value()) && ec.value() != EINVAL) {
      note_unreadable(roots_.sysfs + "/" + rel, ec.value());
    }
    return std::nullopt;
  }
  std::string name = target.filename().string();
  if (name.empty()) return std::nullopt;
  return name;
}

std::vector<std::string> HostFacts::list_dir(const std::string& rel) {
  std::vector<std::string> names;
  std::error_code ec;
  fs::directory_iterator it(roots_.sysfs + "/" + rel, ec);
  if (ec) {
    if (!missing(ec.value())) {
      note_unreadable(roots_.sysfs + "/" + rel, ec.value());
    }
    return names;
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) note_unreadable(roots_.sysfs + "/" + rel, ec.value());
  std::sort(names.begin(), names.end());
  return names;
}

const std::map<std::string, std::string>& HostFacts::udev_entries(const std::string& dev) {
  auto [it, fresh] = udev_.try_emplace(dev);
  if (!fresh) return it->second;
  std::string path = roots_.udev + "/b" + dev;
  int error = 0;
  auto data = read_small_file(path, error);
  if (!data) {
    if (!missing(error)) note_unreadable(path, error);
    return it->second;
  }
  std::string_view rest = *data;
  while (!rest.empty()) {
    std::size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (!line.starts_with("E:")) continue;
    std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    it->second.emplace(std::string(line.substr(2, eq - 2)), std::string(line.substr(eq + 1)));
  }
  return it->second;
}

std::optional<std::string> HostFacts::disk_of(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return std::nullopt;
  }
  std::error_code ec;
  const std::string class_entry = roots_.sysfs + "/class/block/" + name;
  if (fs::exists(class_entry + "/partition", ec)) {
    // /sys/class/block/sdc1 -> ../../devices/.../block/sdc/sdc1: the parent is the disk.
    fs::path target = fs::read_symlink(class_entry, ec);
    if (!ec) {
      std::string parent = target.parent_path().filename().string();
      if (!parent.empty() && fs::exists(roots_.sysfs + "/block/" + parent, ec)) return parent;
    }
    return std::nullopt;
  }
  if (fs::exists(roots_.sysfs + "/block/" + name, ec)) return name;
  return std::nullopt;
}

std::optional<std::string> HostFacts::disk_at(const std::string& hctl) {
  if (!by_hctl_) {
    by_hctl_.emplace();
    for (const std::string& name : list_dir("block")) {
      auto link = link_name("block/" + name + "/device");
      if (link && looks_like_hctl(*link)) by_hctl_->emplace(*link, name);
    }
  }
  auto it = by_hctl_->find(hctl);
  if (it == by_hctl_->end()) return std::nullopt;
  return it->second;
}

std::optional<HostDisk> HostFacts::nvme_controller(const std::string& controller) {
  if (!is_nvme_controller(controller)) return std::nullopt;
  const std::string base = "class/nvme/" + controller;
  std::error_code ec;
  if (!fs::exists(roots_.sysfs + "/" + base, ec)) return std::nullopt;
  HostDisk d;
  d.name = controller;
  d.controller = HostValue{controller, "sysfs:" + base};
  auto attr = [&](std::optional<HostValue>& field, const std::string& file) {
    if (auto v = read_sysfs(base + "/" + file)) {
      if (std::string_view t = trim(*v); !t.empty())
        field = HostValue{std::string(t), "sysfs:" + base + "/" + file};
    }
  };
  attr(d.serial, "serial");
  attr(d.model, "model");
  attr(d.rev, "firmware_rev");
  attr(d.pci, "address");
  return d;
}

std::optional<HostDisk> HostFacts::disk(const std::string& name) {
  auto whole = disk_of(name);
  if (!whole) return std::nullopt;
  const std::string base = "block/" + *whole;
  HostDisk d;
  d.name = *whole;

  // The first file of `files` (under the device's sysfs directory) that holds a non-blank value.
  auto attr = [&](std::optional<HostValue>& field, std::initializer_list<std::string> files) {
    for (const std::string& file : files) {
      if (field) return;
      if (auto v = read_sysfs(base + "/" + file)) {
        if (std::string_view t = trim(*v); !t.empty()) {
          field = HostValue{std::string(t), "sysfs:" + base + "/" + file};
        }
      }
    }
  };
  attr(d.dev, {"dev"});
  std::optional<HostDisk> controller;
  bool nvme_subsystem = false;
  if (auto link = link_name(base + "/device")) {
    if (looks_like_hctl(*link)) d.hctl = HostValue{*link, "sysfs:" + base + "/device"};
    if (is_nvme_controller(*link)) {
      d.controller = HostValue{*link, "sysfs:" + base + "/device"};
      controller = nvme_controller(*link);
    }
    // Native NVMe multipath: the namespace hangs off its subsystem, which has a model too.
    nvme_subsystem = link->starts_with("nvme-subsys");
  }
  // device/vendor and device/model are the SCSI INQUIRY strings only on a SCSI device; on
  // virtio or PCI the device directory's "vendor" is a bus vendor id (0x1af4), not the drive's.
  if (d.hctl) {
    attr(d.vendor, {"device/vendor"});
    attr(d.model, {"device/model"});
    attr(d.rev, {"device/rev"});
  }
  if (controller) {
    d.model = controller->model;
    d.rev = controller->rev;
    d.pci = controller->pci;
  }
  if (nvme_subsystem) {
    attr(d.model, {"device/model"});
    attr(d.rev, {"device/firmware_rev"});
  }
  attr(d.mapper_name, {"dm/name"});

  const std::map<std::string, std::string> no_entries;
  const auto& udev = d.dev ? udev_entries(d.dev->value) : no_entries;
  auto udev_value = [&](const char* key) -> std::optional<HostValue> {
    auto it = udev.find(key);
    if (it == udev.end() || trim(it->second).empty()) return std::nullopt;
    return HostValue{std::string(trim(it->second)), "udev:b" + d.dev->value + " E:" + key};
  };

  // device/wwid holds a WWN only as an naa. or eui. designator; libata's t10. form is the
  // vendor, model and serial run together.
  for (const std::string file : {"device/wwid", "wwid"}) {
    if (d.wwn) break;
    if (auto v = read_sysfs(base + "/" + file)) {
      std::string_view t = trim(*v);
      if (t.starts_with("naa.") || t.starts_with("eui.")) {
        d.wwn = HostValue{std::string(t), "sysfs:" + base + "/" + file};
      }
    }
  }
  if (!d.wwn) d.wwn = udev_value("ID_WWN");

  // On SAS drives udev's ID_SERIAL_SHORT is often the WWN and ID_SERIAL the WWN behind an NAA
  // type digit ("3"): neither is the serial on the label.
  const std::string wwn = d.wwn ? wwn_digits(d.wwn->value) : std::string();
  auto is_wwn = [&](const std::string& value) {
    std::string digits = wwn_digits(value);
    return !wwn.empty() && (digits == wwn || digits == "3" + wwn);
  };
  for (const char* key : {"SCSI_IDENT_SERIAL", "ID_SCSI_SERIAL", "ID_SERIAL_SHORT", "ID_SERIAL"}) {
    if (auto v = udev_value(key); v && !is_wwn(v->value)) {
      d.serial = std::move(v);
      break;
    }
  }
  if (!d.serial && controller) d.serial = controller->serial;
  if (!d.serial) {
    if (auto page = read_sysfs(base + "/device/vpd_pg80")) {
      if (auto serial = vpd_serial(*page)) {
        d.serial = HostValue{*serial, "sysfs:" + base + "/device/vpd_pg80"};
      }
    }
  }
  // device/serial: NVMe subsystems, MMC cards; serial: virtio-blk disks.
  attr(d.serial, {"device/serial", "serial"});

  if (d.hctl) {
    // An enclosure names the slot with a link device/enclosure_device:<slot name>.
    constexpr std::string_view kPrefix = "enclosure_device:";
    for (const std::string& entry : list_dir(base + "/device")) {
      if (entry.starts_with(kPrefix) && entry.size() > kPrefix.size()) {
        d.slot = HostValue{entry.substr(kPrefix.size()), "sysfs:" + base + "/device/" + entry};
        break;
      }
    }
  }
  return d;
}

void HostFacts::members_into(const std::string& name, std::set<std::string>& out,
                             std::set<std::string>& seen) {
  if (!seen.insert(name).second) return;  // a loop in a broken tree
  for (const std::string& member : list_dir("block/" + name + "/slaves")) {
    if (classify_device(member) == DeviceClass::kStacked) {
      members_into(member, out, seen);
    } else {
      out.insert(member);
    }
  }
}

std::vector<std::string> HostFacts::members(const std::string& name) {
  std::set<std::string> out, seen;
  if (disk_of(name) == name) members_into(name, out, seen);
  return {out.begin(), out.end()};
}

}  // namespace diskfault
