// Correlation: ties the errors of one boot to drives, by presence at a bus address, going
// backwards.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "finding.hpp"
#include "matcher.hpp"

namespace diskfault {

// Collects the matches of one boot, newest first, and resolves them into findings when the scan
// leaves the boot. Identity semantics:
//  - A presence is a drive's stay at one address (H:C:T:L, an NVMe controller, or a libata port
//    the log cannot place). It ends, going forward, where a device appears at the address, or
//    where a drive attaches after the previous one was detached; a boot is the outer bound.
//  - Everything stated about the address during a presence (model, serial, the disk names bound
//    to it) belongs to that drive, before or after the error alike; nothing from another presence.
//  - An error on a disk name goes to the presence whose binding of that name covers the error;
//    with none, or more than one, it stays with the name alone (no guessing).
// To keep memory independent of the number of error lines, the boot is cut into segments at
// every presence boundary and each entity's matches are summed per segment; the resolution
// afterwards works on those sums.
class BootCorrelator {
 public:
  explicit BootCorrelator(std::size_t source) : source_(source) {}

  // Takes one match of the current boot (never a kBoot match). Matches must arrive newest first.
  void add(const Match& match);

  struct Result {
    std::vector<Finding> drives;
    std::vector<Unresolved> unresolved;
  };
  // Resolves everything added since the last call into findings (only presences that had
  // errors), tags them with the boot, and starts afresh for the previous boot.
  Result finish(std::uint32_t boot_from_end, const std::string& boot_key);

 private:
  // Drops what was gathered about the boot just finished.
  void forget();

  enum class KeyKind : std::uint8_t { kLocation, kPort, kName };
  using Key = std::pair<KeyKind, std::string>;

  struct Facts {
    std::map<std::string, Stated> serials;  // every distinct serial stated, with its newest line
    std::map<std::string, Stated> wwns;
    std::optional<Stated> vendor, model, pci, slot;
    int model_rank = 0;  // 2: the drive's own model string, 1: the 16-character SCSI INQUIRY one
    void state(Field field, std::string_view value, const Position& at, bool inquiry);
    void merge(const Facts& other);
  };
  struct Fragment {
    ErrorTally errors;
    Facts facts;
    std::set<std::string> names, partitions;
    void merge(const Fragment& other);
  };
  struct Boundary {
    std::uint64_t from_end;  // orders boundaries that share a segment
    std::uint32_t segment;
    Key key;
    EventType type;
  };

  std::size_t source_;
  std::uint32_t segment_ = 0;  // counts boundaries passed, going backwards
  std::map<std::pair<Key, std::uint32_t>, Fragment> fragments_;
  std::set<std::tuple<std::uint32_t, std::string, std::string>>
      bindings_;  // segment, disk, location
  std::map<std::string, std::set<std::string>>
      port_locations_;                                     // libata port -> H:C:T:L (whole boot)
  std::map<std::string, std::set<std::string>> episodes_;  // open libata episode: link -> addresses
  std::vector<Boundary> boundaries_;
  std::map<std::string, Unresolved> unresolved_;
  // Errors that name only their adapter, waiting (going backwards) for the line of their rule's
  // device_from that names the drive. It must come within kCommandReportLines lines: the
  // adapter prints its report right after the command, and a line further away may be another
  // drive's.
  static constexpr std::uint64_t kCommandReportLines = 16;
  struct AdapterError {
    const Rule* rule;
    std::string adapter, text;
    Position at;
    std::uint64_t lines;
  };
  std::vector<AdapterError> adapter_errors_;
  void add_unresolved(std::string_view device, std::string reason, const std::string& kind,
                      const Position& at, std::string_view text, std::uint64_t lines);
};

}  // namespace diskfault
