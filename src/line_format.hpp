// Log line formats: recognise a file's format and strip each line down to the kernel message.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace diskfault {

enum class LogFormat {
  kDmesg,             // "[ 1234.567890] msg", "<3>[ 1234.567890] msg" (dmesg -r), or bare "msg"
  kDmesgCtime,        // "[Sun Nov 22 02:43:01 2026] msg" (dmesg -T)
  kSyslog,            // "Nov 22 02:43:01 host kernel: msg", ISO time, journalctl -k / -o short-iso
  kJournalMonotonic,  // "[ 1234.567890] host kernel: msg" (journalctl -o short-monotonic)
  kRfc5424,           // "<6>1 2026-11-22T02:43:01.1+00:00 host kernel - - - msg"
  kKmsg,              // "6,1234,5678901,-;msg" with " KEY=value" continuation lines (/dev/kmsg)
};

// The name used by --input-format and in the report ("dmesg", "dmesg-T", "syslog",
// "journal-monotonic", "rfc5424", "kmsg").
std::string_view format_name(LogFormat format);
// The format called `name`, or nullopt for an unknown name.
std::optional<LogFormat> parse_format_name(std::string_view name);

enum class RecordKind {
  kMessage,        // an ordinary line
  kBootSeparator,  // journalctl's "-- Boot 4f2c... --" or "-- Reboot --": a new boot starts after
                   // it
  kMeta,           // other journalctl "-- ... --" lines
  kContinuation,   // a kmsg dictionary line (" SUBSYSTEM=scsi", " DEVICE=+scsi:2:0:0:0")
};

// One line, taken apart. All views point into the line given to parse_line().
struct Record {
  RecordKind kind = RecordKind::kMessage;
  std::string_view message;  // the log message with every prefix removed
  std::string_view time;     // the timestamp as written ("1234.567890", "Nov 22 02:43:01"), or ""
  std::string_view program;  // "kernel", "smartd", ... where the format names one, else ""
  bool kernel = true;        // the line comes from the kernel
  double monotonic = -1;     // seconds since boot where the line states them, else negative
};

// "  1234.567890" -> 1234.56789 (spaces around it allowed), or negative if `s` is not a
// number of seconds.
double parse_seconds(std::string_view s);

// The two shapes parse_line(kSyslog) tells a line's time by, tried in this order: the classic
// "Nov 22 02:43:01 " (16 bytes at `t`, the space after it included), then the start of an ISO
// 8601 time, "2026-11-22T" (11 bytes at `t`). The matcher's fast lane asks the same questions,
// so that a line it takes is one the parser splits as it split its neighbour.
[[gnu::always_inline]] inline bool syslog_classic_time(const char* t) {
  return t[3] == ' ' && t[6] == ' ' && t[9] == ':' && t[12] == ':' && t[15] == ' ';
}
[[gnu::always_inline]] inline bool syslog_iso_time_start(const char* t) {
  return t[0] >= '0' && t[0] <= '9' && t[4] == '-' && t[10] == 'T';
}

// Splits `line` as a line of `format`. Never fails: a line that does not have the format's
// shape is kept whole as its message (kmsg and syslog mark it as not from the kernel).
Record parse_line(LogFormat format, std::string_view line);

// Which formats' prefix shapes a line has. Each shape is strict enough that a line of another
// format does not fit it by accident; the comment on each shape's code gives it as a regular
// expression, and the tests hold the code to that expression.
struct FormatShapes {
  bool kmsg = false;
  bool rfc5424 = false;
  bool syslog = false;
  bool journal_monotonic = false;
  bool dmesg_ctime = false;
  bool dmesg = false;
};
FormatShapes format_shapes(std::string_view line);

// The shapes of a sample's lines counted one line at a time, so that a sample need not be kept:
// recognise_format() below, for lines as they are read.
class FormatVote {
 public:
  void add(std::string_view line);
  // The format whose prefix most lines have, or nullopt when no line has a known prefix.
  std::optional<LogFormat> winner() const;

 private:
  int kmsg_ = 0, rfc5424_ = 0, syslog_ = 0, journal_ = 0, ctime_ = 0, dmesg_ = 0;
};

// The format that fits most of `sample` (lines from one file), kDmesg when none fits.
LogFormat detect_format(std::span<const std::string> sample);
// The format whose prefix most of `sample`'s lines have, or nullopt when no line has a known
// prefix (bare messages).
std::optional<LogFormat> recognise_format(std::span<const std::string> sample);

}  // namespace diskfault
