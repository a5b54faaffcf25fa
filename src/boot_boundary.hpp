// What marks a reboot in a log: the clock rules shared by the backward matcher and the forward
// follower.
#pragma once

#include "line_format.hpp"

namespace diskfault {

// Monotonic stamps that fall by more than this from one line to the next (reading forward) mean
// the clock started again: a reboot lies between the two lines.
inline constexpr double kClockRestartSlack = 1.0;
// Lines stamped within this many seconds after a boot's start belong to its prelude.
inline constexpr double kBootPrelude = 5.0;

// One reboot often shows two signs: a journal separator right before "Linux version", or the
// clock restarting on the line before (or on) "Linux version". Two consecutive signs are the same
// reboot when, between them, there is no kernel line at all (the older sign is a separator or a
// boot rule), or no kernel line stamped past the prelude (the older sign is a clock restart).
// The backward matcher and the forward follower both apply this one rule to each pair.
enum class BootSign { kNone, kExplicit, kClockRestart };

// True when a line stamped `later` that follows (in file order) a line stamped `earlier` shows
// that the clock started again. A negative stamp means "no stamp" and never restarts anything.
inline bool clock_restarted(double earlier, double later) {
  return earlier >= 0 && later >= 0 && earlier > later + kClockRestartSlack;
}

// Finds the boot boundaries of a log read forward (the follower's direction), with the same
// signs and the same once-per-reboot guard as the matcher uses going backwards: a boot-rule line
// ("Linux version"), a journal "-- Boot --" separator, or a monotonic clock that started again.
// A test holds the two directions to the same count on multi-boot logs.
class ForwardBootTracker {
 public:
  ForwardBootTracker() = default;

  // Takes the next record in file order; `boot_rule` says the rules matched it with a kBoot
  // rule. Returns true when the record is the first sign of a new boot (the boot starts at this
  // line, or, for a separator, at the line after it).
  bool starts_boot(const Record& record, bool boot_rule);

 private:
  // Whether a sign met now is a new reboot rather than an echo of the last one.
  bool fresh() const;
  void mark(BootSign sign);

  double earlier_monotonic_ = -1;
  BootSign last_sign_ = BootSign::kNone;
  unsigned long long kernel_lines_since_ = 0;
  bool late_clock_since_ = false;
};

}  // namespace diskfault
