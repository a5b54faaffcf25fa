// Joining the log's story with the host's present: host facts for errors in its current boot only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "host_facts.hpp"
#include "report.hpp"

namespace diskfault {

struct HostOptions {
  HostRoots roots;
  // The user says the logs are this host's: the last boot of the last source is its current
  // boot (sources are given oldest first).
  bool this_host = false;
  // The running kernel's boot id, compared with a journal's "-- Boot <id> --" separator.
  std::string boot_id_file = "/proc/sys/kernel/random/boot_id";
};

// Whether boot `boot` (1-based) of source `source`, whose first line is `boot_key`, is the host's
// current boot: it must be the source's last boot, and the source the live kernel log, or the
// last source under --this-host, or `boot_key` a "-- Boot <id> --" separator naming `boot_id`
// (dashes and case do not matter). Anything else may be another boot or another host.
bool is_current_boot(const Report& report, std::size_t source, std::uint32_t boot,
                     const std::string& boot_key, const HostOptions& options,
                     const std::optional<std::string>& boot_id);

// Adds what the host knows to the report's entries for errors in its current boot, and only
// to those (the host describes the present; an earlier boot may have had another drive there):
//  - a drive gets the host's serial, WWN, slot, vendor, model and address for the fields the log
//    leaves empty, each with its origin, provided the log and the host agree on the drive: if
//    the log's vendor, model, serial, WWN, PCI address or disk name differ from the host's, the
//    drive was replaced since the error; it gets host_mismatch and a note and keeps the log's
//    facts only;
//  - an unresolved dm-N or mdN gets its mapper name and its member drives as suspects.
// Must be called on a built report (boots are 1-based). Reads nothing from the host when no
// entry is in its current boot. Never throws for what the host lacks or hides; returns the
// files that exist but could not be read ("<path>: <reason>"), sorted, for the caller to mention.
std::vector<std::string> apply_host_facts(Report& report, const HostOptions& options);

}  // namespace diskfault
