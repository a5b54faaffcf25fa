// The matcher: a coroutine that walks a log backwards and yields the lines its driver asks for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "coroutine.hpp"
#include "line_format.hpp"
#include "reverse_line_reader.hpp"
#include "rules.hpp"

namespace diskfault {

// What the driver wants next: the event types to yield (a bit per EventType). Lines whose event
// is not wanted are skipped without a pause.
struct Want {
  std::uint32_t events = 0;
  static constexpr std::uint32_t bit(EventType type) { return 1u << static_cast<unsigned>(type); }
  static constexpr Want all() { return Want{(1u << kEventTypeCount) - 1}; }
  bool wants(EventType type) const { return (events & bit(type)) != 0; }
};

// One line the matcher found. Every view points into the matcher's buffers and is valid only
// until the next send() to the matcher: copy what you keep.
struct Match {
  EventType type = EventType::kFact;
  // The rule that matched, or nullptr for a boot boundary found without one (a journal
  // "-- Boot --" separator, or a monotonic clock that started again).
  const Rule* rule = nullptr;
  Captures captures;           // a kmsg record's DEVICE=+scsi:H:C:T:L fills in a missing hctl
  std::uint64_t from_end = 0;  // the line's position counted from the end (1 = last line)
  std::string_view time;       // the line's timestamp as the log states it, or ""
  // The whole line. For a boot boundary: what names the boot, its journal "-- Boot <id> --"
  // separator if it has one, else its first line ("" when the log starts inside the boot).
  std::string_view text;
  // How many log lines the match stands for: 1 from the matcher; more where the follower let
  // repeats of an error go and counts them on the oldest one it keeps.
  std::uint64_t lines = 1;
};

// Walks `reader` backwards, strips each line as `format` and runs `rules` over it, yielding every
// line whose event the last Want asked for, newest first; a boot boundary is yielded as a kBoot
// match once the scan passes the first line of a boot. The first send() starts the walk; the
// coroutine ends after the first line of the file. `reader` and `rules` are taken by reference
// and must outlive the coroutine: the caller reads the reader's line count afterwards, and the
// rules are compiled once and shared by every source. On a reader that reads in place the rules
// must outlive the reader too: a second thread the reader joins when destroyed uses them.
struct MatchOptions {
  // On a dmesg or syslog log, turn a line away from its stamp and first bytes alone when it can
  // neither match a rule nor restart the clock (most of a log), and on a syslog log a line of
  // another program from its tag and message when none of that program's rules can match it;
  // off, every line takes the full path. Both ways yield the same matches: tests and the fuzzer
  // hold the one to the other. On a dmesg log the reader reads in place
  // (ReverseLineReader::mapped(): a log in the page cache) of at least `second_core_min` bytes,
  // the lane's test of the older part also runs on a second thread.
  bool fast_lane = true;
  // 8 MiB is where reading in place began before small logs were mapped too, kept without a new
  // measurement: on small logs the thread costs more than it saves (BENCHMARKS.md). Tests and the
  // fuzzer set 0, to split the small logs they read.
  std::size_t second_core_min = std::size_t{8} << 20;
};
SendGenerator<Match, Want> match_lines(ReverseLineReader& reader, LogFormat format,
                                       const RuleSet& rules, MatchOptions options = {});

// A kmsg record's stamp (microseconds since boot, as the record writes it) as seconds with six
// decimals ("1234.567890"), the form the other formats use.
std::string kmsg_seconds(std::string_view usec);

}  // namespace diskfault
