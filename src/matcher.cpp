// The matcher coroutine: format -> rules for every line, boot boundaries from the clock and
// separators.
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

  // One reboot often shows twice: a journal separator right before "Linux version", or a
  // "Linux version" line and then, going backwards, the previous boot's large clock stamps.
  // These describe the lines passed since the last boundary yielded, to tell such echoes from a
  // real boundary.
  bool any_boundary = false;
  std::uint64_t kernel_lines_since = 0;  // kernel lines since the last boundary
  bool late_clock_since = false;         // one of them is stamped past the boot prelude
  bool content_since = false;            // any line at all: the file's start then ends a boot

  double later_monotonic = -1;  // the stamp of the nearest later line that has one
  std::string boot_first_line;  // the text of that line, while it lies in a boot's prelude
  std::uint64_t boot_first_from_end = 0;
  std::string kmsg_device;  // DEVICE=+scsi:... of the record whose continuation lines we passed
  std::string time_text;    // kmsg stamps converted to seconds

  Match boundary;
  boundary.type = EventType::kBoot;
  std::string boundary_text;  // owned: a held boundary outlives the reader's buffer
  // A "Linux version" boundary is held until the next older line is read: when that line is the
  // journal's "-- Boot <id> --" separator, the boot is named by it (the id is what tells one
  // boot of a kernel from the next), not by the version line every such boot shares.
  bool held = false;
  // Fills `boundary` for a boot that starts at `from_end`; the caller yields it.
  auto make_boundary = [&](const Rule* rule, std::uint64_t from_end, std::string_view text) {
    boundary.rule = rule;
    boundary.from_end = from_end;
    boundary_text.assign(text);
    boundary.text = boundary_text;

    any_boundary = true;
    kernel_lines_since = 0;
    late_clock_since = false;
    content_since = false;
  };

  while (auto line = reader.next()) {
    Record record = parse_line(format, line->text);
    if (held) {
      held = false;
      if (record.kind == RecordKind::kBootSeparator) {
        boundary_text.assign(line->text);
        boundary.text = boundary_text;
      }
      want = co_yield boundary;
    }

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
      if ((!any_boundary || kernel_lines_since > 0) && want.wants(EventType::kBoot)) {
        make_boundary(nullptr, line->from_end > 1 ? line->from_end - 1 : 1, line->text);
        want = co_yield boundary;
      }
      later_monotonic = -1;
      continue;
    }

    if (record.monotonic >= 0) {
      if (later_monotonic >= 0 && record.monotonic > later_monotonic + kClockRestartSlack &&
          (!any_boundary || late_clock_since) && want.wants(EventType::kBoot)) {
        // The clock started again: the later boot began at the line kept below.
        make_boundary(nullptr, boot_first_from_end, boot_first_line);
        want = co_yield boundary;
      }
      later_monotonic = record.monotonic;
      boot_first_from_end = line->from_end;
      if (record.monotonic <= kBootPrelude) {
        boot_first_line.assign(line->text);
      } else {
        boot_first_line.clear();  // the boot's head is not in the log; it has no first line
      }
    }

    auto hit = rules.match(record);
    const Rule* rule = hit ? &rules.rules()[hit->rule] : nullptr;
    if (rule && rule->yields == EventType::kBoot) {
      if ((!any_boundary || kernel_lines_since > 0) && want.wants(EventType::kBoot)) {
        make_boundary(rule, line->from_end, line->text);
        held = true;
      }
      continue;
    }
    content_since = true;
    if (record.kernel) ++kernel_lines_since;
    if (record.monotonic > kBootPrelude) late_clock_since = true;
    if (!rule || !want.wants(rule->yields)) continue;

    Match match;
    match.type = rule->yields;
    match.rule = rule;
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
  if (held) want = co_yield boundary;
  if (content_since && want.wants(EventType::kBoot)) {
    // The start of the file ends the oldest boot; that boot's first line is not in the log.
    make_boundary(nullptr, reader.line_count(), {});
    co_yield boundary;
  }
}

}  // namespace diskfault
