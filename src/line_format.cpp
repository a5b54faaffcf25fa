// Hand-written prefix parsers (they run on every line) and format detection by prefix shapes.
#include "line_format.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdlib>

namespace diskfault {
namespace {

constexpr std::array<std::pair<LogFormat, std::string_view>, 6> kFormatNames{{
    {LogFormat::kDmesg, "dmesg"},
    {LogFormat::kDmesgCtime, "dmesg-T"},
    {LogFormat::kSyslog, "syslog"},
    {LogFormat::kJournalMonotonic, "journal-monotonic"},
    {LogFormat::kRfc5424, "rfc5424"},
    {LogFormat::kKmsg, "kmsg"},
}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// Removes a leading "<N>" syslog priority.
void skip_priority(std::string_view& s) {
  if (s.size() < 3 || s[0] != '<') return;
  std::size_t i = 1;
  while (i < s.size() && i < 5 && is_digit(s[i])) ++i;
  if (i > 1 && i < s.size() && s[i] == '>') s.remove_prefix(i + 1);
}

// Strips a leading "[...] " and reports what was inside. Returns false if there is none.
bool take_bracket(std::string_view& s, std::string_view& inside) {
  if (s.empty() || s.front() != '[') return false;
  std::size_t close = s.find(']');
  if (close == std::string_view::npos) return false;
  inside = s.substr(1, close - 1);
  s.remove_prefix(close + 1);
  if (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return true;
}

std::string_view take_token(std::string_view& s) {
  std::size_t space = s.find(' ');
  std::string_view token = s.substr(0, space);
  s.remove_prefix(space == std::string_view::npos ? s.size() : space + 1);
  return token;
}

void strip_kernel_bracket(Record& r) {
  std::string_view rest = r.message;
  std::string_view inside;
  if (take_bracket(rest, inside)) {
    double seconds = parse_seconds(inside);
    if (seconds >= 0) {
      r.monotonic = seconds;
      r.message = rest;
    }
  }
}

Record parse_dmesg(std::string_view line) {
  Record r;
  std::string_view rest = line;
  skip_priority(rest);
  std::string_view inside;
  if (take_bracket(rest, inside)) {
    r.monotonic = parse_seconds(inside);
    r.time = trim(inside);
    r.message = rest;
  } else {
    r.message = line;
  }
  return r;
}

// "host tag: message" after the timestamp; tag is "kernel" or "prog[pid]".
void parse_host_tag_message(std::string_view rest, Record& r) {
  take_token(rest);  // host
  std::size_t colon = rest.find(": ");
  std::size_t space = rest.find(' ');
  if (colon == std::string_view::npos || (space != std::string_view::npos && space < colon)) {
    if (rest.ends_with(':') && rest.find(' ') == std::string_view::npos) {
      colon = rest.size() - 1;  // "kernel:" with an empty message
    } else {
      r.kernel = false;
      r.message = rest;
      return;
    }
  }
  std::string_view tag = rest.substr(0, colon);
  r.program = tag.substr(0, tag.find('['));
  r.kernel = r.program == "kernel";
  r.message = colon + 2 <= rest.size() ? rest.substr(colon + 2) : std::string_view{};
  if (r.kernel) strip_kernel_bracket(r);
}

bool journal_marker(std::string_view line, Record& r) {
  if (!line.starts_with("-- ")) return false;
  r.message = line;
  r.kernel = false;
  r.kind = line.starts_with("-- Boot ") || line.starts_with("-- Reboot --")
               ? RecordKind::kBootSeparator
               : RecordKind::kMeta;
  return true;
}

Record parse_syslog(std::string_view line) {
  Record r;
  if (journal_marker(line, r)) return r;
  std::string_view rest = line;
  skip_priority(rest);
  if (rest.size() >= 16 && syslog_classic_time(rest.data())) {
    r.time = rest.substr(0, 15);  // "Nov 22 02:43:01"
    rest.remove_prefix(16);
  } else if (rest.size() > 11 && syslog_iso_time_start(rest.data())) {
    r.time = take_token(rest);  // "2026-11-22T02:43:01.123456+00:00"
  } else {
    r.kernel = false;
    r.message = line;
    return r;
  }
  parse_host_tag_message(rest, r);
  return r;
}

Record parse_journal_monotonic(std::string_view line) {
  Record r;
  if (journal_marker(line, r)) return r;
  std::string_view rest = line;
  std::string_view inside;
  if (!take_bracket(rest, inside)) {
    r.kernel = false;
    r.message = line;
    return r;
  }
  r.time = trim(inside);
  r.monotonic = parse_seconds(inside);
  parse_host_tag_message(rest, r);
  return r;
}

Record parse_rfc5424(std::string_view line) {
  Record r;
  std::string_view rest = line;
  skip_priority(rest);
  if (!rest.starts_with("1 ")) {
    r.kernel = false;
    r.message = line;
    return r;
  }
  rest.remove_prefix(2);
  r.time = take_token(rest);
  take_token(rest);  // host
  r.program = take_token(rest);
  take_token(rest);  // procid
  take_token(rest);  // msgid
  if (rest.starts_with("[")) {
    // Structured data: one or more [id k="v"] elements; inside quotes "\]" is escaped.
    std::size_t i = 0;
    while (i < rest.size() && rest[i] == '[') {
      bool quoted = false;
      for (++i; i < rest.size(); ++i) {
        if (rest[i] == '\\') {
          ++i;
        } else if (rest[i] == '"') {
          quoted = !quoted;
        } else if (rest[i] == ']' && !quoted) {
          ++i;
          break;
        }
      }
    }
    rest.remove_prefix(std::min(i, rest.size()));
    if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  } else {
    take_token(rest);  // "-"
  }
  if (rest.starts_with("\xEF\xBB\xBF")) rest.remove_prefix(3);
  r.kernel = r.program == "kernel";
  r.message = rest;
  if (r.kernel) strip_kernel_bracket(r);
  return r;
}

Record parse_kmsg(std::string_view line) {
  Record r;
  if (!line.empty() && line.front() == ' ') {
    r.kind = RecordKind::kContinuation;
    r.kernel = false;
    r.message = line.substr(1);
    return r;
  }
  // prio,seq,usec,flags[,more];message
  std::size_t semi = line.find(';');
  std::size_t c1 = line.find(',');
  if (semi == std::string_view::npos || c1 == std::string_view::npos || c1 > semi) {
    r.kernel = false;  // a stray line (a wrapped message); keep it, it matches nothing
    r.message = line;
    return r;
  }
  std::size_t c2 = line.find(',', c1 + 1);
  std::size_t c3 = c2 == std::string_view::npos ? c2 : line.find(',', c2 + 1);
  int prio = 0;
  std::from_chars(line.data(), line.data() + c1, prio);
  r.kernel = (prio >> 3) == 0;  // facility 0 is the kernel; userspace writes to kmsg as "user"
  if (c3 != std::string_view::npos && c3 < semi) {
    r.time = line.substr(c2 + 1, c3 - c2 - 1);  // microseconds since boot
    long long usec = -1;
    auto [end, ec] = std::from_chars(r.time.data(), r.time.data() + r.time.size(), usec);
    if (ec == std::errc() && usec >= 0) r.monotonic = static_cast<double>(usec) / 1e6;
  }
  r.message = line.substr(semi + 1);
  return r;
}

// Reads a line's first bytes for the shapes below: each step consumes what it names, or reports
// false. Every step is greedy and the shapes never need to take a step back: each run of a class
// is followed by a byte outside that class.
class ShapeCursor {
 public:
  explicit ShapeCursor(std::string_view line) : line_(line) {}

  bool byte(char c) {
    if (at_end() || line_[at_] != c) return false;
    ++at_;
    return true;
  }
  bool literal(std::string_view text) {
    if (!line_.substr(at_).starts_with(text)) return false;
    at_ += text.size();
    return true;
  }
  // From `min` to `max` bytes of a class, as many as there are.
  template <class Class>
  bool run(Class in_class, std::size_t min, std::size_t max = std::string_view::npos) {
    std::size_t n = 0;
    while (n < max && !at_end() && in_class(line_[at_])) {
      ++at_;
      ++n;
    }
    return n >= min;
  }
  // "<N>", a syslog priority of one to three digits, if the line has one here.
  void optional_priority() {
    const std::size_t before = at_;
    if (!(byte('<') && digits(1, 3) && byte('>'))) at_ = before;
  }
  bool digits(std::size_t min, std::size_t max = std::string_view::npos) {
    return run(is_digit, min, max);
  }
  // A run of bytes other than whitespace, then one space.
  bool token() {
    return run([](char c) { return !is_space(c); }, 1) && byte(' ');
  }
  // "Nov 22 02:43:01", a classic syslog time.
  bool month_day_time() {
    return run(is_upper, 1, 1) && run(is_lower, 2, 2) && byte(' ') &&
           run([](char c) { return c == ' ' || is_digit(c); }, 1, 1) && digits(1, 1) && byte(' ') &&
           clock();
  }
  // "02:43:01"
  bool clock() { return digits(2, 2) && byte(':') && digits(2, 2) && byte(':') && digits(2, 2); }
  // "[  1234.567890]", seconds since boot as dmesg and journalctl print them.
  bool bracketed_seconds() {
    return byte('[') && run(is_space, 0) && digits(1) && byte('.') && digits(1) && byte(']');
  }
  // "2026-11-22T", the date of an ISO 8601 time.
  bool iso_date() {
    return digits(4, 4) && byte('-') && digits(2, 2) && byte('-') && digits(2, 2) && byte('T');
  }
  bool at_end() const { return at_ == line_.size(); }
  std::string_view rest() const { return line_.substr(at_); }

  // The regular-expression classes the shapes are written in (\s is [\t\n\f\r ]).
  static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
  }
  static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
  static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }

 private:
  std::string_view line_;
  std::size_t at_ = 0;
};

// ^\d+,\d+,\d+,[^;]*;
bool kmsg_shape(std::string_view line) {
  ShapeCursor c(line);
  return c.digits(1) && c.byte(',') && c.digits(1) && c.byte(',') && c.digits(1) && c.byte(',') &&
         c.rest().find(';') != std::string_view::npos;
}

// "^<\d{1,3}>1 \d{4}-\d\d-\d\dT\S+ \S+ \S+ \S+ \S+ "
bool rfc5424_shape(std::string_view line) {
  ShapeCursor c(line);
  return c.byte('<') && c.digits(1, 3) && c.literal(">1 ") && c.iso_date() && c.token() &&
         c.token() && c.token() && c.token() && c.token();
}

// ^(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) \S+ [^\s:]+:(?: |$)
bool syslog_shape(std::string_view line) {
  ShapeCursor c(line);
  c.optional_priority();
  // The two times start apart: a month's capital letter, a year's digit.
  const bool classic = !c.at_end() && ShapeCursor::is_upper(c.rest().front());
  const bool time = classic ? c.month_day_time() && c.byte(' ') : c.iso_date() && c.token();
  return time && c.token() &&
         c.run([](char ch) { return ch != ':' && !ShapeCursor::is_space(ch); }, 1) && c.byte(':') &&
         (c.at_end() || c.byte(' '));
}

// "^\[\s*\d+\.\d+\] \S+ kernel: "
bool journal_monotonic_shape(std::string_view line) {
  ShapeCursor c(line);
  return c.bracketed_seconds() && c.byte(' ') && c.token() && c.literal("kernel: ");
}

// ^(?:<\d{1,3}>)?\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\]
bool dmesg_ctime_shape(std::string_view line) {
  ShapeCursor c(line);
  c.optional_priority();
  return c.byte('[') && c.run(ShapeCursor::is_upper, 1, 1) && c.run(ShapeCursor::is_lower, 2, 2) &&
         c.byte(' ') && c.month_day_time() && c.byte(' ') && c.digits(4, 4) && c.byte(']');
}

// ^(?:<\d{1,3}>)?\[\s*\d+\.\d+\]
bool dmesg_shape(std::string_view line) {
  ShapeCursor c(line);
  c.optional_priority();
  return c.bracketed_seconds();
}

}  // namespace

std::string_view format_name(LogFormat format) {
  for (auto& [f, name] : kFormatNames) {
    if (f == format) return name;
  }
  return "dmesg";
}

std::optional<LogFormat> parse_format_name(std::string_view name) {
  for (auto& [f, n] : kFormatNames) {
    if (n == name) return f;
  }
  return std::nullopt;
}

double parse_seconds(std::string_view s) {
  const char* p = s.data();
  const char* end = p + s.size();
  while (p != end && *p == ' ') ++p;
  while (end != p && end[-1] == ' ') --end;
  if (p == end || !is_digit(*p)) return -1;
  // dmesg's own "%5lu.%06lu": six decimals after a short integer part. Each decimal is
  // weighted by its own power of ten, so the six products do not wait on one another.
  if (end - p >= 8 && end - p <= 16 && end[-7] == '.') {
    static constexpr std::uint64_t kWeights[] = {100000, 10000, 1000, 100, 10, 1};
    const char* fraction = end - 6;
    std::uint64_t micros = 0;
    bool ok = true;
    for (int k = 0; k < 6; ++k) {
      unsigned digit = static_cast<unsigned>(static_cast<unsigned char>(fraction[k])) - '0';
      ok &= digit < 10;
      micros += digit * kWeights[k];
    }
    std::uint64_t whole = 0;
    for (const char* q = p; q != end - 7; ++q) {
      unsigned digit = static_cast<unsigned>(static_cast<unsigned char>(*q)) - '0';
      ok &= digit < 10;
      whole = whole * 10 + digit;
    }
    // At most 9 + 6 digits: the same exact integer and division as the general path below.
    if (ok) return static_cast<double>(whole * 1000000 + micros) / 1e6;
  }
  // The usual "1234.567890" without from_chars (it runs on every line): with at most 15
  // digits both the digits as an integer and the power of ten are exact doubles, and IEEE
  // division rounds their quotient once, to the same nearest double that from_chars returns.
  std::uint64_t digits = 0;  // wraps harmlessly past 19 digits: the count sends those below
  int count = 0;
  const char* dot = nullptr;
  const char* q = p;
  for (; q != end; ++q) {
    unsigned digit = static_cast<unsigned>(static_cast<unsigned char>(*q)) - '0';
    if (digit < 10) {
      digits = digits * 10 + digit;
      ++count;
    } else if (*q == '.' && dot == nullptr) {
      dot = q;
    } else {
      break;
    }
  }
  if (q == end && count <= 15) {
    static constexpr double kPowers[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                         1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    return static_cast<double>(digits) / kPowers[dot ? end - dot - 1 : 0];
  }
  double value = -1;
  auto [last, ec] = std::from_chars(p, end, value);
  if (ec != std::errc() || last != end) return -1;
  return value;
}

Record parse_line(LogFormat format, std::string_view line) {
  switch (format) {
    case LogFormat::kDmesg:
    case LogFormat::kDmesgCtime:
      return parse_dmesg(line);
    case LogFormat::kSyslog:
      return parse_syslog(line);
    case LogFormat::kJournalMonotonic:
      return parse_journal_monotonic(line);
    case LogFormat::kRfc5424:
      return parse_rfc5424(line);
    case LogFormat::kKmsg:
      return parse_kmsg(line);
  }
  return parse_dmesg(line);
}

LogFormat detect_format(std::span<const std::string> sample) {
  return recognise_format(sample).value_or(LogFormat::kDmesg);  // no prefix at all: dmesg's
}

FormatShapes format_shapes(std::string_view line) {
  return FormatShapes{
      .kmsg = kmsg_shape(line),
      .rfc5424 = rfc5424_shape(line),
      .syslog = syslog_shape(line),
      .journal_monotonic = journal_monotonic_shape(line),
      .dmesg_ctime = dmesg_ctime_shape(line),
      .dmesg = dmesg_shape(line),
  };
}

void FormatVote::add(std::string_view line) {
  const FormatShapes shapes = format_shapes(line);
  kmsg_ += shapes.kmsg;
  rfc5424_ += shapes.rfc5424;
  syslog_ += shapes.syslog;
  journal_ += shapes.journal_monotonic;
  ctime_ += shapes.dmesg_ctime;
  dmesg_ += shapes.dmesg;
}

std::optional<LogFormat> FormatVote::winner() const {
  int dmesg = dmesg_;
  // Every short-monotonic journal line also looks like dmesg; "host kernel:" after the stamp
  // on a good share of them is what tells the two apart.
  if (journal_ > 0 && journal_ * 2 >= dmesg) dmesg = 0;
  // The order breaks ties from the most to the least specific shape.
  const std::array<std::pair<int, LogFormat>, 6> scores{{
      {kmsg_, LogFormat::kKmsg},
      {rfc5424_, LogFormat::kRfc5424},
      {syslog_, LogFormat::kSyslog},
      {journal_, LogFormat::kJournalMonotonic},
      {ctime_, LogFormat::kDmesgCtime},
      {dmesg, LogFormat::kDmesg},
  }};
  int best = 0;
  std::optional<LogFormat> format;
  for (auto& [score, f] : scores) {
    if (score > best) {
      best = score;
      format = f;
    }
  }
  return format;
}

std::optional<LogFormat> recognise_format(std::span<const std::string> sample) {
  FormatVote vote;
  for (const std::string& line : sample) vote.add(line);
  return vote.winner();
}

}  // namespace diskfault
