// Loading, compiling and self-checking rules; matching a message against all of them at once.
#include "rules.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <utility>

#include "default_rules.hpp"
#include "line_format.hpp"
#include "rule_prefilter.hpp"

namespace diskfault {

namespace {

using nlohmann::json;

constexpr std::array<std::string_view, kFieldCount> kFieldNames{
    "device", "hctl", "port", "controller", "vendor", "model", "serial", "wwn", "pci", "slot"};

constexpr std::array<std::pair<std::string_view, EventType>, kEventTypeCount> kEventNames{{
    {"error", EventType::kError},
    {"episode-start", EventType::kEpisodeStart},
    {"episode-end", EventType::kEpisodeEnd},
    {"boot", EventType::kBoot},
    {"appear", EventType::kAppear},
    {"attach", EventType::kAttach},
    {"detach", EventType::kDetach},
    {"fact", EventType::kFact},
}};

std::optional<EventType> event_by_name(std::string_view name) {
  for (auto& [known, type] : kEventNames) {
    if (known == name) return type;
  }
  return std::nullopt;
}

std::optional<Field> field_by_name(std::string_view name) {
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    if (kFieldNames[i] == name) return static_cast<Field>(i);
  }
  return std::nullopt;
}

std::string string_member(const json& object, const char* key, const std::string& where,
                          bool required) {
  auto it = object.find(key);
  if (it == object.end()) {
    if (required) throw RulesError(where + ": missing \"" + key + "\"");
    return {};
  }
  if (!it->is_string()) throw RulesError(where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

Rule parse_rule(const json& item, const std::string& origin, std::size_t index) {
  std::string where = origin + ": rule #" + std::to_string(index + 1);
  if (!item.is_object()) throw RulesError(where + ": must be an object");
  Rule rule;
  rule.origin = origin;
  rule.name = string_member(item, "name", where, true);
  where = origin + ": rule '" + rule.name + "'";
  std::string yields = string_member(item, "yields", where, true);
  auto type = event_by_name(yields);
  if (!type) throw RulesError(where + ": unknown \"yields\": \"" + yields + "\"");
  rule.yields = *type;
  rule.kind = string_member(item, "kind", where, rule.yields == EventType::kError);
  rule.pattern = string_member(item, "pattern", where, true);
  rule.program = string_member(item, "program", where, false);
  rule.device_from = string_member(item, "device_from", where, false);
  if (auto samples = item.find("samples"); samples != item.end()) {
    if (!samples->is_array()) throw RulesError(where + ": \"samples\" must be an array");
    for (const json& s : *samples) {
      RuleSample sample;
      if (s.is_string()) {
        sample.line = s.get<std::string>();
      } else if (s.is_object()) {
        sample.line = string_member(s, "line", where + " sample", true);
        sample.program = string_member(s, "program", where + " sample", false);
        if (auto caps = s.find("captures"); caps != s.end()) {
          if (!caps->is_object()) throw RulesError(where + ": sample captures must be an object");
          for (auto& [k, v] : caps->items()) {
            if (!v.is_string()) throw RulesError(where + ": sample capture must be a string");
            sample.captures.emplace_back(k, v.get<std::string>());
          }
        }
      } else {
        throw RulesError(where + ": a sample must be a string or an object");
      }
      if (sample.program.empty()) sample.program = rule.program;
      rule.samples.push_back(std::move(sample));
    }
  }
  if (auto misses = item.find("near_misses"); misses != item.end()) {
    if (!misses->is_array()) throw RulesError(where + ": \"near_misses\" must be an array");
    for (const json& m : *misses) {
      if (!m.is_string()) throw RulesError(where + ": a near miss must be a string");
      rule.near_misses.push_back(m.get<std::string>());
    }
  }
  return rule;
}

RE2::Options pattern_options() {
  RE2::Options options;
  options.set_log_errors(false);  // RE2::Quiet: the error is reported with the rule's name
  // Kernel messages are bytes, not text in any one encoding, and the kernel prints fixed-width
  // fields (the INQUIRY vendor and model) byte by byte; byte-wise programs are also a fraction
  // of the size of UTF-8 ones, and so compile faster.
  options.set_encoding(RE2::Options::EncodingLatin1);
  return options;
}

// `pattern` with each (?P<name> made a plain group, and the names with their group numbers; or
// nullopt where the lexing here might differ from RE2's (then RE2 reads the names itself).
// Why: RE2 checks a capture name against Unicode tables it builds on first use, which costs
// about 0.7 ms of every run, as much as compiling a dozen rules.
struct PlainGroups {
  std::string pattern;
  CapturedNames names;
  int groups = 0;  // capturing groups, named or not
};
std::optional<PlainGroups> without_capture_names(std::string_view p) {
  // Quoted text (\Q...\E), in a class or out, may hold what the lexing here takes for syntax.
  if (p.find("\\Q") != std::string_view::npos) return std::nullopt;
  PlainGroups out;
  std::string& plain = out.pattern;
  CapturedNames& names = out.names;
  int& groups = out.groups;
  for (std::size_t i = 0; i < p.size();) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) return std::nullopt;
      plain.append(p.substr(i, 2));
      i += 2;
    } else if (c == '[') {
      const std::size_t end = class_end(p, i);
      if (end == std::string_view::npos) return std::nullopt;
      plain.append(p.substr(i, end - i));
      i = end;
    } else if (p.substr(i).starts_with("(?P<")) {
      const std::size_t close = p.find('>', i);
      if (close == std::string_view::npos) return std::nullopt;
      std::string name(p.substr(i + 4, close - i - 4));
      const bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char n) {
        return (n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') || (n >= '0' && n <= '9') ||
               n == '_';
      });
      const bool repeated = std::any_of(names.begin(), names.end(),
                                        [&](const auto& named) { return named.first == name; });
      if (!word || repeated) return std::nullopt;  // RE2 names the fault
      names.emplace_back(std::move(name), ++groups);
      plain += '(';
      i = close + 1;
    } else if (c == '(') {
      if (!p.substr(i).starts_with("(?")) ++groups;  // (?: and (?flags) capture nothing
      plain += c;
      ++i;
    } else {
      plain += c;
      ++i;
    }
  }
  return out;
}

// A built-in pattern's analysis comes with the build; another pattern (from a rules file) is
// analysed here.
RulePrefilter::Analysis analysis_of(std::string_view pattern) {
  for (const RulePrefilter::EmbeddedAnalysis& embedded : kEmbeddedAnalyses) {
    if (embedded.pattern == pattern) return RulePrefilter::from_embedded(embedded);
  }
  return RulePrefilter::analyse_pattern(pattern);
}

}  // namespace

CompiledPattern compile_pattern(const std::string& pattern) {
  CompiledPattern compiled;
  if (auto plain = without_capture_names(pattern)) {
    auto regex = std::make_unique<RE2>(plain->pattern, pattern_options());
    // Another count of groups than RE2's: the lexing above went wrong, so RE2 reads the original.
    if (regex->ok() && regex->NumberOfCapturingGroups() == plain->groups) {
      compiled.regex = std::move(regex);
      compiled.names = std::move(plain->names);
      compiled.names_read_here = true;
      return compiled;
    }
  }
  // The original, for RE2's own reading of names and its message for a faulty pattern.
  compiled.regex = std::make_unique<RE2>(pattern, pattern_options());
  for (const auto& [name, number] : compiled.regex->NamedCapturingGroups())
    compiled.names.emplace_back(name, number);
  return compiled;
}

std::string_view field_name(Field field) { return kFieldNames[static_cast<std::size_t>(field)]; }

std::vector<Rule> parse_rules(std::string_view json_text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw RulesError(origin + ": not valid JSON (near byte " + std::to_string(e.byte) + ")");
  }
  if (!doc.is_object() || !doc.contains("rules") || !doc["rules"].is_array()) {
    throw RulesError(origin + ": expected an object with a \"rules\" array");
  }
  std::vector<Rule> rules;
  const json& items = doc["rules"];
  for (std::size_t i = 0; i < items.size(); ++i) rules.push_back(parse_rule(items[i], origin, i));
  return rules;
}

std::vector<Rule> load_rules_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::system_error(errno, std::generic_category(), "cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::system_error(errno, std::generic_category(), "cannot read " + path);
  return parse_rules(text.str(), path);
}

std::vector<Rule> default_rules() {
  std::vector<Rule> rules;
  rules.reserve(kDefaultRuleTexts.size());
  for (const RuleText& text : kDefaultRuleTexts) {
    Rule& rule = rules.emplace_back();
    rule.origin = "built-in rules";
    rule.name = text.name;
    auto type = event_by_name(text.yields);
    if (!type) throw RulesError("built-in rules: rule '" + rule.name + "': unknown \"yields\"");
    rule.yields = *type;
    rule.kind = text.kind;
    rule.pattern = text.pattern;
    rule.program = text.program;
    rule.device_from = text.device_from;
    // The test suite loads rules/default.json as a rules file, with every check and sample.
    rule.proven = true;
  }
  return rules;
}

struct RuleSet::Impl {
  // A rule's own RE2 (for its captures), made once, on first use for a proven rule.
  struct Compiled {
    std::atomic<bool> done{false};  // compile() ran; set under `compiling`
    std::string error;              // why the rule cannot be used; "" once it compiled
    std::unique_ptr<RE2> regex;
    std::array<int, kFieldCount> group{};  // capture group number per field, 0 if absent
    int groups = 0;
    // Candidate messages the rule did not match, counted up to kMissesBeforeScreening.
    mutable std::atomic<std::uint32_t> misses{0};
  };
  // RE2 looks for an anchored pattern's captures at once, with no DFA pass first: about 7 000
  // instructions even for a message that does not match. A rule whose candidates have failed
  // this often is screened by the DFA first ("nvme nvme0: Shutdown timeout set to 8 seconds", a
  // candidate of nvme-controller-error, comes in every boot); one that mostly matches is not, as
  // a DFA warmed for every rule cost 2 ms on a small log.
  static constexpr std::uint32_t kMissesBeforeScreening = 16;
  // The rules one kind of line is tried against: kernel messages, or one program's lines.
  struct Audience {
    std::string program;
    std::vector<std::size_t> rule_of;   // prefilter pattern index -> rule index
    std::vector<std::string> patterns;  // for the prefilter
    // Names the few rules worth running on a message (see RulePrefilter).
    std::unique_ptr<RulePrefilter> prefilter;
  };

  std::vector<Rule> rules;
  std::unique_ptr<Compiled[]> compiled;  // one per rule; the atomics pin them in place
  // Taken only to compile, so compile() must not come back to ready(). Not std::call_once:
  // glibc's wakes waiters with a futex call after every first call: a system call per rule
  // compiled, about a microsecond each on the machine of BENCHMARKS.md.
  mutable std::mutex compiling;
  std::vector<Audience> audiences;
  const Audience* kernel_audience = nullptr;  // the audience of kernel messages, if any rule has it

  // Rule i's own RE2 and capture groups, compiled on first call. Throws RulesError for a
  // pattern that does not compile or names an unknown capture.
  const Compiled& ready(std::size_t i) const {
    Compiled& c = compiled[i];
    if (!c.done.load(std::memory_order_acquire)) {
      std::lock_guard lock(compiling);
      if (!c.done.load(std::memory_order_relaxed)) {
        compile(i, c);
        c.done.store(true, std::memory_order_release);
      }
    }
    // compile() reports a faulty rule in c.error: the fault must be reported on every call, not
    // only the first.
    if (!c.error.empty()) throw RulesError(c.error);
    return c;
  }

  void compile(std::size_t i, Compiled& c) const {
    const Rule& rule = rules[i];
    CompiledPattern pattern = compile_pattern(rule.pattern);
    std::unique_ptr<RE2>& regex = pattern.regex;
    if (!regex->ok()) {
      c.error = where(rule) + ": bad pattern: " + regex->error();
      return;
    }
    for (auto& [name, number] : pattern.names) {
      auto field = field_by_name(name);
      if (!field) {
        c.error = where(rule) + ": unknown capture name '" + name + "'";
        return;
      }
      c.group[static_cast<std::size_t>(*field)] = number;
    }
    c.groups = regex->NumberOfCapturingGroups();
    c.regex = std::move(regex);
  }

  static std::string where(const Rule& rule) {
    return (rule.origin.empty() ? "" : rule.origin + ": ") + "rule '" + rule.name + "'";
  }

  const Audience* audience(std::string_view program, bool kernel) const {
    for (const Audience& a : audiences) {
      if (kernel ? a.program.empty() : a.program == program) return &a;
    }
    return nullptr;
  }
};

RuleSet::RuleSet(std::vector<Rule> rules) : impl_(std::make_unique<Impl>()) {
  impl_->rules = std::move(rules);
  impl_->compiled = std::make_unique<Impl::Compiled[]>(impl_->rules.size());
  for (std::size_t i = 0; i < impl_->rules.size(); ++i) {
    const Rule& rule = impl_->rules[i];
    const std::string where = Impl::where(rule);
    if (!rule.proven) {
      const Impl::Compiled& c = impl_->ready(i);
      auto has = [&](Field f) { return c.group[static_cast<std::size_t>(f)] != 0; };
      bool addressable =
          has(Field::kDevice) || has(Field::kHctl) || has(Field::kPort) || has(Field::kController);
      if (rule.yields != EventType::kBoot && !addressable) {
        throw RulesError(where + ": needs a device, hctl, port or controller capture");
      }
      if ((rule.yields == EventType::kEpisodeStart || rule.yields == EventType::kEpisodeEnd) &&
          !has(Field::kPort)) {
        throw RulesError(where + ": an episode event needs a port capture");
      }
      if ((rule.yields == EventType::kAppear || rule.yields == EventType::kAttach ||
           rule.yields == EventType::kDetach) &&
          !has(Field::kHctl) && !has(Field::kPort) && !has(Field::kController)) {
        throw RulesError(where + ": a presence event needs an hctl, port or controller capture");
      }
    }
    Impl::Audience* audience = nullptr;
    for (auto& a : impl_->audiences) {
      if (a.program == rule.program) audience = &a;
    }
    if (!audience) {
      audience = &impl_->audiences.emplace_back();
      audience->program = rule.program;
    }
    audience->rule_of.push_back(i);
    audience->patterns.push_back(rule.pattern);
  }
  for (const Rule& rule : impl_->rules) {
    // Proven rules too: the rule a device_from names may be a rules file's, which takes the
    // name's first match.
    if (rule.device_from.empty()) continue;
    const std::string where = Impl::where(rule);
    if (rule.yields != EventType::kError)
      throw RulesError(where + ": only an error takes device_from");
    auto from = std::find_if(impl_->rules.begin(), impl_->rules.end(),
                             [&](const Rule& r) { return r.name == rule.device_from; });
    if (from == impl_->rules.end()) {
      throw RulesError(where + ": device_from names no rule: '" + rule.device_from + "'");
    }
    // The test suite checks each built-in rule's device_from against the rule it names.
    if (rule.proven && from->proven) continue;
    const auto& c = impl_->ready(static_cast<std::size_t>(from - impl_->rules.begin()));
    if (c.group[static_cast<std::size_t>(Field::kHctl)] == 0) {
      throw RulesError(where + ": device_from rule '" + rule.device_from + "' has no hctl capture");
    }
  }
  for (auto& a : impl_->audiences)
    a.prefilter = std::make_unique<RulePrefilter>(a.patterns, &analysis_of);
  impl_->kernel_audience = impl_->audience({}, true);
  if (impl_->kernel_audience) kernel_prefilter_ = impl_->kernel_audience->prefilter.get();
}

RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&& other) noexcept
    : impl_(std::move(other.impl_)),
      kernel_prefilter_(std::exchange(other.kernel_prefilter_, nullptr)) {}

RuleSet& RuleSet::operator=(RuleSet&& other) noexcept {
  impl_ = std::move(other.impl_);
  kernel_prefilter_ = std::exchange(other.kernel_prefilter_, nullptr);
  return *this;
}

const std::vector<Rule>& RuleSet::rules() const noexcept { return impl_->rules; }

bool RuleSet::program_may_match(std::string_view program, std::string_view message) const {
  const Impl::Audience* audience = impl_->audience(program, false);
  return audience != nullptr && audience->prefilter->may_match(message);
}

std::optional<RuleMatch> RuleSet::match(const Record& record) const {
  return match(record.message, record.program, record.kernel);
}

std::optional<RuleMatch> RuleSet::match(std::string_view message, std::string_view program,
                                        bool kernel) const {
  const Impl::Audience* audience = impl_->audience(program, kernel);
  if (!audience) return std::nullopt;
  // The candidates come in rule order, so the first that matches is the first rule that does.
  // Few candidates fail (the prefilter's literals see to that), so each is searched for its
  // captures at once.
  std::size_t index = 0;
  const Impl::Compiled* c = nullptr;
  // Not cleared at every call: most calls end at the prefilter.
  thread_local std::array<re2::StringPiece, 32> groups;
  int n = 0;
  const bool found = audience->prefilter->find_candidate(message, [&](std::size_t candidate) {
    index = audience->rule_of[candidate];
    c = &impl_->ready(index);
    const bool screened = c->misses.load(std::memory_order_relaxed) >= Impl::kMissesBeforeScreening;
    if (screened && !c->regex->Match(message, 0, message.size(), RE2::ANCHOR_START, nullptr, 0)) {
      return false;
    }
    n = std::min<int>(c->groups + 1, static_cast<int>(groups.size()));
    const bool hit =
        c->regex->Match(message, 0, message.size(), RE2::ANCHOR_START, groups.data(), n);
    if (!hit && !screened) c->misses.fetch_add(1, std::memory_order_relaxed);
    return hit;
  });
  if (!found) return std::nullopt;
  RuleMatch result;
  result.rule = index;
  for (std::size_t f = 0; f < kFieldCount; ++f) {
    const int g = c->group[f];
    if (g > 0 && g < n && groups[g].data() != nullptr) {
      // Fixed-width fields (SCSI INQUIRY vendor and model) come space-padded.
      std::string_view value(groups[g].data(), groups[g].size());
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
      result.captures[f] = value;
    }
  }
  return result;
}

std::vector<std::string> RuleSet::check_samples() const {
  std::vector<std::string> problems;
  const auto& rules = impl_->rules;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const Rule& rule = rules[i];
    std::string where = "rule '" + rule.name + "'";
    if (rule.samples.empty()) problems.push_back(where + ": has no samples");
    for (const RuleSample& sample : rule.samples) {
      auto m = match(sample.line, sample.program, sample.program.empty());
      if (!m) {
        problems.push_back(where + ": sample does not match: " + sample.line);
        continue;
      }
      if (m->rule != i) {
        problems.push_back(where + ": sample is taken first by rule '" + rules[m->rule].name +
                           "': " + sample.line);
        continue;
      }
      for (auto& [name, expected] : sample.captures) {
        auto field = field_by_name(name);
        if (!field) {
          problems.push_back(where + ": sample names unknown capture '" + name + "'");
          continue;
        }
        std::string_view got = m->captures[static_cast<std::size_t>(*field)];
        if (got != expected) {
          problems.push_back(where + ": sample captures " + name + "='" + std::string(got) +
                             "', expected '" + expected + "': " + sample.line);
        }
      }
    }
    for (const std::string& miss : rule.near_misses) {
      auto m = match(miss, rule.program, rule.program.empty());
      if (m && m->rule == i) {
        problems.push_back(where + ": near miss matches: " + miss);
      } else if (m && rules[m->rule].yields == EventType::kError) {
        problems.push_back(where + ": near miss is an error for rule '" + rules[m->rule].name +
                           "': " + miss);
      }
    }
  }
  return problems;
}

}  // namespace diskfault
