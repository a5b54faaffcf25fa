// Tests of the rule prefilter: it never turns away a message that a rule matches.
#include "rule_prefilter.hpp"

#include <doctest/doctest.h>
#include <re2/re2.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "line_format.hpp"
#include "rules.hpp"
#include "test_support.hpp"

using namespace diskfault;

namespace {

// The patterns of one audience of the built-in rules ("" = kernel), compiled one by one.
struct Audience {
  std::vector<std::string> names;
  std::vector<std::string> patterns;
  std::vector<std::unique_ptr<RE2>> regexes;
};

Audience audience(const std::string& program) {
  Audience a;
  for (const Rule& rule : test::shipped_rules()) {
    if (rule.program != program) continue;
    a.names.push_back(rule.name);
    a.patterns.push_back(rule.pattern);
    a.regexes.push_back(compile_pattern(rule.pattern).regex);
  }
  return a;
}

bool matches(const Audience& a, std::size_t i, const std::string& message) {
  return a.regexes[i]->Match(message, 0, message.size(), RE2::ANCHOR_START, nullptr, 0);
}

bool any_matches(const Audience& a, const std::string& message) {
  for (std::size_t i = 0; i < a.regexes.size(); ++i) {
    if (matches(a, i, message)) return true;
  }
  return false;
}

// Every pattern the filter leaves for `message`, in the order it visits them.
std::vector<std::size_t> candidates(const RulePrefilter& filter, std::string_view message) {
  std::vector<std::size_t> out;
  filter.find_candidate(message, [&](std::size_t i) {
    out.push_back(i);
    return false;
  });
  return out;
}

// Fails unless every pattern that matches `message` is among its candidates.
void check_candidates(const Audience& a, const RulePrefilter& filter, const std::string& message) {
  const std::vector<std::size_t> left = candidates(filter, message);
  CHECK_MESSAGE(std::is_sorted(left.begin(), left.end()), message);
  CHECK_MESSAGE(std::adjacent_find(left.begin(), left.end()) == left.end(), message);
  for (std::size_t i = 0; i < a.regexes.size(); ++i) {
    if (matches(a, i, message) && std::find(left.begin(), left.end(), i) == left.end()) {
      FAIL_CHECK("pattern " << a.patterns[i] << " matches '" << message
                            << "' but the prefilter leaves it out");
    }
  }
}

std::vector<std::string> sample_lines(const std::string& program) {
  std::vector<std::string> lines;
  for (const Rule& rule : test::shipped_rules()) {
    if (rule.program != program) continue;
    for (const RuleSample& s : rule.samples) lines.push_back(s.line);
    for (const std::string& m : rule.near_misses) lines.push_back(m);
  }
  return lines;
}

// A copy of `line` damaged in one of a few ways that stay close to real text.
std::string mutate(std::string line, std::mt19937& rng) {
  auto pick = [&](std::size_t n) { return n ? static_cast<std::size_t>(rng() % n) : 0; };
  const std::string alphabet = " []():.,-_/0123456789abcdefsdxXFSEtaATnvme\t\xc3\xa9";
  switch (rng() % 5) {
    case 0:
      line.resize(pick(line.size() + 1));
      break;
    case 1:
      if (!line.empty()) line[pick(line.size())] = alphabet[pick(alphabet.size())];
      break;
    case 2:
      line.insert(pick(line.size() + 1), 1, alphabet[pick(alphabet.size())]);
      break;
    case 3:
      if (!line.empty()) line.erase(pick(line.size()), 1);
      break;
    default:
      line = std::string(1, alphabet[pick(alphabet.size())]) + line;
      break;
  }
  return line;
}

// A random pattern over a small alphabet, using the constructs the analysis knows.
std::string random_pattern(std::mt19937& rng, int depth) {
  const std::vector<std::string> atoms{"a", "b",    "c",    "-",      "\\d", "\\w", "\\s", "\\S",
                                       ".", "[ab]", "[^a]", "[a-c1]", "\\-", "^",   "$",   "\\b"};
  const std::vector<std::string> quantifiers{"",    "",      "",     "?",  "*", "+",
                                             "{2}", "{0,2}", "{1,}", "??", "*?"};
  std::string p;
  int n = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < n; ++i) {
    std::string atom;
    if (depth > 0 && rng() % 4 == 0) {
      atom = (rng() % 2 ? "(?:" : "(?P<g" + std::to_string(depth) + std::to_string(i) + ">") +
             random_pattern(rng, depth - 1) + "|" + random_pattern(rng, depth - 1) + ")";
    } else {
      atom = atoms[rng() % atoms.size()];
    }
    std::string q = quantifiers[rng() % quantifiers.size()];
    if (atom == "^" || atom == "$" || atom == "\\b") q.clear();
    p += atom + q;
  }
  if (rng() % 5 == 0) p += "|" + random_pattern(rng, depth > 0 ? depth - 1 : 0);
  return p;
}

}  // namespace

TEST_CASE("the analysis follows every built-in kernel and smartd rule") {
  CHECK_FALSE(RulePrefilter(audience("").patterns).admits_everything());
  CHECK_FALSE(RulePrefilter(audience("smartd").patterns).admits_everything());
}

TEST_CASE("every sample and near miss that a rule matches passes the prefilter") {
  for (const std::string program : {"", "smartd"}) {
    Audience a = audience(program);
    RulePrefilter filter(a.patterns);
    for (const std::string& line : sample_lines(program)) {
      if (any_matches(a, line)) CHECK_MESSAGE(filter.may_match(line), line);
      check_candidates(a, filter, line);
    }
  }
}

TEST_CASE("damaged sample lines that a rule still matches pass the prefilter") {
  std::mt19937 rng(7);
  for (const std::string program : {"", "smartd"}) {
    Audience a = audience(program);
    RulePrefilter filter(a.patterns);
    std::vector<std::string> lines = sample_lines(program);
    int matched = 0;
    for (int i = 0; i < 20000; ++i) {
      std::string line = lines[rng() % lines.size()];
      for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) line = mutate(line, rng);
      if (!any_matches(a, line)) continue;
      ++matched;
      if (!filter.may_match(line)) FAIL_CHECK("prefilter turns away a matching line: " << line);
      check_candidates(a, filter, line);
    }
    CHECK(matched > 1000);  // the damage leaves many lines matching, so the check bites
  }
}

TEST_CASE("every line of the project's test logs that a rule matches passes the prefilter") {
  Audience kernel = audience("");
  RulePrefilter filter(kernel.patterns);
  const std::vector<LogFormat> formats{LogFormat::kDmesg, LogFormat::kSyslog,
                                       LogFormat::kJournalMonotonic, LogFormat::kRfc5424,
                                       LogFormat::kKmsg};
  int lines = 0, matched = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(DISKFAULT_SOURCE_ROOT "/testdata")) {
    if (!entry.is_regular_file() || entry.path().extension() != ".log") continue;
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      ++lines;
      for (LogFormat format : formats) {
        std::string message(parse_line(format, line).message);
        if (!any_matches(kernel, message)) continue;
        ++matched;
        CHECK_MESSAGE(filter.may_match(message), message);
        check_candidates(kernel, filter, message);
      }
    }
  }
  CHECK(lines > 100);
  CHECK(matched > 50);
}

TEST_CASE("random patterns: a string a pattern matches always passes its prefilter") {
  std::mt19937 rng(11);
  const std::string alphabet = "abc1- \xc3\xa9";
  int followed = 0, checked = 0;
  for (int i = 0; i < 1500; ++i) {
    std::string pattern = random_pattern(rng, 2);
    RE2 re(pattern, RE2::Quiet);
    if (!re.ok()) continue;
    RulePrefilter filter({pattern});
    if (!filter.admits_everything()) ++followed;
    for (int j = 0; j < 60; ++j) {
      std::string text;
      for (int k = static_cast<int>(rng() % 11); k > 0; --k)
        text += alphabet[rng() % alphabet.size()];
      if (!re.Match(text, 0, text.size(), RE2::ANCHOR_START, nullptr, 0)) continue;
      ++checked;
      if (!filter.may_match(text)) {
        FAIL_CHECK("pattern '" << pattern << "' matches '" << text
                               << "' but the prefilter says no");
      }
    }
  }
  CHECK(followed > 300);
  CHECK(checked > 3000);
}

TEST_CASE("a pattern the analysis does not follow makes the prefilter admit everything") {
  for (const std::string pattern :
       {"(?i)xfs error", "\\x58FS", "\\pLx", "[[:alpha:]]x", "é", ".*XFS", "(?:XFS|)"}) {
    RulePrefilter filter({"^sd ", pattern});
    CHECK_MESSAGE(filter.admits_everything(), pattern);
    CHECK(filter.may_match("anything at all, even XFS"));
  }
}

TEST_CASE("the built-in rules' prefilter turns away everyday noise") {
  RulePrefilter filter(audience("").patterns);
  for (const std::string noise :
       {"[UFW BLOCK] IN=eno1 OUT= MAC=00:11:22:33:44:55 SRC=192.0.2.1", "audit: type=1400",
        "usb 1-1: new high-speed USB device number 2 using xhci_hcd",
        "systemd[1]: Started Session 1 of User admin.", "IPv6: ADDRCONF(NETDEV_CHANGE): eth0",
        "e1000e 0000:00:1f.6 eno1: NIC Link is Up", "br-0a1b: port 1(veth0) entered blocking state",
        "kauditd_printk_skb: 12 callbacks suppressed", ""}) {
    CHECK_FALSE_MESSAGE(filter.may_match(noise), noise);
  }
  CHECK(filter.may_match("XFS (sdc1): log I/O error -5"));
  CHECK(filter.may_match("sd 2:0:0:0: [sdc] Attached SCSI disk"));
}

TEST_CASE("the required literals: one of them is in every match") {
  using Set = std::vector<std::string>;
  auto of = [](const char* pattern) { return RulePrefilter::required_literals(pattern); };
  // A run at the start tells little beyond the leading-byte paths; one further on tells more.
  CHECK(of("^XFS \\((?P<device>[^)\\s]+)\\): bad") == Set{"): bad"});
  CHECK(of("^Device: /dev/(?P<device>\\w+), S/N:(?P<serial>\\S+)") == Set{", S/N:"});
  CHECK(of("^Linux version (?P<x>\\S+)") == Set{"Linux version "});  // longer than the paths
  CHECK(of("^sd (?P<hctl>\\d+): \\[(?P<device>[a-z]+)\\] (?:tag#\\d+ )? *Sense Key : x") ==
        Set{"Sense Key : x"});
  // One string per alternative of a group every match goes through.
  CHECK(of("^XFS \\((?P<d>\\w+)\\): (?:[Mm]etadata I/O error|writeback error)") ==
        Set{"etadata I/O error", "writeback error"});
  CHECK(of("^(?:(?:blk_update_request|end_request): )?critical medium error, dev") ==
        Set{"critical medium error, dev"});  // an optional group tells nothing
  CHECK(of("\\d(?:abcde|xyzzy)") == Set{"abcde", "xyzzy"});
  CHECK(of("abcde|xyzzy").empty());      // both within the leading-byte paths
  CHECK(of("ab?cd") == Set{"cd"});       // b is optional: "a" then "cd"
  CHECK(of("\\dabcx*y") == Set{"abc"});  // x may be absent
  CHECK(of("\\dabcx+y") == Set{"abcx"});
  CHECK(of("z{2}bc") == Set{"bc"});
  CHECK(of("z[ab]]cd") == Set{"]cd"});
  CHECK(of("z[]a]xy") == Set{"xy"});  // ']' first is in the class
  CHECK(of("zx(?:abcdef)?yz") == Set{"yz"});
  CHECK(of("zx(?:abcdef)+yz") == Set{"abcdef"});
  // Nothing certain: an alternative without a literal, flags, or syntax not followed here.
  for (const char* pattern :
       {"zabc|\\d+", "(?i)zabc", "\\x41bc", "\\Qabc\\E", "ab{,2}", "[[:alpha:]]abc", "z(?:abc|)",
        // quoted text hides a group's end: "abc" is inside the optional group
        "(?:\\Q)?abc(?:\\E)?(?P<device>sd\\w)"}) {
    CHECK_MESSAGE(of(pattern).empty(), pattern);
  }
}

TEST_CASE("a literal's companions: the other runs of its alternative turn away a line") {
  // The longest run of the first alternative, " timeout", is in a line that holds no "QID ".
  const std::string pattern =
      "^nvme nvme\\d+: (?:I/O \\d+ (?:\\(\\w+\\) )?QID \\d+ timeout|controller is down)";
  const RulePrefilter::Analysis a = RulePrefilter::analyse_pattern(pattern);
  CHECK(a.literals == std::vector<std::string>{" timeout", "controller is down"});
  using Companion = RulePrefilter::Companion;
  // Runs shorter than three bytes (": ") tell nothing; the optional group's are not required.
  CHECK(a.companions == std::vector<Companion>{{0, "I/O "}, {0, "QID "}});
  RulePrefilter filter({pattern});
  CHECK(filter.may_match("nvme nvme0: I/O 12 QID 3 timeout, aborting"));
  CHECK(filter.may_match("nvme nvme0: I/O 12 (Read) QID 3 timeout, reset controller"));
  CHECK(filter.may_match("nvme nvme1: controller is down; will reset"));
  CHECK_FALSE(filter.may_match("nvme nvme0: Shutdown timeout set to 8 seconds"));
  CHECK_FALSE(filter.may_match("nvme nvme0: I/O 12 timeout, no queue named"));
  // Every companion must be there: " timeout" and "QID " without "I/O " do not do.
  CHECK_FALSE(filter.may_match("nvme nvme0: QID 1 controller is up, timeout 30"));
}

TEST_CASE("random patterns of several runs: a line each matches passes its prefilter") {
  // Built with a line that matches, piece by piece, so that companions are often in play (the
  // random patterns above seldom have a run of three literal bytes past the start).
  std::mt19937 rng(20261128);
  const std::vector<std::string> words{"abc", "QID ", "xyz-", "timeout", "I/O ", "ab"};
  auto word = [&] { return words[rng() % words.size()]; };
  int with_companions = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string pattern = "^", line;
    for (int n = 2 + static_cast<int>(rng() % 7); n > 0; --n) {
      switch (rng() % 5) {
        case 0: {  // a run
          const std::string w = word();
          pattern += w;
          line += w;
          break;
        }
        case 1: {  // digits between runs
          pattern += "\\d+";
          line += std::to_string(rng() % 1000);
          break;
        }
        case 2: {  // an optional group, taken or not
          const std::string w = word();
          pattern += "(?:" + w + ")?";
          if (rng() % 2) line += w;
          break;
        }
        case 3: {  // alternatives, one taken
          const std::string a = word(), b = word() + "1";
          pattern += "(?:" + a + "|" + b + ")";
          line += rng() % 2 ? a : b;
          break;
        }
        default:
          pattern += " ";
          line += " ";
      }
    }
    CAPTURE(pattern);
    CAPTURE(line);
    RE2 re(pattern, RE2::Quiet);
    REQUIRE(re.ok());
    REQUIRE(re.Match(line, 0, line.size(), RE2::ANCHOR_START, nullptr, 0));
    if (!RulePrefilter::analyse_pattern(pattern).companions.empty()) ++with_companions;
    CHECK(RulePrefilter({pattern}).may_match(line));
  }
  CHECK(with_companions > 150);
}

TEST_CASE("quoted text cannot hide a group's end from the candidate walk") {
  Audience a;
  const std::string pattern = "(?:\\Q)?abc(?:\\E)?(?P<device>sd\\w)";
  a.patterns.push_back(pattern);
  a.regexes.push_back(compile_pattern(pattern).regex);
  REQUIRE(matches(a, 0, "sda"));  // the optional group is ")?abc(?:" quoted: absent here
  check_candidates(a, RulePrefilter(a.patterns), "sda");
}

TEST_CASE("random patterns: every rule that matches a string is among its candidates") {
  std::mt19937 rng(23);
  const std::string alphabet = "abc1- \xc3\xa9";
  int checked = 0, literal = 0;
  for (int i = 0; i < 400; ++i) {
    Audience a;
    for (int k = 0; k < 3; ++k) {
      std::string pattern = random_pattern(rng, 2);
      auto re = compile_pattern(pattern).regex;
      if (!re->ok()) continue;
      if (!RulePrefilter::required_literals(pattern).empty()) ++literal;
      a.patterns.push_back(pattern);
      a.regexes.push_back(std::move(re));
    }
    RulePrefilter filter(a.patterns);
    for (int j = 0; j < 60; ++j) {
      std::string text;
      for (int k = static_cast<int>(rng() % 11); k > 0; --k)
        text += alphabet[rng() % alphabet.size()];
      if (!any_matches(a, text)) continue;
      ++checked;
      check_candidates(a, filter, text);
    }
  }
  CHECK(checked > 2000);
  CHECK(literal > 100);  // the literals are exercised, not only the leading-byte paths
}

TEST_CASE("a line is left to the few built-in rules its words fit") {
  Audience a = audience("");
  RulePrefilter filter(a.patterns);
  auto left = [&](const std::string& line) {
    std::vector<std::string> names;
    for (std::size_t i : candidates(filter, line)) names.push_back(a.names[i]);
    return names;
  };
  // The sd rules all share a line's first bytes; the words after the address set them apart.
  using Names = std::vector<std::string>;
  CHECK(left("sd 2:0:0:0: [sdc] Attached SCSI disk") ==
        Names{"sd-attached", "sd-binding", "seed-binding"});
  CHECK(left("sd 2:0:0:0: [sdc] tag#0 Sense Key : Medium Error [current]") ==
        Names{"sd-medium-error", "sd-sense-error", "sd-binding", "seed-binding"});
  // Everyday filesystem lines share an error rule's prefix, not any of its messages.
  CHECK(left("XFS (sdc1): Mounting V5 Filesystem").empty());
  CHECK(left("EXT4-fs (sdc1): mounted filesystem with ordered data mode").empty());
  CHECK(left("XFS (sdc1): writeback error on sector 2048") == Names{"xfs-error"});
}

TEST_CASE("the analyses the build embeds equal a fresh analysis of every built-in rule") {
  std::set<std::string> found;
  for (const Rule& rule : test::shipped_rules()) {
    CAPTURE(rule.name);
    const RulePrefilter::Analysis fresh = RulePrefilter::analyse_pattern(rule.pattern);
    std::size_t copies = 0;
    for (const RulePrefilter::EmbeddedAnalysis& embedded : kEmbeddedAnalyses) {
      if (embedded.pattern != rule.pattern) continue;
      ++copies;
      CHECK(RulePrefilter::from_embedded(embedded) == fresh);
    }
    CHECK(copies == 1);
    found.insert(rule.pattern);
  }
  CHECK(found.size() == kEmbeddedAnalyses.size());  // no entry for a pattern no rule has
}

TEST_CASE("a byte set survives being written as words") {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    RulePrefilter::ByteSet set;
    for (int i = 0; i < round % 40; ++i) set.set(rng() % 256);
    if (round % 50 == 0) set.set();  // every byte
    RulePrefilter::EmbeddedPath path{1, {RulePrefilter::words_of(set)}};
    const RulePrefilter::Analysis a = RulePrefilter::from_embedded({"", true, {&path, 1}, {}, {}});
    REQUIRE(a.paths.size() == 1);
    REQUIRE(a.paths[0].size() == 1);
    CHECK(a.paths[0][0] == set);
  }
}
