// The rule for asking the host: only about errors in its current boot, only where it agrees with
// the log.
#include "host_enrich.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>
#include <string_view>

#include "file_descriptor.hpp"
#include "source.hpp"

namespace diskfault {
namespace {

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) || c == '\0'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// A boot id as bare lowercase hex: the kernel writes it with dashes, journalctl without.
std::string boot_id_digits(std::string_view id) {
  std::string out;
  for (char c : trim(id)) {
    if (c != '-') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

// The running kernel's boot id; nullopt when the file is missing (noted when it is unreadable).
std::optional<std::string> read_boot_id(const std::string& path,
                                        std::set<std::string>& unreadable) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  char buffer[128];
  ssize_t n = -1;
  if (fd.valid()) {
    do {
      n = ::read(fd.get(), buffer, sizeof buffer);
    } while (n < 0 && errno == EINTR);
  }
  if (n < 0) {
    if (errno != ENOENT && errno != ENOTDIR) unreadable.insert(path + ": " + std::strerror(errno));
    return std::nullopt;
  }
  std::string id = boot_id_digits(std::string_view(buffer, static_cast<std::size_t>(n)));
  if (id.empty()) return std::nullopt;
  return id;
}

// Model strings as the log and sysfs spell them: udev writes '_' for ' ', SCSI pads with spaces.
std::string normalized(std::string_view s) {
  std::string out;
  for (char c : trim(s)) {
    if (c == '_') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The SCSI INQUIRY product field holds 16 characters, so sd's model of an ATA drive is the first
// 16 of the drive's own (libata's, smartd's): one being a prefix of the other that long is the
// same model. (15: the 16th may have been a space, trimmed away.)
constexpr std::size_t kInquiryModelChars = 15;

bool same_model(std::string_view a, std::string_view b) {
  std::string x = normalized(a), y = normalized(b);
  if (x.size() > y.size()) std::swap(x, y);
  return x == y || (x.size() >= kInquiryModelChars && y.starts_with(x));
}

std::string describe(const std::optional<std::string>& vendor,
                     const std::optional<std::string>& model) {
  std::string out;
  if (vendor) out = normalized(*vendor);
  if (model) out += (out.empty() ? "" : " ") + normalized(*model);
  return out.empty() ? "an unnamed drive" : out;
}

std::optional<std::string> value_of(const std::optional<Stated>& s) {
  if (!s) return std::nullopt;
  return s->value;
}
std::optional<std::string> value_of(const std::optional<HostValue>& v) {
  if (!v) return std::nullopt;
  return v->value;
}

// Why the host's drive is not the log's, or nullopt when nothing the log states contradicts it.
// `where` names the address or name the two were matched by ("at 2:0:0:0", "sdc").
std::optional<std::string> disagreement(const Finding& f, const HostDisk& host,
                                        const std::string& where) {
  const std::string tail = " since the error; the host's facts are not this drive's";
  if (!f.devices.empty() &&
      std::find(f.devices.begin(), f.devices.end(), host.name) == f.devices.end()) {
    std::string names;
    for (const std::string& d : f.devices) names += (names.empty() ? "" : ", ") + d;
    return "the log has " + names + " " + where + ", the host has " + host.name +
           " there now: the drive was re-attached or replaced" + tail;
  }
  bool vendor_differs =
      f.vendor && host.vendor && normalized(f.vendor->value) != normalized(host.vendor->value);
  bool model_differs = f.model && host.model && !same_model(f.model->value, host.model->value);
  if (vendor_differs || model_differs) {
    return "the log has " + describe(value_of(f.vendor), value_of(f.model)) + " " + where +
           ", the host has " + describe(value_of(host.vendor), value_of(host.model)) +
           " there now: the drive was replaced" + tail;
  }
  if (f.serial && host.serial && trim(f.serial->value) != trim(host.serial->value)) {
    return "the log has serial " + f.serial->value + " " + where + ", the host has " +
           host.serial->value + " there now: the drive was replaced" + tail;
  }
  if (f.wwn && host.wwn && wwn_digits(f.wwn->value) != wwn_digits(host.wwn->value)) {
    return "the log has WWN " + f.wwn->value + " " + where + ", the host has " + host.wwn->value +
           " there now: the drive was replaced" + tail;
  }
  if (f.pci && host.pci && trim(f.pci->value) != trim(host.pci->value)) {
    return "the log has " + where + " at PCI " + f.pci->value + ", the host has it at " +
           host.pci->value + ": the controller was moved or replaced" + tail;
  }
  if (f.controller && host.controller && *f.controller != host.controller->value) {
    return "the log has " + host.name + " on " + *f.controller + ", the host has it on " +
           host.controller->value + " now: renamed" + tail;
  }
  return std::nullopt;
}

void give(Finding& f, std::optional<Stated>& field, const std::optional<HostValue>& value,
          const char* name) {
  if (field || !value) return;
  // Not a line of the log: the position only names the boot the value is given for.
  Position at{f.source, 0, 0, ""};
  at.boot_from_end = f.boot_from_end;
  at.boot = f.boot;
  field = Stated{value->value, std::move(at)};
  f.origin[name] = value->origin;
}

void give(Finding& f, std::optional<std::string>& field, const std::optional<HostValue>& value,
          const char* name) {
  if (field || !value) return;
  field = value->value;
  f.origin[name] = value->origin;
}

void enrich(Finding& f, HostFacts& facts) {
  std::optional<HostDisk> host;
  std::string where;
  if (f.hctl) {
    where = "at " + *f.hctl;
    if (auto name = facts.disk_at(*f.hctl)) host = facts.disk(*name);
    if (!host) {
      f.notes.push_back("the host has no disk at " + *f.hctl + " now: no facts from the host");
      return;
    }
  } else if (f.devices.size() == 1) {
    where = f.devices.front();
    host = facts.disk(f.devices.front());
    if (!host) {
      f.notes.push_back("the host has no " + f.devices.front() + " now: no facts from the host");
      return;
    }
  } else if (f.controller && f.devices.empty()) {
    where = *f.controller;
    host = facts.nvme_controller(*f.controller);
    if (!host) return;
  } else {
    return;  // a libata port alone, or several names: nothing to ask the host about
  }

  if (auto why = disagreement(f, *host, where)) {
    f.host_mismatch = *why;
    f.notes.push_back(*why);
    return;
  }
  if (!f.vendor && !f.model && !f.serial && !f.wwn && !f.pci) {
    f.notes.push_back("the log does not name the drive " + where +
                      "; the host's facts assume it was not replaced during the current boot");
  }
  give(f, f.serial, host->serial, "serial");
  give(f, f.hctl, host->hctl, "hctl");
  give(f, f.controller, host->controller, "controller");
  give(f, f.vendor, host->vendor, "vendor");
  give(f, f.model, host->model, "model");
  give(f, f.wwn, host->wwn, "wwn");
  give(f, f.pci, host->pci, "pci");
  give(f, f.slot, host->slot, "slot");
}

void enrich(Unresolved& u, HostFacts& facts) {
  auto host = facts.disk(u.device);
  if (!host || host->name != u.device) return;
  if (host->mapper_name) {
    u.mapper_name = host->mapper_name->value;
    u.origin["mapper_name"] = host->mapper_name->origin;
  }
  for (const std::string& member : facts.members(u.device)) {
    Suspect s;
    s.device = member;
    if (auto disk = facts.disk(member)) {
      s.disk = disk->name;
      auto put = [&](std::optional<std::string>& field, const std::optional<HostValue>& v,
                     const char* name) {
        if (!v) return;
        field = v->value;
        s.origin[name] = v->origin;
      };
      put(s.hctl, disk->hctl, "hctl");
      put(s.vendor, disk->vendor, "vendor");
      put(s.model, disk->model, "model");
      put(s.serial, disk->serial, "serial");
      put(s.wwn, disk->wwn, "wwn");
      put(s.slot, disk->slot, "slot");
    }
    u.suspects.push_back(std::move(s));
  }
  if (!u.suspects.empty()) u.origin["suspects"] = "sysfs:block/" + u.device + "/slaves";
}

constexpr std::string_view kBootSeparator = "-- Boot ";

}  // namespace

bool is_current_boot(const Report& report, std::size_t source, std::uint32_t boot,
                     const std::string& boot_key, const HostOptions& options,
                     const std::optional<std::string>& boot_id) {
  if (source >= report.sources.size() || boot != report.sources[source].boots) return false;
  if (report.sources[source].path == kKernelLogPath) return true;
  if (options.this_host && source + 1 == report.sources.size()) return true;
  std::string_view key = trim(boot_key);
  if (boot_id && key.starts_with(kBootSeparator) && key.ends_with(" --")) {
    key.remove_prefix(kBootSeparator.size());
    key.remove_suffix(3);
    return !boot_id->empty() && boot_id_digits(key) == *boot_id;
  }
  return false;
}

std::vector<std::string> apply_host_facts(Report& report, const HostOptions& options) {
  std::set<std::string> unreadable;
  // The boot id is read only when a boot could be proved current by it.
  std::optional<std::string> boot_id;
  auto needs_boot_id = [&](const std::string& key) {
    return trim(key).starts_with(kBootSeparator);
  };
  if (std::any_of(report.drives.begin(), report.drives.end(),
                  [&](const Finding& f) { return needs_boot_id(f.boot_key); }) ||
      std::any_of(report.unresolved.begin(), report.unresolved.end(),
                  [&](const Unresolved& u) { return needs_boot_id(u.boot_key); })) {
    boot_id = read_boot_id(options.boot_id_file, unreadable);
  }
  auto current = [&](const auto& entry) {
    return is_current_boot(report, entry.source, entry.boot, entry.boot_key, options, boot_id);
  };

  std::optional<HostFacts> facts;  // opened at the first entry that may ask the host
  for (Finding& f : report.drives) {
    if (!current(f)) continue;
    if (!facts) facts.emplace(options.roots);
    enrich(f, *facts);
  }
  for (Unresolved& u : report.unresolved) {
    if (!current(u)) continue;
    if (!facts) facts.emplace(options.roots);
    enrich(u, *facts);
  }
  if (facts) unreadable.insert(facts->unreadable().begin(), facts->unreadable().end());
  return {unreadable.begin(), unreadable.end()};
}

}  // namespace diskfault
