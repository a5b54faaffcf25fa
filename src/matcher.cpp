// The matcher coroutine: format -> rules for every line, boot boundaries from the clock and
// separators.
#include "matcher.hpp"

#include <array>
#include <bit>
#include <cstring>

#include "boot_boundary.hpp"

namespace diskfault {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// dmesg writes its stamp as "%5lu.%06lu": spaces, an integer part without leading zeros, a dot
// and six decimals. Two such stamps of one width compare as numbers when compared as bytes (a
// space sorts before every digit), so the fast lane orders lines without reading numbers.

// Eight bytes at `p` as a word whose lowest byte is the first.
[[gnu::always_inline]] inline std::uint64_t first_lowest(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
  return word;
}

// Such a word as a number that orders as its bytes do.
[[gnu::always_inline]] inline std::uint64_t byte_order(std::uint64_t first_lowest_word) {
  return __builtin_bswap64(first_lowest_word);
}

// Whether `tail` (first byte lowest) is the last eight bytes of a plain stamp: the units digit,
// the dot, six decimals.
[[gnu::always_inline]] inline bool plain_tail(std::uint64_t tail) {
  if (((tail >> 8) & 0xff) != '.') return false;
  const std::uint64_t digits = (tail & ~(0xffULL << 8)) | (std::uint64_t{'0'} << 8);
  // A byte below '0' borrows into its top bit, one above '9' carries into it.
  constexpr std::uint64_t kZeros = 0x3030303030303030, kPastNine = 0x4646464646464646;
  return (((digits - kZeros) | (digits + kPastNine)) & 0x8080808080808080) == 0;
}

[[gnu::always_inline]] inline bool plain_stamp(std::string_view s) {
  const std::size_t width = s.size();
  if (width < 8 || width > 24) return false;
  if (!plain_tail(first_lowest(s.data() + width - 8))) return false;
  // Before the units digit: spaces, then digits without a leading zero.
  const std::size_t units = width - 8;
  std::size_t i = 0;
  while (i < units && s[i] == ' ') ++i;
  if (i < units && s[i] == '0') return false;
  for (; i < units; ++i) {
    if (!is_digit(s[i])) return false;
  }
  return true;
}

// Whether a plain stamp lies past the boot prelude, read from its digits.
static_assert(kBootPrelude == 5.0, "plain_stamp_late() reads the prelude's end as 5.000000");
bool plain_stamp_late(std::string_view s) {
  const std::size_t dot = s.size() - 7;
  if (dot >= 2 && s[dot - 2] != ' ') return true;  // ten seconds or more
  const char units = s[dot - 1];
  return units > '5' || (units == '5' && s.substr(dot + 1) != "000000");
}

// Byte order of two plain stamps of one width (8 to 24 bytes): like memcmp() <= 0, in a few
// word loads rather than a library call per line.
bool stamp_not_after(const char* a, const char* b, std::size_t width) {
  auto word = [](const char* p) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    // As a big-endian number, a word orders as its bytes do.
    if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
    return w;
  };
  std::size_t i = 0;
  for (; i + 8 <= width; i += 8) {
    std::uint64_t x = word(a + i), y = word(b + i);
    if (x != y) return x < y;
  }
  if (i == width) return true;
  // The last 8 bytes overlap bytes already found equal, so only the tail decides.
  return word(a + width - 8) <= word(b + width - 8);
}

// The stamp of the line after the one the fast lane looks at: a plain stamp 8 to 24 bytes wide
// (the width is the lane's, passed in), with what the common case compares kept as words.
class LaneStamp {
 public:
  LaneStamp(const char* stamp, std::size_t width)
      : units_(width - 8), leading_mask_(units_ < 8 ? (std::uint64_t{1} << (8 * units_)) - 1 : 0) {
    move_to(stamp);
  }

  // If the `width` bytes at `s` are a plain stamp no later than this one, makes it the one to
  // compare with and returns true.
  [[gnu::always_inline]] bool step_back_to(const char* s, std::size_t width) {
    // Neighbouring lines mostly share the bytes before the units digit; where they do, the last
    // eight bytes decide both the shape and the order.
    if (units_ < 8 && (first_lowest(s) & leading_mask_) == leading_) {
      const std::uint64_t tail = first_lowest(s + units_);
      const std::uint64_t order = byte_order(tail);
      if (!plain_tail(tail) || order > tail_order_) return false;
      stamp_ = s;
      tail_order_ = order;
      return true;
    }
    if (!plain_stamp({s, width}) || !stamp_not_after(s, stamp_, width)) return false;
    move_to(s);
    return true;
  }

 private:
  void move_to(const char* s) {
    stamp_ = s;
    if (units_ < 8) leading_ = first_lowest(s) & leading_mask_;
    tail_order_ = byte_order(first_lowest(s + units_));
  }

  std::size_t units_;             // bytes before the units digit
  std::uint64_t leading_mask_;    // those bytes in a first-lowest word, when fewer than eight
  std::uint64_t leading_ = 0;     // this stamp's bytes under leading_mask_
  std::uint64_t tail_order_ = 0;  // this stamp's last eight bytes, in byte order
  const char* stamp_ = nullptr;
};

// The fast lane's test of one line, handed to the reader by value: its state then stays in
// registers through the reader's loop (a lambda that captured the caller's locals by reference
// stored and reloaded them at every line).
class QuietLine {
 public:
  QuietLine(std::string_view later_plain, const RuleSet& rules)
      : width_(later_plain.size()), stamp_(later_plain.data(), width_), rules_(&rules) {}

  // True if `line` has a plain stamp no later than the line after it and no kernel rule can
  // match its message. Always inlined: GCC does not otherwise compile a plain function into
  // the reader's AVX2 loop, and a call per line cost more than the AVX2 newline search saves.
  [[gnu::always_inline]] bool operator()(const Line& line) {
    const char* text = line.text.data();
    const std::size_t size = line.text.size();
    if (size <= width_ + 1 || text[0] != '[' || text[width_ + 1] != ']') return false;
    std::string_view message(text + width_ + 2, size - width_ - 2);
    if (!message.empty() && message.front() == ' ') message.remove_prefix(1);
    if (rules_->kernel_may_match(message)) return false;
    return stamp_.step_back_to(text + 1, width_);  // last: it moves on to this line's stamp
  }

 private:
  std::size_t width_;
  LaneStamp stamp_;
  const RuleSet* rules_;
};

// Hands the reader's next lines to the fast lane while each has a plain stamp no later than the
// line after it (`later_plain` for the first) and no kernel rule can match its message. A
// function of its own, not part of the coroutine: there its locals would live in the coroutine's
// frame, stored and reloaded at every line. Not inlined into it either: that made the full path
// of every syslog line slower (user time 85-93 to 97-105 ms on the 100 MiB syslog log, in four
// of five alternations).
[[gnu::noinline]] ReverseLineReader::Run pass_quiet_lines(ReverseLineReader& reader,
                                                          std::string_view later_plain,
                                                          const RuleSet& rules) {
  return reader.skip_while(QuietLine(later_plain, rules));
}

// The "[...]" field that starts a dmesg line, or "" when the line has none.
std::string_view dmesg_stamp_field(std::string_view line) {
  if (line.empty() || line.front() != '[') return {};
  std::size_t close = line.find(']');
  return close == std::string_view::npos ? std::string_view{} : line.substr(1, close - 1);
}

// The stamp of the nearest later line that has one. The fast lane keeps only its text; the
// number is read from that when the full path needs it.
class LaterStamp {
 public:
  void clear() {
    value_ = -1;
    pending_ = false;
    width_ = 0;
  }
  // A stamp read in full; `plain` is its text if it has dmesg's plain shape, else "".
  void set(double value, std::string_view plain) {
    value_ = value;
    pending_ = false;
    keep(plain);
  }
  // A plain stamp whose number is not read yet.
  void set_plain(std::string_view plain) {
    pending_ = true;
    keep(plain);
  }
  // Seconds, or negative when no later line has a stamp.
  double value() {
    if (pending_) {
      value_ = parse_seconds(plain());
      pending_ = false;
    }
    return value_;
  }
  // The plain text of the stamp, "" if it has none.
  std::string_view plain() const { return {text_.data(), width_}; }

 private:
  void keep(std::string_view plain) {
    width_ = plain.size();
    if (width_ != 0) std::memcpy(text_.data(), plain.data(), width_);  // "" may have no data
  }

  double value_ = -1;
  bool pending_ = false;
  std::array<char, 24> text_{};
  std::size_t width_ = 0;
};

}  // namespace

std::string kmsg_seconds(std::string_view usec) {
  std::string padded(usec.size() < 7 ? 7 - usec.size() : 0, '0');
  padded.append(usec);
  return padded.substr(0, padded.size() - 6) + "." + padded.substr(padded.size() - 6);
}

SendGenerator<Match, Want> match_lines(ReverseLineReader& reader, LogFormat format,
                                       const RuleSet& rules, MatchOptions options) {
  Want want = co_await SendGenerator<Match, Want>::first_request();

  // One reboot often shows twice: a journal separator right before "Linux version", or a
  // "Linux version" line and then, going backwards, the previous boot's large clock stamps.
  // These describe the lines passed since the last boundary yielded, to tell such echoes from a
  // real boundary.
  bool any_boundary = false;
  std::uint64_t kernel_lines_since = 0;  // kernel lines since the last boundary
  bool late_clock_since = false;         // one of them is stamped past the boot prelude
  bool content_since = false;            // any line at all: the file's start then ends a boot

  LaterStamp later;  // the stamp of the nearest later line that has one
  const bool fast_lane = options.fast_lane && format == LogFormat::kDmesg;
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

  for (;;) {
    if (fast_lane && !held && !later.plain().empty()) {
      // Most lines are noise stamped no later than the line that follows them: no rule can
      // match them and the clock does not restart there. A run of such lines changes only the
      // counters below, exactly as the full path would change them line by line, so the reader
      // hands them over in one call; only the run's newest and oldest lines are looked at again.
      const std::size_t width = later.plain().size();
      const ReverseLineReader::Run run = pass_quiet_lines(reader, later.plain(), rules);
      const std::uint64_t skipped = run.lines;
      if (skipped != 0) {
        // Going back, stamps only fall within the run: its newest line holds the largest.
        if (plain_stamp_late(run.newest.substr(1, width))) late_clock_since = true;
        later.set_plain(run.oldest.substr(1, width));
        boot_first_from_end = reader.line_count();  // the oldest line passed
        if (plain_stamp_late(run.oldest.substr(1, width))) {
          boot_first_line.clear();
        } else {
          boot_first_line.assign(run.oldest);
        }
        content_since = true;
        kernel_lines_since += skipped;
      }
    }
    auto line = reader.next();
    if (!line) break;

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
      later.clear();
      continue;
    }

    if (record.monotonic >= 0) {
      const double later_monotonic = later.value();
      if (later_monotonic >= 0 && record.monotonic > later_monotonic + kClockRestartSlack &&
          (!any_boundary || late_clock_since) && want.wants(EventType::kBoot)) {
        // The clock started again: the later boot began at the line kept below.
        make_boundary(nullptr, boot_first_from_end, boot_first_line);
        want = co_yield boundary;
      }
      std::string_view field = fast_lane ? dmesg_stamp_field(line->text) : std::string_view{};
      later.set(record.monotonic, plain_stamp(field) ? field : std::string_view{});
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
