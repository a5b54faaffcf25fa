// A fault event of follow mode and its two outward forms: an NDJSON line and a command's
// environment.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "finding.hpp"

namespace diskfault {

// One thing follow mode tells its sinks: a drive (or an unresolved device) had errors.
struct FollowEvent {
  enum class Reason {
    kError,    // a new error line, the first of its drive and kind in a quiet period
    kRepeats,  // the end of a quiet period: `count` lines of the drive and kind were folded
    kBacklog,  // --from-start: errors already in the log when following began
  };
  Reason reason = Reason::kError;
  std::string kind;               // the error kind ("xfs", "medium", ...)
  std::string line;               // the line that triggered the event (the newest folded one)
  std::string time;               // its timestamp as the log writes it, or ""
  std::uint64_t line_number = 0;  // its number in the followed stream
  std::uint64_t count = 1;        // error lines of this drive and kind the event stands for
  double detected_at = 0;         // seconds since the epoch when the event was made
  std::string log;                // the followed log's name
  // Exactly one of these: the drive as the report would describe it now (its errors are those
  // of the current boot), or the device the log cannot tie to a drive.
  std::optional<Finding> drive;
  std::optional<Unresolved> unresolved;
};

std::string_view reason_name(FollowEvent::Reason reason);

// The event as one line of JSON ending in '\n': an "event" object (reason, kind, count, line,
// line_number, time, detected_at, log, dropped) followed by the fields of the report's drive
// entry, or of its unresolved entry. `dropped` is how many events the sink had to drop since
// the previous one it delivered. Log bytes that are not UTF-8 come out as U+FFFD.
std::string event_json(const FollowEvent& event, std::uint64_t dropped);

// The event as environment entries ("NAME=value") for --exec, in the manner of smartd's
// SMARTD_*: DISKFAULT_REASON, _KIND, _COUNT, _LINE, _LINE_NUMBER, _TIME, _SERIAL, _DEVICE
// (disk names, space-separated), _PARTITIONS, _HCTL, _MODEL, _VENDOR, _WWN, _PORT, _CONTROLLER,
// _SLOT, _LOG, _DROPPED, _DETECTED_AT. Unknown values are empty; a NUL byte ends a value.
std::vector<std::string> event_environment(const FollowEvent& event, std::uint64_t dropped);

// `seconds` since the epoch as RFC 3339 UTC with milliseconds ("2026-03-01T12:00:00.250Z").
std::string rfc3339_utc(double seconds);

}  // namespace diskfault
