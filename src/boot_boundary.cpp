// Boot boundaries read forward: the mirror of the matcher's backward boundary detection.
#include "boot_boundary.hpp"

namespace diskfault {

bool ForwardBootTracker::fresh() const {
  switch (last_sign_) {
    case BootSign::kNone:
      return true;
    case BootSign::kExplicit:
      return kernel_lines_since_ > 0;
    case BootSign::kClockRestart:
      return late_clock_since_;
  }
  return true;
}

void ForwardBootTracker::mark(BootSign sign) {
  last_sign_ = sign;
  kernel_lines_since_ = 0;
  late_clock_since_ = false;
}

bool ForwardBootTracker::starts_boot(const Record& record, bool boot_rule) {
  if (record.kind == RecordKind::kContinuation || record.kind == RecordKind::kMeta) return false;
  if (record.kind == RecordKind::kBootSeparator) {
    earlier_monotonic_ = -1;
    if (!fresh()) return false;
    mark(BootSign::kExplicit);
    return true;
  }
  bool boundary = false;
  if (record.monotonic >= 0) {
    if (clock_restarted(earlier_monotonic_, record.monotonic) && fresh()) {
      mark(BootSign::kClockRestart);
      boundary = true;
    }
    earlier_monotonic_ = record.monotonic;
  }
  if (boot_rule) {
    // Not counted as a line of either boot, as in the matcher.
    if (fresh()) {
      mark(BootSign::kExplicit);
      boundary = true;
    }
    return boundary;
  }
  if (record.kernel) ++kernel_lines_since_;
  if (record.monotonic > kBootPrelude) late_clock_since_ = true;
  return boundary;
}

}  // namespace diskfault
