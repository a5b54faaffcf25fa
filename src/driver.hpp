// The driver: a generator that steers the matcher through one log and yields what it traced.
#pragma once

#include <cstdint>
#include <variant>

#include "coroutine.hpp"
#include "finding.hpp"
#include "matcher.hpp"

namespace diskfault {

using Traced = std::variant<Finding, Unresolved>;

// What the driver learned about the log's shape while tracing it.
struct TraceStats {
  std::uint32_t boots = 0;  // boots passed (each ends at a boundary or at the file's start)
};

// Steers `matcher` (which must not have been started) over one source: the driver asks for the
// events it can still use, hands every match of a boot to a BootCorrelator, and when the scan
// leaves a boot (at a boundary, or at the start of the file) yields the boot's drives with errors
// and its unresolved devices, newest boot first. One backward pass, whatever the number of failing
// drives. `stats`, if not null, must outlive the generator; it is complete once the generator has
// finished.
Generator<Traced> trace_drives(SendGenerator<Match, Want> matcher, std::size_t source,
                               TraceStats* stats);

}  // namespace diskfault
