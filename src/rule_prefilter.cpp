// The prefilter's pattern analysis: a small reader of RE2 syntax that over-approximates prefixes.
#include "rule_prefilter.hpp"

#include <algorithm>
#include <optional>

namespace diskfault {
namespace {

using ByteSet = RulePrefilter::ByteSet;
using Path = RulePrefilter::Path;

constexpr std::size_t kDepth = RulePrefilter::kDepth;
// Beyond this many ways through a fragment they are merged into one (a wider, still sound set).
constexpr std::size_t kMaxPaths = 128;

// One way through a fragment: the byte sets it consumes first, and whether what follows the
// fragment comes right after them (`closed`) or after bytes the analysis stopped tracking.
struct Way {
  Path bytes;
  bool closed = true;
};
using Fragment = std::vector<Way>;

ByteSet range(unsigned char lo, unsigned char hi) {
  ByteSet s;
  for (unsigned c = lo; c <= hi; ++c) s.set(c);
  return s;
}
ByteSet byte(unsigned char c) {
  ByteSet s;
  s.set(c);
  return s;
}
ByteSet all_bytes() { return ByteSet().set(); }
ByteSet digits() { return range('0', '9'); }
ByteSet word() { return range('0', '9') | range('A', 'Z') | range('a', 'z') | byte('_'); }
// RE2's \s is [\t\n\f\r ]; \v is added too, which only widens the set.
ByteSet space() {
  return byte('\t') | byte('\n') | byte('\v') | byte('\f') | byte('\r') | byte(' ');
}

Fragment empty() { return Fragment{Way{}}; }
Fragment one(const ByteSet& s) { return Fragment{Way{Path{s}, true}}; }
// A character that may take several bytes (were a pattern compiled for UTF-8): at least one
// byte, then untracked. Sound for byte-wise patterns too, only wider than it need be.
Fragment wide() { return Fragment{Way{Path{all_bytes()}, false}}; }

Fragment opened(Fragment f) {
  for (Way& w : f) w.closed = false;
  return f;
}

// Too many ways: one way as wide as all of them, as long as the shortest, and open.
Fragment merged(const Fragment& f) {
  std::size_t shortest = kDepth;
  for (const Way& w : f) shortest = std::min(shortest, w.bytes.size());
  Way m;
  m.closed = false;
  m.bytes.resize(shortest);
  for (const Way& w : f) {
    for (std::size_t i = 0; i < shortest; ++i) m.bytes[i] |= w.bytes[i];
  }
  return Fragment{m};
}

Fragment either(Fragment a, const Fragment& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a.size() > kMaxPaths ? merged(a) : a;
}

// `y` appended to the way `x`, which must be closed and shorter than kDepth.
void extend(Way& x, const Way& y) {
  x.closed = y.closed;
  for (const ByteSet& s : y.bytes) {
    if (x.bytes.size() == kDepth) {
      x.closed = false;
      return;
    }
    x.bytes.push_back(s);
  }
}

Fragment then(Fragment a, const Fragment& b) {
  // Mostly `b` is one way (a byte, a class, a group without '|'): then each way of `a` grows in
  // place, where building a new fragment would copy every way's byte sets at every atom.
  if (b.size() == 1) {
    for (Way& x : a) {
      if (!x.closed || x.bytes.size() >= kDepth) {
        x.closed = false;
      } else {
        extend(x, b.front());
      }
    }
    return a;
  }
  Fragment out;
  for (const Way& x : a) {
    if (!x.closed || x.bytes.size() >= kDepth) {
      out.push_back(Way{x.bytes, false});
      continue;
    }
    for (const Way& y : b) {
      out.push_back(x);
      extend(out.back(), y);
    }
  }
  return out.size() > kMaxPaths ? merged(out) : out;
}

bool is_ascii_punct(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

// The end of a repetition `{n}`, `{n,}` or `{n,m}` that starts at p[i], or npos if there is none.
std::size_t repetition_end(std::string_view p, std::size_t i) {
  if (i >= p.size() || p[i] != '{') return std::string_view::npos;
  std::size_t j = i + 1;
  auto digits_from = [&] {
    std::size_t start = j;
    while (j < p.size() && p[j] >= '0' && p[j] <= '9') ++j;
    return j > start;
  };
  if (!digits_from()) return std::string_view::npos;
  if (j < p.size() && p[j] == ',') {
    ++j;
    digits_from();
  }
  if (j >= p.size() || p[j] != '}') return std::string_view::npos;
  return j + 1;
}

// Recursive descent over the subset of RE2 syntax the rules use. Every method returns nullopt
// when it meets something it does not follow; the caller then gives up on the whole pattern.
class Reader {
 public:
  explicit Reader(std::string_view p) : p_(p) {}

  std::optional<Fragment> pattern() {
    auto f = alternation();
    if (!f || i_ != p_.size()) return std::nullopt;
    return f;
  }

 private:
  bool done() const { return i_ >= p_.size(); }
  char peek() const { return p_[i_]; }

  std::optional<Fragment> alternation() {
    auto f = sequence();
    if (!f) return std::nullopt;
    while (!done() && peek() == '|') {
      ++i_;
      auto g = sequence();
      if (!g) return std::nullopt;
      if (!skipping_) f = either(std::move(*f), *g);
    }
    return f;
  }

  std::optional<Fragment> sequence() {
    Fragment f = nothing();
    // Once no way through `f` can take another byte, what follows cannot change the paths; it
    // is still read, to find the end of the sequence and any syntax the analysis refuses.
    const bool was_skipping = skipping_;
    while (!done() && peek() != '|' && peek() != ')') {
      auto a = atom();
      if (!a) return std::nullopt;
      auto q = quantified(std::move(*a));
      if (!q) return std::nullopt;
      if (!skipping_) {
        f = then(std::move(f), *q);
        skipping_ = saturated(f);
      }
    }
    skipping_ = was_skipping;
    return f;
  }

  // What the atoms read in skip mode make: nothing at all, which costs no allocation.
  Fragment single(const ByteSet& s) const { return skipping_ ? Fragment{} : one(s); }
  Fragment any_char() const { return skipping_ ? Fragment{} : wide(); }
  Fragment nothing() const { return skipping_ ? Fragment{} : empty(); }

  static bool saturated(const Fragment& f) {
    return std::all_of(f.begin(), f.end(),
                       [](const Way& w) { return !w.closed || w.bytes.size() >= kDepth; });
  }

  // Applies a repetition operator after an atom, if there is one.
  std::optional<Fragment> quantified(Fragment a) {
    if (done()) return a;
    char c = peek();
    if (c == '?' || c == '*' || c == '+') {
      ++i_;
      if (!done() && peek() == '?') ++i_;  // non-greedy: the same strings
      if (c == '+' || skipping_) return opened(std::move(a));
      return either(empty(), opened(std::move(a)));
    }
    if (c != '{') return a;
    // {n}, {n,}, {n,m}; anything else after '{' is not followed.
    const std::size_t end = repetition_end(p_, i_);
    if (end == std::string_view::npos) return std::nullopt;
    std::size_t k = i_ + 1;
    while (p_[k] == '0') ++k;
    const bool low_is_zero = p_[k] < '0' || p_[k] > '9';  // n is all zeros
    i_ = end;
    if (!done() && peek() == '?') ++i_;
    if (low_is_zero && !skipping_) return either(empty(), opened(std::move(a)));
    return opened(std::move(a));  // the first copy, then untracked
  }

  std::optional<Fragment> atom() {
    char c = peek();
    if (static_cast<unsigned char>(c) >= 0x80) return std::nullopt;  // encoding-dependent
    switch (c) {
      case '(':
        return group();
      case '[':
        return char_class();
      case '\\':
        return escape();
      case '.':
        ++i_;
        return any_char();
      case '^':
      case '$':
        ++i_;
        return nothing();  // zero-width
      case '*':
      case '+':
      case '?':
      case '{':
      case ')':
      case '|':
        return std::nullopt;
      default:
        ++i_;
        return single(byte(static_cast<unsigned char>(c)));
    }
  }

  std::optional<Fragment> group() {
    ++i_;  // '('
    if (p_.substr(i_).starts_with("?:")) {
      i_ += 2;
    } else if (p_.substr(i_).starts_with("?P<")) {
      std::size_t close = p_.find('>', i_);
      if (close == std::string_view::npos) return std::nullopt;
      i_ = close + 1;
    } else if (!done() && peek() == '?') {
      return std::nullopt;  // flags such as (?i) change what bytes match
    }
    auto f = alternation();
    if (!f || done() || peek() != ')') return std::nullopt;
    ++i_;
    return f;
  }

  // A backslash sequence outside a class: a set of one-byte characters, a zero-width
  // assertion, a wide class, or nullopt.
  std::optional<Fragment> escape() {
    ++i_;
    if (done()) return std::nullopt;
    char c = p_[i_++];
    switch (c) {
      case 'd':
        return single(digits());
      case 'w':
        return single(word());
      case 's':
        return single(space());
      case 'D':
      case 'S':
      case 'W':
        return any_char();
      case 'b':
      case 'B':
      case 'A':
      case 'z':
        return nothing();
      case 't':
        return single(byte('\t'));
      case 'n':
        return single(byte('\n'));
      case 'r':
        return single(byte('\r'));
      case 'f':
        return single(byte('\f'));
      case 'v':
        return single(byte('\v'));
      case 'a':
        return single(byte('\a'));
      default:
        if (is_ascii_punct(c)) return single(byte(static_cast<unsigned char>(c)));
        return std::nullopt;  // \x, \p, \Q, octal, ...: not followed
    }
  }

  std::optional<Fragment> char_class() {
    ++i_;  // '['
    if (!done() && peek() == '^') return negated_class();
    ByteSet set;
    bool first = true;
    for (;;) {
      if (done()) return std::nullopt;
      char c = peek();
      if (c == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      if (c == '[' && p_.substr(i_).starts_with("[:")) return std::nullopt;
      std::optional<unsigned char> low = class_char(&set);
      if (!low) {
        if (wide_) return skip_class(false);
        if (failed_) return std::nullopt;
        continue;  // a class escape such as \d was added to `set`
      }
      if (i_ + 1 < p_.size() && peek() == '-' && p_[i_ + 1] != ']') {
        ++i_;
        ByteSet ignored;
        std::optional<unsigned char> high = class_char(&ignored);
        if (!high || *high < *low) return std::nullopt;
        set |= range(*low, *high);
      } else {
        set.set(*low);
      }
    }
    return single(set);
  }

  // [^...] may match any character outside the list: wide, as `.` is.
  std::optional<Fragment> negated_class() {
    ++i_;
    return skip_class(true);
  }

  // Skips to the end of a class the analysis treats as wide.
  std::optional<Fragment> skip_class(bool first) {
    while (!done()) {
      char c = p_[i_++];
      if (c == '\\') {
        ++i_;
      } else if (c == '[' && !done() && peek() == ':') {
        return std::nullopt;
      } else if (c == ']' && !first) {
        wide_ = false;
        return any_char();
      }
      first = false;
    }
    return std::nullopt;
  }

  // One character inside a class: returns it, or nullopt after adding a class escape to `set`
  // (or setting wide_ / failed_).
  std::optional<unsigned char> class_char(ByteSet* set) {
    char c = p_[i_++];
    if (static_cast<unsigned char>(c) >= 0x80) {
      failed_ = true;
      return std::nullopt;
    }
    if (c != '\\') return static_cast<unsigned char>(c);
    if (done()) {
      failed_ = true;
      return std::nullopt;
    }
    char e = p_[i_++];
    switch (e) {
      case 'd':
        *set |= digits();
        return std::nullopt;
      case 'w':
        *set |= word();
        return std::nullopt;
      case 's':
        *set |= space();
        return std::nullopt;
      case 'D':
      case 'S':
      case 'W':
        wide_ = true;
        return std::nullopt;
      case 't':
        return static_cast<unsigned char>('\t');
      case 'n':
        return static_cast<unsigned char>('\n');
      case 'r':
        return static_cast<unsigned char>('\r');
      case 'f':
        return static_cast<unsigned char>('\f');
      case 'v':
        return static_cast<unsigned char>('\v');
      case 'a':
        return static_cast<unsigned char>('\a');
      default:
        if (is_ascii_punct(e)) return static_cast<unsigned char>(e);
        failed_ = true;
        return std::nullopt;
    }
  }

  std::string_view p_;
  std::size_t i_ = 0;
  bool wide_ = false;
  bool failed_ = false;
  bool skipping_ = false;  // the fragments being read cannot matter: only parse them
};

}  // namespace

std::size_t class_end(std::string_view p, std::size_t i) {
  std::size_t j = i + 1;
  if (j < p.size() && p[j] == '^') ++j;
  if (j < p.size() && p[j] == ']') ++j;  // a leading ']' is a member
  while (j < p.size()) {
    if (p[j] == '\\') {
      j += 2;
    } else if (p[j] == '[' && j + 1 < p.size() && p[j + 1] == ':') {
      return std::string_view::npos;
    } else if (p[j] == ']') {
      return j + 1;
    } else {
      ++j;
    }
  }
  return std::string_view::npos;
}

bool RulePrefilter::analyse(std::string_view pattern, std::vector<Path>* paths) {
  auto f = Reader(pattern).pattern();
  if (!f) return false;
  paths->clear();
  for (Way& w : *f) paths->push_back(std::move(w.bytes));
  return true;
}

namespace {

// The end of the group that opens at p[i] ('('): the index after its ')', or npos.
std::size_t group_end(std::string_view p, std::size_t i) {
  int depth = 0;
  for (std::size_t j = i; j < p.size();) {
    if (p[j] == '\\') {
      j += 2;
    } else if (p[j] == '[') {
      j = class_end(p, j);
      if (j == std::string_view::npos) return j;
    } else {
      if (p[j] == '(') ++depth;
      if (p[j] == ')' && --depth == 0) return j + 1;
      ++j;
    }
  }
  return std::string_view::npos;
}

// `p` split at its top-level '|' (not inside a group or class); nullopt if it does not lex.
std::optional<std::vector<std::string_view>> alternatives(std::string_view p) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t j = 0; j < p.size();) {
    if (p[j] == '\\') {
      j += 2;
    } else if (p[j] == '[') {
      j = class_end(p, j);
    } else if (p[j] == '(') {
      j = group_end(p, j);
    } else {
      if (p[j] == '|') {
        out.push_back(p.substr(start, j - start));
        start = j + 1;
      }
      ++j;
    }
    if (j == std::string_view::npos) return std::nullopt;
  }
  out.push_back(p.substr(std::min(start, p.size())));
  return out;
}

// Literals one of which every match contains, and how much they tell: the length of the
// shortest, less what the leading-byte paths already check for a run at the very start. With
// each, the other runs of its alternative, which a match that holds it holds too.
struct Requirement {
  std::vector<std::string> any_of;             // empty: nothing is known
  std::vector<std::vector<std::string>> with;  // with[i]: any_of[i]'s companions
  std::size_t worth = 0;
};

Requirement sequence_requirement(std::string_view p, bool at_start);

// `at_start`: `p` is matched from the first byte of the message.
Requirement requirement(std::string_view p, bool at_start) {
  auto alts = alternatives(p);
  if (!alts) return {};
  if (alts->size() == 1) return sequence_requirement(p, at_start);
  Requirement all;
  all.worth = std::string_view::npos;
  for (std::string_view alt : *alts) {
    Requirement r = sequence_requirement(alt, at_start);
    if (r.any_of.empty()) return {};  // an alternative need not contain anything known
    all.worth = std::min(all.worth, r.worth);
    for (std::string& literal : r.any_of) all.any_of.push_back(std::move(literal));
    for (auto& companions : r.with) all.with.push_back(std::move(companions));
  }
  return all;
}

Requirement sequence_requirement(std::string_view p, bool at_start) {
  Requirement best;
  std::string run;
  bool run_at_start = at_start;  // the run so far began at the message's first byte
  // Every run that tells something: each is in every match of the sequence. The longest is
  // searched for; the others, checked where it is found, turn away a line that holds only it
  // (nvme's " timeout" in "Shutdown timeout set to 8 seconds", BENCHMARKS.md item 44). Runs
  // shorter than kMinCompanion (": ", ")") are in most kernel lines and would turn none away; a
  // run at the start is mostly what the leading-byte paths check already.
  constexpr std::size_t kMinCompanion = 3;
  std::vector<std::string> runs;
  auto consider = [&](Requirement r) {
    if (!r.any_of.empty() && r.worth > 0 && r.worth >= best.worth) best = std::move(r);
  };
  auto end_run = [&] {
    if (!run.empty()) {
      std::size_t worth = run.size();
      if (run_at_start) worth = worth > RulePrefilter::kDepth ? worth - RulePrefilter::kDepth : 0;
      if (!run_at_start && run.size() >= kMinCompanion &&
          std::find(runs.begin(), runs.end(), run) == runs.end()) {
        runs.push_back(run);
      }
      // Tested before a Requirement is built: building one allocates, and most runs lose.
      if (worth > 0 && worth >= best.worth) best = Requirement{{run}, {{}}, worth};
    }
    run.clear();
    run_at_start = false;
  };
  std::size_t i = 0;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '(') {
      if (p.substr(i).starts_with("(?") && !p.substr(i).starts_with("(?:") &&
          !p.substr(i).starts_with("(?P<")) {
        return {};  // flags such as (?i) change what the literal bytes match
      }
      const std::size_t end = group_end(p, i);
      if (end == std::string_view::npos) return {};
      const bool group_at_start = run_at_start && run.empty();
      end_run();
      std::size_t inside = i + 1;
      if (p.substr(i).starts_with("(?:")) {
        inside = i + 3;
      } else if (p.substr(i).starts_with("(?P<")) {
        inside = p.find('>', i) + 1;
        if (inside == 0 || inside >= end) return {};
      }
      const bool optional =
          end < p.size() && (p[end] == '?' || p[end] == '*' || p.substr(end).starts_with("{0"));
      if (!optional) consider(requirement(p.substr(inside, end - 1 - inside), group_at_start));
      i = end;
      continue;
    }
    if (c == '?' || c == '*' || c == '+') {  // after a group or class: not in any run
      ++i;
      continue;
    }
    if (c == '{') {
      std::size_t end = repetition_end(p, i);
      if (end == std::string_view::npos) return {};  // a literal '{': not worth following
      i = end;
      continue;
    }
    if (c == '^' && i == 0) {  // zero-width: the run still starts the match
      ++i;
      continue;
    }
    // One atom: a literal byte, or something else that ends the run.
    std::optional<char> literal;
    std::size_t next = i + 1;
    if (c == '[') {
      next = class_end(p, i);
      if (next == std::string_view::npos) return {};
    } else if (c == '\\') {
      if (i + 1 >= p.size()) return {};
      const char e = p[i + 1];
      next = i + 2;
      if (is_ascii_punct(e)) {
        literal = e;
      } else if (std::string_view("dDsSwWbBAz").find(e) == std::string_view::npos) {
        return {};  // \x{...}, \p{...}, \Q...\E and the like: not followed
      }
    } else if (c == ')' || c == '|') {
      return {};  // unbalanced: RE2 refuses the pattern anyway
    } else if (c != '.' && c != '^' && c != '$' && static_cast<unsigned char>(c) < 0x80) {
      literal = c;
    }
    i = next;
    const bool repeated =
        i < p.size() && (p[i] == '?' || p[i] == '*' || p[i] == '+' || p[i] == '{');
    if (literal && (!repeated || p[i] == '+')) run += *literal;  // x+ has at least one x
    if (!literal || repeated) end_run();
  }
  end_run();
  for (std::size_t k = 0; k < best.any_of.size(); ++k) {
    for (const std::string& other : runs) {
      if (other != best.any_of[k]) best.with[k].push_back(other);
    }
  }
  return best;
}

}  // namespace

bool RulePrefilter::confirmed(std::uint32_t pattern, std::string_view message) const {
  const std::vector<Conjunction>& all_of = companions_[pattern];
  if (all_of.empty()) return true;
  return std::any_of(all_of.begin(), all_of.end(), [message](const Conjunction& c) {
    auto in_message = [message](const std::string& s) {
      return message.find(s) != std::string_view::npos;
    };
    return in_message(c.literal) && std::all_of(c.others.begin(), c.others.end(), in_message);
  });
}

bool RulePrefilter::any_candidate(std::string_view message) const {
  return find_candidate(message, [](std::size_t) { return true; });
}

namespace {

Requirement required(std::string_view pattern) {
  // Quoted text (\Q...\E) may hold parentheses, brackets and bars that the lexing here would
  // take for syntax.
  if (pattern.find("\\Q") != std::string_view::npos) return {};
  return requirement(pattern, true);
}

}  // namespace

std::vector<std::string> RulePrefilter::required_literals(std::string_view pattern) {
  return required(pattern).any_of;
}

RulePrefilter::Analysis RulePrefilter::analyse_pattern(std::string_view pattern) {
  Analysis a;
  a.followed = analyse(pattern, &a.paths);
  Requirement r = required(pattern);
  a.literals = std::move(r.any_of);
  for (std::size_t i = 0; i < r.with.size(); ++i) {
    for (std::string& companion : r.with[i])
      a.companions.push_back({static_cast<std::uint32_t>(i), std::move(companion)});
  }
  return a;
}

RulePrefilter::Words RulePrefilter::words_of(const ByteSet& set) {
  Words words{};
  for (std::size_t c = set._Find_first(); c < 256; c = set._Find_next(c))
    words[c / 64] |= std::uint64_t{1} << (c % 64);
  return words;
}

RulePrefilter::Analysis RulePrefilter::from_embedded(const EmbeddedAnalysis& embedded) {
  Analysis a;
  a.followed = embedded.followed;
  for (const EmbeddedPath& path : embedded.paths) {
    Path& p = a.paths.emplace_back();
    for (std::size_t i = 0; i < path.size; ++i) {
      ByteSet set;
      for (auto word = path.sets[i].rbegin(); word != path.sets[i].rend(); ++word)
        set = set << 64 | ByteSet(*word);
      p.push_back(set);
    }
  }
  a.literals.assign(embedded.literals.begin(), embedded.literals.end());
  for (const EmbeddedCompanion& companion : embedded.companions)
    a.companions.push_back({companion.literal, std::string(companion.text)});
  return a;
}

RulePrefilter::RulePrefilter(const std::vector<std::string>& patterns, Analyser analysis_of) {
  for (std::uint32_t pattern = 0; pattern < patterns.size(); ++pattern) {
    Analysis analysis = analysis_of(patterns[pattern]);
    std::vector<Conjunction>& all_of = companions_.emplace_back();
    if (!analysis.companions.empty()) {
      for (const std::string& literal : analysis.literals) all_of.push_back({literal, {}});
      for (Companion& companion : analysis.companions)
        all_of[companion.literal].others.push_back(std::move(companion.text));
    }
    literals_.emplace_back(std::move(analysis.literals));
    std::vector<Path>& paths = analysis.paths;
    const bool wildcard =
        !analysis.followed || std::any_of(paths.begin(), paths.end(), [](const Path& p) {
          return p.empty() || p[0].all();  // no leading byte is required
        });
    if (wildcard) {
      wildcards_.push_back(pattern);
      const auto index = static_cast<std::uint32_t>(paths_.size());
      paths_.emplace_back();
      for (auto& entries : by_first_) entries.push_back({index, pattern});
      for (ByteSet& next : second_) next.set();
      continue;
    }
    std::vector<Path> unique;
    for (Path& path : paths) {
      if (std::find(unique.begin(), unique.end(), path) == unique.end())
        unique.push_back(std::move(path));
    }
    for (Path& way : unique) {
      const auto index = static_cast<std::uint32_t>(paths_.size());
      const Path& path = paths_.emplace_back(std::move(way));
      // libstdc++'s _Find_first/_Find_next visit only the set bytes; testing all 256 for every
      // path of the built-in rules cost about 190,000 instructions a run (callgrind).
      for (std::size_t c = path[0]._Find_first(); c < 256; c = path[0]._Find_next(c)) {
        by_first_[c].push_back({index, pattern});
        if (path.size() >= 2) {
          second_[c] |= path[1];
        } else {
          second_[c].set();
        }
      }
    }
  }
}

}  // namespace diskfault
