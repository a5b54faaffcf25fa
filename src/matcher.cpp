// The matcher coroutine: format -> rules for every line, boot boundaries from the clock and separators.
#include "matcher.hpp"

#include <cstdio>

#include "boot_boundary.hpp"

namespace diskfault {

std::string kmsg_seconds(std::string_view usec) {
  std::string padded(usec.size() < 7 ? 7 - usec.size() : 0, '0');
  padded.append(usec);
  return padded.substr(0, padded.size() - 6) + "." + padded.substr(padded.size() - 6);
}

SendGenerator<Match, Want> match_lines(ReverseLineReader& reader, LogFormat format,
                                       const RuleSet& rules) {
  Want want = co_await SendGenerator<Match, Want>::first_request();

  // Boot tracking, in the backward direction: `later_*` describe the line met just before (the
  // next line in the file).
  double later_monotonic = -1;
  std::string boot_first_line;  // text of the earliest prelude line seen since the boundary
  std::uint64_t boot_first_from_end = 0;
  // Set right after a boundary is yielded, while the scan is still in that boot's prelude, so
  // that the same reboot seen twice (a separator and "Linux version", or a clock restart) counts
  // once.
  bool boundary_guard = false;
  std::string kmsg_device;  // DEVICE=+scsi:... of the record whose continuation lines we passed
  std::string time_text;    // kmsg stamps converted to seconds

  // Whether lines of the log lie between the scan and the last boundary yielded: the start of
  // the file then ends one more (the oldest) boot.
  bool content_since_boundary = false;

  Match boundary;
  boundary.type = EventType::kBoot;

  while (auto line = reader.next()) {
    Record record = parse_line(format, line->text);

    if (record.kind == RecordKind::kContinuation) {
      if (record.message.starts_with("DEVICE=+scsi:")) {
        kmsg_device.assign(record.message.substr(13));
      }
      continue;
    }
    if (record.kind == RecordKind::kMeta) continue;
    std::string device = std::move(kmsg_device);
    kmsg_device.clear();

    if (record.kind == RecordKind::kBootSeparator) {
      // "-- Boot <id> --": the boot starts on the line after it, which the scan has passed.
      if (!boundary_guard && want.wants(EventType::kBoot)) {
        boundary.rule = nullptr;
        boundary.from_end = line->from_end > 1 ? line->from_end - 1 : line->from_end;
        boundary.text = line->text;
        boundary.time = {};
        boundary.captures = {};
        content_since_boundary = false;
        want = co_yield boundary;
      }
      boundary_guard = true;
      later_monotonic = -1;
      continue;
    }

    if (record.monotonic >= 0) {
      if (clock_restarted(record.monotonic, later_monotonic)) {
        // The clock started again: the boot began at the prelude line kept below.
        if (!boundary_guard && want.wants(EventType::kBoot)) {
          boundary.rule = nullptr;
          boundary.from_end = boot_first_from_end;
          boundary.text = boot_first_line;
          boundary.time = {};
          boundary.captures = {};
          content_since_boundary = false;
          want = co_yield boundary;
        }
        boundary_guard = false;
      } else if (boundary_guard && record.monotonic > kBootPrelude) {
        boundary_guard = false;
      }
      later_monotonic = record.monotonic;
      boot_first_from_end = line->from_end;
      if (record.monotonic <= kBootPrelude) {
        // A prelude line's text is kept so the boot can be named by its first line.
        boot_first_line.assign(line->text);
      } else {
        boot_first_line.clear();  // the boot's head is not in the log; it has no first line
      }
    } else if (boundary_guard && record.kernel && !record.message.empty() &&
               format != LogFormat::kKmsg) {
      // A format without a monotonic stamp: the first ordinary kernel line of the older boot.
      boundary_guard = false;
    }

    content_since_boundary = true;
    auto hit = rules.match(record);
    if (!hit) continue;
    const Rule& rule = rules.rules()[hit->rule];
    if (rule.yields == EventType::kBoot) {
      if (!boundary_guard && want.wants(EventType::kBoot)) {
        boundary.rule = &rule;
        boundary.from_end = line->from_end;
        boundary.text = line->text;
        boundary.time = record.time;
        boundary.captures = hit->captures;
        content_since_boundary = false;
        want = co_yield boundary;
      }
      boundary_guard = true;
      continue;
    }
    if (!want.wants(rule.yields)) continue;

    Match match;
    match.type = rule.yields;
    match.rule = &rule;
    match.captures = hit->captures;
    auto& hctl = match.captures[static_cast<std::size_t>(Field::kHctl)];
    if (hctl.empty() && !device.empty()) hctl = device;
    match.from_end = line->from_end;
    match.text = line->text;
    if (format == LogFormat::kKmsg && !record.time.empty()) {
      time_text = kmsg_seconds(record.time);
      match.time = time_text;
    } else {
      match.time = record.time;
    }
    want = co_yield match;
  }
  if (content_since_boundary && want.wants(EventType::kBoot)) {
    // The start of the file ends the oldest boot; that boot's first line is not in the log.
    boundary.rule = nullptr;
    boundary.from_end = reader.line_count();
    boundary.text = {};
    boundary.time = {};
    boundary.captures = {};
    co_yield boundary;
  }
}

}  // namespace diskfault
