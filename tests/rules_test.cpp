// Tests of rules: the shipped rules check out; bad rules files are refused with the rule's name.
#include "rules.hpp"

#include <doctest/doctest.h>
#include <re2/re2.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "line_format.hpp"
#include "test_support.hpp"

using namespace diskfault;

namespace {

std::string rule_json(const std::string& body) { return R"j({"rules": [)j" + body + "]}"; }

std::string refusal(const std::string& text) {
  try {
    RuleSet set(parse_rules(text, "my.json"));
  } catch (const RulesError& e) {
    return e.what();
  }
  return "";
}

std::string refusal_of(std::vector<Rule> rules) {
  try {
    RuleSet set(std::move(rules));
  } catch (const RulesError& e) {
    return e.what();
  }
  return "";
}

// Why a rules file's rules, loaded before the built-in ones, are refused.
std::string refusal_with_built_ins(const std::string& rules_json) {
  auto rules = parse_rules(rule_json(rules_json), "mine.json");
  for (Rule& rule : default_rules()) rules.push_back(std::move(rule));
  return refusal_of(std::move(rules));
}

}  // namespace

TEST_CASE("every built-in rule compiles and passes its samples and near misses") {
  const RuleSet rules(test::shipped_rules());
  CHECK(rules.rules().size() > 30);
  auto problems = rules.check_samples();
  for (const auto& p : problems) MESSAGE(p);
  CHECK(problems.empty());
}

TEST_CASE("the built-in rules pass every check a rules file gets when it is loaded") {
  // Built-in rules are compiled one by one only when first used; this is where they get the
  // checks a user's rules file gets at start-up.
  auto rules = default_rules();
  for (Rule& rule : rules) {
    CHECK(rule.proven);
    rule.proven = false;
  }
  CHECK_NOTHROW(RuleSet{std::move(rules)});
}

TEST_CASE("a proven rule compiles on first use, and reports a broken pattern then") {
  auto rules = parse_rules(rule_json(R"j(
    {"name": "fine", "yields": "error", "kind": "x", "pattern": "fine (?P<device>\\w+)"},
    {"name": "odd", "yields": "error", "kind": "x", "pattern": "odd (?P<disk>\\w+)"})j"),
                           "t.json");
  for (Rule& rule : rules) rule.proven = true;
  RuleSet set(std::move(rules));  // not compiled yet: the unknown capture goes unseen
  auto fine = set.match("fine sda", "", true);
  REQUIRE(fine);
  CHECK(fine->captures[static_cast<std::size_t>(Field::kDevice)] == "sda");
  for (int attempt = 0; attempt < 2; ++attempt) {  // reported every time, not only the first
    CHECK_THROWS_WITH_AS(set.match("odd sda", "", true),
                         "t.json: rule 'odd': unknown capture name 'disk'", RulesError);
  }
  CHECK(set.match("fine sdb", "", true));
  RuleSet moved = std::move(set);
  CHECK(moved.match("fine sdc", "", true));
  CHECK_FALSE(set.kernel_may_match("fine sdc"));  // NOLINT(bugprone-use-after-move): defined
}

TEST_CASE("a rule whose candidates keep failing still matches, with its captures") {
  // After enough misses RuleSet screens such a rule with RE2's DFA before it looks for captures.
  RuleSet set(default_rules());
  const std::string_view miss = "nvme nvme0: Shutdown timeout set to 8 seconds";  // a candidate
  for (int i = 0; i < 100; ++i) {
    CAPTURE(i);
    CHECK_FALSE(set.match(miss, "", true));
    if (i % 10 != 9) continue;
    auto hit = set.match("nvme nvme3: I/O 123 QID 4 timeout, aborting", "", true);
    REQUIRE(hit);
    CHECK(set.rules()[hit->rule].name == "nvme-controller-error");
    CHECK(hit->captures[static_cast<std::size_t>(Field::kController)] == "nvme3");
  }
}

TEST_CASE("a rules file's rule cannot break what a built-in rule takes its drive from") {
  // mpt-sense-* take the drive from "sd-command"; a user's rule of that name comes first.
  CHECK(refusal_with_built_ins(
            R"j({"name": "sd-command", "yields": "fact", "pattern": "sd (?P<device>\\w+) CDB"})j")
            .find("device_from rule 'sd-command' has no hctl capture") != std::string::npos);
}

TEST_CASE("a rules file's device_from must name a rule with an address, built-in or not") {
  CHECK(refusal_with_built_ins(R"j({"name": "mine", "yields": "error", "kind": "x",
                                    "pattern": "foo (?P<device>\\w+)", "device_from": "xfs-error"})j")
            .find("device_from rule 'xfs-error' has no hctl capture") != std::string::npos);
}

TEST_CASE("rules match bytes: '.' takes one byte, whatever the encoding") {
  auto rules = parse_rules(rule_json(R"j(
    {"name": "two", "yields": "fact", "pattern": "^vendor (?P<model>..) (?P<device>sd\\w)$"})j"),
                           "bytes.json");
  RuleSet set(std::move(rules));
  // Two bytes that are one UTF-8 character, and two that are no UTF-8 at all.
  for (const std::string model : {"\xc3\xa9", "\xff\xfe"}) {
    const std::string line = "vendor " + model + " sdc";  // the captures point into it
    auto m = set.match(line, "", true);
    REQUIRE_MESSAGE(m, model);
    CHECK(m->captures[static_cast<std::size_t>(Field::kModel)] == model);
  }
}

TEST_CASE("the shipped rules file is the built-in one") {
  auto shipped = test::shipped_rules();
  auto built_in = default_rules();
  REQUIRE(shipped.size() == built_in.size());
  for (std::size_t i = 0; i < shipped.size(); ++i) {
    const Rule& file = shipped[i];
    const Rule& binary = built_in[i];
    CHECK(file.name == binary.name);
    CHECK(file.yields == binary.yields);
    CHECK(file.kind == binary.kind);
    CHECK(file.pattern == binary.pattern);
    CHECK(file.program == binary.program);
    CHECK(file.device_from == binary.device_from);
    CHECK_FALSE(file.samples.empty());
    CHECK(binary.samples.empty());  // the binary carries what matching needs, no more
    CHECK(binary.proven);
  }
}

TEST_CASE("a rules file that is not JSON is refused, naming the file") {
  CHECK(refusal("{not json") == "my.json: not valid JSON (near byte 3)");
  CHECK(refusal(R"j({"rules": 3})j").find("my.json") == 0);
}

TEST_CASE("a rule with a bad pattern, capture or event is refused, naming the rule") {
  CHECK(
      refusal(rule_json(
                  R"j({"name": "r1", "yields": "error", "kind": "x", "pattern": "(?P<device>a"})j"))
          .find("rule 'r1': bad pattern") != std::string::npos);
  CHECK(
      refusal(rule_json(
                  R"j({"name": "r2", "yields": "error", "kind": "x", "pattern": "(?P<disk>a)"})j"))
          .find("rule 'r2': unknown capture name 'disk'") != std::string::npos);
  CHECK(refusal(rule_json(R"j({"name": "r3", "yields": "explode", "pattern": "a"})j"))
            .find("rule 'r3': unknown \"yields\"") != std::string::npos);
  CHECK(refusal(rule_json(R"j({"name": "r4", "yields": "error", "pattern": "(?P<device>a)"})j"))
            .find("rule 'r4': missing \"kind\"") != std::string::npos);
  CHECK(refusal(rule_json(R"j({"name": "r5", "yields": "appear", "pattern": "(?P<device>a)"})j"))
            .find("rule 'r5'") != std::string::npos);
}

TEST_CASE("check_samples names a rule whose sample fails, or whose near miss matches") {
  RuleSet set(parse_rules(rule_json(R"j(
    {"name": "sample-fails", "yields": "error", "kind": "x", "pattern": "^boom (?P<device>\\w+)",
     "samples": [{"line": "boom sda", "captures": {"device": "sdb"}}, "bang sda"]},
    {"name": "miss-matches", "yields": "error", "kind": "x", "pattern": "^bad (?P<device>\\w+)",
     "samples": ["bad sda"], "near_misses": ["bad sdb"]})j"),
                          "t.json"));
  auto problems = set.check_samples();
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].find("rule 'sample-fails': sample captures device='sda', expected 'sdb'") == 0);
  CHECK(problems[1].find("rule 'sample-fails': sample does not match: bang sda") == 0);
  CHECK(problems[2].find("rule 'miss-matches': near miss matches: bad sdb") == 0);
}

TEST_CASE("the first rule in file order wins a line that two rules match") {
  RuleSet set(parse_rules(rule_json(R"j(
    {"name": "specific", "yields": "error", "kind": "x", "pattern": "^disk (?P<device>sd[a-z]+) died"},
    {"name": "general", "yields": "fact", "pattern": "^disk (?P<device>sd[a-z]+)"})j"),
                          "t.json"));
  auto m = set.match("disk sdc died", "", true);
  REQUIRE(m);
  CHECK(set.rules()[m->rule].name == "specific");
  m = set.match("disk sdc lives", "", true);
  REQUIRE(m);
  CHECK(set.rules()[m->rule].name == "general");
}

TEST_CASE("rules match from the start of the message only") {
  const RuleSet& rules = test::default_rule_set();
  CHECK_FALSE(rules.match("note: XFS (sdc1): log I/O error -5", "", true).has_value());
  CHECK(rules.match("XFS (sdc1): log I/O error -5", "", true).has_value());
}

TEST_CASE("a program's rules see only that program's lines, and kernel rules only the kernel's") {
  const RuleSet& rules = test::default_rule_set();
  std::string smartd =
      "Device: /dev/sdd [SAT], ST4000LM024-2AN17V, S/N:WFG05CSN, WWN:5-000c50-0ab5e59fc, FW:0001, "
      "4.00 TB";
  CHECK(rules.match(smartd, "smartd", false).has_value());
  CHECK_FALSE(rules.match(smartd, "", true).has_value());
  CHECK_FALSE(rules.match(smartd, "evil", false).has_value());
  CHECK_FALSE(rules.match("XFS (sdc1): log I/O error -5", "someapp", false).has_value());
}

TEST_CASE("fixed-width INQUIRY fields are captured without their padding") {
  auto m = test::default_rule_set().match(
      "scsi 4:0:3:0: Direct-Access     ATA      WDC WD30EFRX-68A 0A80 PQ: 0 ANSI: 6", "", true);
  REQUIRE(m);
  CHECK(m->captures[static_cast<std::size_t>(Field::kVendor)] == "ATA");
  CHECK(m->captures[static_cast<std::size_t>(Field::kModel)] == "WDC WD30EFRX-68A");
}

TEST_CASE("a hostile line cannot make matching slow: RE2 runs in linear time") {
  // A classic catastrophic-backtracking shape for a backtracking engine; RE2 does not care.
  std::string hostile = "XFS (" + std::string(200000, 'a');
  CHECK_FALSE(test::default_rule_set().match(hostile, "", true).has_value());
}

TEST_CASE("capture names are numbered as RE2 numbers them, in every shipped rule and odd cases") {
  std::vector<std::string> patterns;
  for (const Rule& rule : test::shipped_rules()) {
    patterns.push_back(rule.pattern);
    CHECK_MESSAGE(compile_pattern(rule.pattern).names_read_here, rule.name);
  }
  CHECK_FALSE(compile_pattern("\\Q(\\E(?P<device>x)").names_read_here);
  for (const char* odd : {
           "(a)(?P<device>b)(?:c)(?i:d)(?P<hctl>e)",  // plain, non-capturing and flag groups
           "[(](?P<device>x)[^)(]+(?P<hctl>y)",       // parentheses inside classes
           "[]()](?P<device>x)",                      // ']' first in a class
           "\\((?P<device>x)\\)",                     // escaped parentheses
           "\\Q(\\E(?P<device>x)",                    // quoted text: RE2 reads the names
           "[[:alpha:]](?P<device>x)",                // POSIX class: RE2 reads the names
           "(?P<device>a)(?P<device>b)",              // a repeated name: as RE2 has it
       }) {
    patterns.emplace_back(odd);
  }
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingLatin1);
  for (const std::string& pattern : patterns) {
    CompiledPattern compiled = compile_pattern(pattern);
    REQUIRE_MESSAGE(compiled.regex->ok(), pattern);
    RE2 reference(pattern, options);
    CapturedNames expected(reference.NamedCapturingGroups().begin(),
                           reference.NamedCapturingGroups().end());
    CapturedNames got = compiled.names;
    std::sort(got.begin(), got.end());
    CHECK_MESSAGE(got == expected, pattern);
    CHECK(compiled.regex->NumberOfCapturingGroups() == reference.NumberOfCapturingGroups());
  }
}

TEST_CASE("a faulty capture name is refused as RE2 refuses it") {
  CHECK(refusal(rule_json(R"j({"name": "r", "yields": "fact", "pattern": "(?P<h ctl>a)"})j"))
            .find("rule 'r': bad pattern: ") != std::string::npos);
}
