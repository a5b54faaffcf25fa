// The result model: what the log says about one drive's errors (one presence) or an unresolved
// device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace diskfault {

// Where a line is. While a source is being scanned only `from_end` is known; the report fills in
// `line` (1-based from the start) once the source's line count is.
struct Position {
  Position() = default;
  Position(std::size_t in_source, std::uint64_t at_from_end, std::uint64_t at_line,
           std::string stamp)
      : source(in_source), from_end(at_from_end), line(at_line), time(std::move(stamp)) {}

  std::size_t source = 0;
  std::uint64_t from_end = 0;
  std::uint64_t line = 0;
  std::uint32_t boot_from_end = 0;  // 0 = the source's last boot
  std::uint32_t boot = 0;           // 1-based from the source's first boot, set by the report
  std::string time;                 // as the log wrote it; "" when the line has no stamp

  // Older positions sort first: an earlier source, or further from the end of the same one.
  bool older_than(const Position& other) const {
    return source != other.source ? source < other.source : from_end > other.from_end;
  }
};

struct Evidence {
  Position at;
  std::string kind;
  std::string text;  // the raw log line (may hold invalid UTF-8; printers must cope)
};

// Errors counted for one drive or device, with a few lines that show them.
class ErrorTally {
 public:
  static constexpr std::size_t kEvidenceLimit = 5;

  // One error line, or `lines` of them alike of which this is the oldest kept (a follower that
  // let the others go still counts them).
  void add(const std::string& kind, const Position& at, std::string_view text,
           std::uint64_t lines = 1);
  void merge(const ErrorTally& other);

  std::uint64_t total() const { return total_; }
  const std::map<std::string, std::uint64_t>& by_kind() const { return by_kind_; }
  const Position& first() const { return first_->at; }
  const Position& last() const { return newest_.front().at; }
  bool empty() const { return total_ == 0; }
  // At most kEvidenceLimit lines, oldest first: the first error, the newest line of each kind,
  // then the newest lines.
  std::vector<Evidence> evidence() const;
  // Rewrites every position with `fix` (used to tag boots and turn from_end into line numbers).
  template <typename Fix>
  void fix_positions(Fix fix) {
    if (first_) fix(first_->at);
    for (auto& e : newest_) fix(e.at);
    for (auto& [kind, e] : newest_by_kind_) fix(e.at);
  }

 private:
  void offer(const Evidence& e);

  std::uint64_t total_ = 0;
  std::map<std::string, std::uint64_t> by_kind_;
  std::optional<Evidence> first_;  // the oldest error
  std::vector<Evidence> newest_;   // newest first, at most kEvidenceLimit
  std::map<std::string, Evidence> newest_by_kind_;
};

// A value the log states, with the line that states it.
struct Stated {
  std::string value;
  Position at;
};

// One drive during one presence (or, where the log cannot tell, one device or port within one
// boot), and its errors. Fields the log does not determine stay empty.
struct Finding {
  std::optional<Stated> serial, vendor, model, wwn, pci, slot;
  std::optional<std::string> hctl;        // SCSI address "H:C:T:L"
  std::optional<std::string> controller;  // NVMe controller "nvme0"
  std::optional<std::string> port;        // libata port "ata3.00"
  std::vector<std::string> devices;       // disk names, sorted
  std::vector<std::string> partitions;    // partition names, sorted
  ErrorTally errors;
  std::size_t source = 0;
  std::uint32_t boot_from_end = 0;  // 0 = the source's last boot
  std::uint32_t boot = 0;           // 1-based from the start, filled in by the report
  std::string boot_key;             // the boot's first line, where the log has it
  std::vector<std::string> notes;   // why a field is empty although the log mentions it
  // Values the running host supplied (see host_enrich.hpp), by field name ("serial", "hctl",
  // ...) -> where the host said it ("udev:b8:32 E:SCSI_IDENT_SERIAL"). Such a value's Stated
  // position means nothing; values from the log have no entry here.
  std::map<std::string, std::string> origin;
  // Set when the host has another drive at this address than the log describes (swapped since
  // the error): the host's facts were not used.
  std::optional<std::string> host_mismatch;
};

// A drive beneath a stacked device, as the host sees it now: one of them may have caused the
// stacked device's error.
struct Suspect {
  std::string device;  // the member as the stacked device lists it ("sdc1")
  std::string disk;    // its whole disk ("sdc")
  std::optional<std::string> hctl, vendor, model, serial, wwn, slot;
  std::map<std::string, std::string> origin;  // field -> where the host said it
};

// Errors on a device the log cannot tie to a drive (dm-3, md0, an unknown name).
struct Unresolved {
  std::string device;
  std::string reason;
  ErrorTally errors;
  std::size_t source = 0;
  std::uint32_t boot_from_end = 0;
  std::uint32_t boot = 0;
  std::string boot_key;
  // From the running host, for an error in its current boot (see host_enrich.hpp).
  std::optional<std::string> mapper_name;     // device-mapper name, "vg0-data"
  std::vector<Suspect> suspects;              // the drives beneath, by device
  std::map<std::string, std::string> origin;  // field -> where the host said it
};

}  // namespace diskfault
