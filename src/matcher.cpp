// The matcher coroutine: format -> rules for every line, boot boundaries from the clock and
// separators.
#include "matcher.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <optional>

#include "boot_boundary.hpp"
#include "quiet_messages.hpp"

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

  // Makes the stamp at `s` (a plain stamp of this one's width) the one to compare with.
  void jump_to(const char* s) { move_to(s); }

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
  QuietLine(std::string_view later_plain, const RuleSet& rules, QuietMessages& known)
      : width_(later_plain.size()),
        stamp_(later_plain.data(), width_),
        rules_(&rules),
        known_(&known) {}

  // True if `line` has a plain stamp no later than the line after it and no kernel rule can
  // match its message. Always inlined: GCC does not otherwise compile a plain function into
  // the reader's AVX2 loop, and a call per line cost more than the AVX2 newline search saves.
  [[gnu::always_inline]] bool operator()(const Line& line) {
    const char* text = line.text.data();
    const std::size_t size = line.text.size();
    if (size <= width_ + 1 || text[0] != '[' || text[width_ + 1] != ']') return false;
    std::string_view message(text + width_ + 2, size - width_ - 2);
    if (!message.empty() && message.front() == ' ') message.remove_prefix(1);
    if (rules_->kernel_may_start(message) && known_->kernel_may_match_started(*rules_, message))
      return false;
    return stamp_.step_back_to(text + 1, width_);  // last: it moves on to this line's stamp
  }
  // Moves on to `line`, a line this test took in an earlier scan when offered after the line
  // that follows it (ReverseLineReader::skip_while() in an indexed part).
  void pass(const Line& line) { stamp_.jump_to(line.text.data() + 1); }

 private:
  std::size_t width_;
  LaneStamp stamp_;
  const RuleSet* rules_;
  QuietMessages* known_;
};

// Hands the reader's next lines to the fast lane while each has a plain stamp no later than the
// line after it (`later_plain` for the first) and no kernel rule can match its message. A
// function of its own, not part of the coroutine: there its locals would live in the coroutine's
// frame, stored and reloaded at every line. Not inlined into it either: that made the full path
// of every syslog line slower (user time 85-93 to 97-105 ms on the 100 MiB syslog log, in four
// of five alternations).
[[gnu::noinline]] ReverseLineReader::Run pass_quiet_lines(ReverseLineReader& reader,
                                                          std::string_view later_plain,
                                                          const RuleSet& rules,
                                                          QuietMessages& known) {
  return reader.skip_while(QuietLine(later_plain, rules, known));
}

// Whether any of the `n` bytes at `p` (at least eight) is a space.
bool has_space(const char* p, std::size_t n) {
  auto spaced = [](std::uint64_t word) {
    word ^= 0x2020202020202020;  // a space becomes a zero byte
    return ((word - 0x0101010101010101) & ~word & 0x8080808080808080) != 0;
  };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (spaced(first_lowest(p + i))) return true;
  }
  return i != n && spaced(first_lowest(p + n - 8));
}

// The time a syslog line starts with, "Nov 22 02:43:01" or ISO 8601, as parse_line() reads it:
// its shape, and where the host after it starts. A line whose time fits this one's is split by
// the parser at the same place.
class SyslogTime {
 public:
  // An ISO time longer than this ("2026-11-22T02:43:01.123456+00:00" is 32) is read in full.
  static constexpr std::size_t kMaxIso = 40;

  // The time of `line`, or nullopt where the line's start is not a time the lane can check.
  static std::optional<SyslogTime> of(std::string_view line) {
    if (line.size() < 16) return std::nullopt;
    SyslogTime time;
    if (syslog_classic_time(line.data())) {
      time.host_ = 16;
    } else {
      // Past the 'T' at [10]; a shorter token (a space inside the date) is read in full.
      const std::size_t space = line.find(' ');
      if (space == std::string_view::npos || space <= 10 || space > kMaxIso) return std::nullopt;
      time.iso_ = true;
      time.host_ = space + 1;
    }
    if (!time.fits(line.data())) return std::nullopt;
    return time;
  }

  // Where the host starts.
  std::size_t host() const { return host_; }

  // Whether `text`, a line longer than host(), starts with a time that parse_line() reads as it
  // read this one, ending where this one does.
  [[gnu::always_inline]] bool fits(const char* text) const {
    // parse_line() tries an ISO time only where the classic shape fails; an ISO time without a
    // space before its end has no space at [3], where the classic shape needs one. A priority
    // or a journal marker would be stripped or read before the time.
    if (iso_) {
      return syslog_iso_time_start(text) && text[host_ - 1] == ' ' && !has_space(text, host_ - 1);
    }
    return text[0] != '-' && text[0] != '<' && syslog_classic_time(text);
  }

 private:
  bool iso_ = false;
  std::size_t host_ = 16;
};

// What a syslog kernel line holds before its stamp: a time, then "host kernel: [". The fast lane
// takes a stamped kernel line only if its time fits the later stamped line's and its bytes from
// the host to the '[' are that line's very bytes: parse_line() then splits it just as it split
// that line, and the stamp and the message sit at the same places.
class SyslogLead {
 public:
  // Host to '[' in a line the lane can take; a longer lead (a long host name) is read in full.
  static constexpr std::size_t kMaxBytes = 64;

  // The lead of a kernel line that parse_line(kSyslog) split at "kernel: ", whose time is
  // `time` (SyslogTime::of(line)), or nullopt where the line does not have a shape the lane can
  // check.
  static std::optional<SyslogLead> of(std::string_view line, const SyslogTime& time) {
    SyslogLead lead;
    lead.time_ = time;
    const std::size_t host_end = line.find(' ', time.host());
    if (host_end == std::string_view::npos || line.substr(host_end + 1, 9) != "kernel: [") {
      return std::nullopt;
    }
    lead.bracket_ = host_end + 9;
    const std::size_t bytes = lead.bracket_ - time.host() + 1;
    if (bytes > kMaxBytes) return std::nullopt;
    // Eight bytes at a time, the last eight overlapping the one before where `bytes` is not a
    // multiple of eight (it is at least ten: "kernel: [" and the space before it).
    lead.words_ = (bytes + 7) / 8;
    for (std::size_t i = 0; i < lead.words_; ++i) {
      lead.at_[i] = time.host() + std::min(8 * i, bytes - 8);
      lead.word_[i] = first_lowest(line.data() + lead.at_[i]);
    }
    return lead;
  }

  // Where the stamp starts: just past the '['.
  std::size_t stamp_at() const { return bracket_ + 1; }

  // Whether `text`, a line longer than stamp_at(), has this lead.
  [[gnu::always_inline]] bool fits(const char* text) const {
    if (!time_.fits(text)) return false;
    for (std::size_t i = 0; i < words_; ++i) {
      if (first_lowest(text + at_[i]) != word_[i]) return false;
    }
    return true;
  }

 private:
  SyslogTime time_;
  std::size_t bracket_ = 0;
  std::size_t words_ = 0;
  std::array<std::uint64_t, kMaxBytes / 8> word_{};  // the lead's bytes, eight at a time
  std::array<std::size_t, kMaxBytes / 8> at_{};      // where each word starts in the line
};

// What a run of quiet lines changes, seen from its kernel lines: on a syslog log other programs'
// lines come between them, and change only content_since, and a kernel line without a stamp
// changes only the count of kernel lines.
struct QuietRun {
  std::uint64_t lines = 0;          // every line of the run
  std::uint64_t stamped = 0;        // its kernel lines with a (plain) stamp
  std::uint64_t unstamped = 0;      // its kernel lines without a stamp
  std::string_view newest_stamped;  // the newest of those, whole (its stamp is the latest)
  std::string_view oldest_stamped;  // the oldest
  std::uint64_t oldest_stamped_from_end = 0;  // that line's number from the end
};

// A stamped syslog kernel line the lane can take: it has the later stamped line's lead, and a
// stamp of the same width no later than that line's.
class SyslogStamps {
 public:
  SyslogStamps(std::string_view later_plain, const SyslogLead& lead)
      : width_(later_plain.size()),
        close_(lead.stamp_at() + width_),
        stamp_(later_plain.data(), width_),
        lead_(lead) {}

  // The message of `text` if it has the lead and a plain stamp's width, else nullopt.
  [[gnu::always_inline]] std::optional<std::string_view> message(const char* text,
                                                                 std::size_t size) const {
    if (size <= close_ || text[close_] != ']' || !lead_.fits(text)) return std::nullopt;
    std::string_view message(text + close_ + 1, size - close_ - 1);
    if (!message.empty() && message.front() == ' ') message.remove_prefix(1);
    return message;
  }
  // If the stamp of `text` (a line message() accepted) is plain and no later than the one
  // before, moves on to it and returns true.
  [[gnu::always_inline]] bool step_back(const char* text) {
    return stamp_.step_back_to(text + lead_.stamp_at(), width_);
  }

 private:
  std::size_t width_;
  std::size_t close_;  // where the stamp's ']' is
  LaneStamp stamp_;
  SyslogLead lead_;
};

// QuietLine for syslog lines: a kernel line no kernel rule can match, either stamped (when the
// lane knows the later stamp: `stamps`) with the later stamped line's lead, or without a stamp;
// or a line of another program none of whose rules can match it.
class QuietSyslogLine {
 public:
  QuietSyslogLine(const SyslogTime& time, const std::optional<SyslogStamps>& stamps,
                  const RuleSet& rules, QuietMessages& known, QuietRun* run)
      : time_(time), stamps_(stamps), rules_(&rules), known_(&known), run_(run) {}

  [[gnu::always_inline]] bool operator()(const Line& line) {
    const char* text = line.text.data();
    const std::size_t size = line.text.size();
    if (stamps_) {
      if (const auto message = stamps_->message(text, size)) {
        if ((rules_->kernel_may_start(*message) &&
             known_->kernel_may_match_started(*rules_, *message)) ||
            !stamps_->step_back(text))
          return false;
        if (run_->stamped++ == 0) run_->newest_stamped = line.text;
        run_->oldest_stamped = line.text;
        run_->oldest_stamped_from_end = line.from_end;
        return true;
      }
    }
    return quiet_tagged_line(text, size);
  }

 private:
  // Whether parse_line() reads `text` as "time host tag: message" with no stamp to read, and no
  // rule for the tag's program can match the message. The time and the tag are held to the
  // parser's reading; the host may be any.
  [[gnu::always_inline]] bool quiet_tagged_line(const char* text, std::size_t size) const {
    const std::size_t host = time_.host();
    if (size <= host || !time_.fits(text)) return false;
    const char* end = text + size;
    const auto* host_end = static_cast<const char*>(std::memchr(text + host, ' ', size - host));
    if (host_end == nullptr) return false;
    const char* tag = host_end + 1;
    // The tag ends at the first ": ", which must hold the first space after the host.
    const auto* space = static_cast<const char*>(std::memchr(tag, ' ', end - tag));
    if (space == nullptr || space - tag < 2 || space[-1] != ':') return false;
    const char* program_end = tag;  // the tag is "prog" or "prog[pid]"
    while (program_end != space - 1 && *program_end != '[') ++program_end;
    const std::string_view program(tag, static_cast<std::size_t>(program_end - tag));
    const std::string_view message(space + 1, static_cast<std::size_t>(end - space - 1));
    // (Compared by hand: string_view's operator== stayed a call in the reader's loop.)
    if (program.size() != 6 || std::memcmp(program.data(), "kernel", 6) != 0) {
      // A program named "" is asked of the kernel's rules, by program_may_match() as by match().
      return !rules_->program_may_match(program, message);
    }
    // The parser reads a kernel message's leading "[...]" as its stamp if it holds a number,
    // which starts with a digit after any spaces ("[UFW BLOCK] ..." holds none).
    if (message.size() > 1 && message[0] == '[' && (message[1] == ' ' || is_digit(message[1]))) {
      return false;
    }
    if (rules_->kernel_may_start(message) && known_->kernel_may_match_started(*rules_, message))
      return false;
    ++run_->unstamped;
    return true;
  }

  SyslogTime time_;
  std::optional<SyslogStamps> stamps_;
  const RuleSet* rules_;
  QuietMessages* known_;
  QuietRun* run_;
};

// The dmesg lane's run, told as a QuietRun: every line of it is a stamped kernel line.
QuietRun quiet_dmesg_run(ReverseLineReader& reader, std::string_view later_plain,
                         const RuleSet& rules, QuietMessages& known) {
  const ReverseLineReader::Run run = pass_quiet_lines(reader, later_plain, rules, known);
  return QuietRun{run.lines, run.lines, 0, run.newest, run.oldest, reader.line_count()};
}

// pass_quiet_lines() for syslog lines; `stamps` when the lane knows the later stamp.
[[gnu::noinline]] QuietRun pass_quiet_syslog_lines(ReverseLineReader& reader,
                                                   const SyslogTime& time,
                                                   std::optional<SyslogStamps> stamps,
                                                   const RuleSet& rules, QuietMessages& known) {
  QuietRun quiet;
  quiet.lines = reader.skip_while(QuietSyslogLine(time, stamps, rules, known, &quiet)).lines;
  return quiet;
}

// What lies between line[from] and the first ']' after it, or "" when no ']' follows.
std::string_view bracket_field(std::string_view line, std::size_t from) {
  const std::size_t close = line.find(']', from);
  return close == std::string_view::npos ? std::string_view{} : line.substr(from, close - from);
}

// The "[...]" field that starts a dmesg line, or "" when the line has none.
std::string_view dmesg_stamp_field(std::string_view line) {
  if (line.empty() || line.front() != '[') return {};
  return bracket_field(line, 1);
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

// The share of a large dmesg log whose lines the second core offers to the fast lane: the first
// core also takes every line the lane refuses down the full path, the part's lines too, as the
// scan marks them. With the first core's own part copied rather than mapped (BENCHMARKS.md, item
// 43), 0.5, 0.55 and 0.6 took 139.6, 128.5 and 132.4 ms on the 1 GiB generated log
// (`benchmarks/alternate 21`), and 198.9, 195.9 and 196.6 with a third of its 2 MiB units in
// small pages (15 runs). Items 40 and 41 have the earlier figures.
constexpr double kSecondCoreShare = 0.55;

// The dmesg lane over the older part of a log, on the second core: marks each line it does not
// take, for the first core's lane to skip between (ReverseLineReader::scan_older_part()). A line
// whose stamp the lane cannot compare with is marked too, and so is the line before it: the
// first core decides those itself, from its own reading of the full path.
void mark_lines_not_quiet(ReverseLineReader& part, std::string_view after, const RuleSet& rules) {
  QuietMessages known;
  LaterStamp later;  // only its text: the scan never reads a stamp's number
  auto keep_stamp = [&later](std::string_view line) {
    const std::string_view field = dmesg_stamp_field(line);
    later.set_plain(plain_stamp(field) ? field : std::string_view{});
  };
  keep_stamp(after);
  for (;;) {
    if (!later.plain().empty()) part.skip_while(QuietLine(later.plain(), rules, known));
    const std::optional<Line> line = part.next();
    if (!line || !part.mark(*line)) return;
    keep_stamp(line->text);
  }
}

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
  // The fast lane reads dmesg lines, and syslog lines whose time fits the last one read in full.
  const bool dmesg_lane = options.fast_lane && format == LogFormat::kDmesg;
  const bool syslog_lane = options.fast_lane && format == LogFormat::kSyslog;
  std::optional<SyslogTime> syslog_time;  // the time of the last syslog line read in full
  SyslogLead lead;  // the later line's, while `later` holds a plain stamp on the syslog lane
  std::string boot_first_line;  // the text of that line, while it lies in a boot's prelude
  std::uint64_t boot_first_from_end = 0;
  std::string kmsg_device;    // DEVICE=+scsi:... of the record whose continuation lines we passed
  std::string time_text;      // kmsg stamps converted to seconds
  QuietMessages known_quiet;  // for the fast lane
  if (dmesg_lane && reader.mapped() && reader.mapped_size() >= options.second_core_min) {
    // The thread reads `rules` until the reader joins it, when the reader is destroyed: the
    // caller's rules outlive its reader, as they outlive this generator.
    reader.scan_older_part(kSecondCoreShare,
                           [&rules](ReverseLineReader& part, std::string_view after) {
                             mark_lines_not_quiet(part, after, rules);
                           });
  }

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
    if (!held && (dmesg_lane ? !later.plain().empty() : syslog_lane && syslog_time)) {
      // Most lines are noise stamped no later than the line that follows them, or not stamped
      // at all: no rule can match them and the clock does not restart there. A run of such lines
      // changes only the counters below, exactly as the full path would change them line by
      // line, so the reader hands them over in one call; only the run's newest and oldest
      // stamped lines are looked at again.
      const std::size_t width = later.plain().size();
      std::size_t at = 1;  // where a stamped line's stamp starts
      QuietRun run;
      if (dmesg_lane) {
        run = quiet_dmesg_run(reader, later.plain(), rules, known_quiet);
      } else {
        std::optional<SyslogStamps> stamps;
        if (width != 0) {
          stamps.emplace(later.plain(), lead);
          at = lead.stamp_at();
        }
        run = pass_quiet_syslog_lines(reader, *syslog_time, stamps, rules, known_quiet);
      }
      if (run.stamped != 0) {
        // Going back, stamps only fall within the run: its newest line holds the largest.
        if (plain_stamp_late(run.newest_stamped.substr(at, width))) late_clock_since = true;
        later.set_plain(run.oldest_stamped.substr(at, width));
        boot_first_from_end = run.oldest_stamped_from_end;
        if (plain_stamp_late(run.oldest_stamped.substr(at, width))) {
          boot_first_line.clear();
        } else {
          boot_first_line.assign(run.oldest_stamped);
        }
      }
      kernel_lines_since += run.stamped + run.unstamped;
      if (run.lines != 0) content_since = true;
    }
    auto line = reader.next();
    if (!line) break;

    Record record = parse_line(format, line->text);
    // The line's time, read once: the lane's shape for what follows, and a stamped kernel
    // line's lead below.
    const std::optional<SyslogTime> time =
        syslog_lane ? SyslogTime::of(line->text) : std::optional<SyslogTime>{};
    if (time) syslog_time = time;
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
      std::string_view field;
      if (dmesg_lane) {
        field = dmesg_stamp_field(line->text);
      } else if (time && record.kernel) {
        if (auto found = SyslogLead::of(line->text, *time)) {
          lead = *found;
          field = bracket_field(line->text, lead.stamp_at());
        }
      }
      later.set(record.monotonic, plain_stamp(field) ? field : std::string_view{});
      boot_first_from_end = line->from_end;
      if (record.monotonic <= kBootPrelude) {
        boot_first_line.assign(line->text);
      } else {
        boot_first_line.clear();  // the boot's head is not in the log; it has no first line
      }
    }

    auto hit = rules.match(record);
    // RE2's answer too: a notice the prefilter lets through ("nvme nvme0: Shutdown timeout set to
    // 8 seconds", a candidate of an nvme rule) then stays in the lane when it comes again. Only
    // messages past the prefilter's first look: the lane looks no others up, and they would push
    // out ones it does.
    if (!hit && record.kernel && (dmesg_lane || syslog_lane) &&
        rules.kernel_may_start(record.message)) {
      known_quiet.add(record.message);
    }
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
