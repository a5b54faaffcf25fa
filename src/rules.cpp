// Loading, compiling and self-checking rules; matching a message against all of them at once.
#include "rules.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>
#include <utility>

#include "line_format.hpp"
#include "rule_prefilter.hpp"

namespace diskfault {

extern const char* const kDefaultRulesJson;  // generated from rules/default.json

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
  bool known = false;
  for (auto& [name, type] : kEventNames) {
    if (name == yields) {
      rule.yields = type;
      known = true;
    }
  }
  if (!known) throw RulesError(where + ": unknown \"yields\": \"" + yields + "\"");
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

}  // namespace

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
  std::vector<Rule> rules = parse_rules(kDefaultRulesJson, "built-in rules");
  for (Rule& rule : rules) rule.proven = true;
  return rules;
}

struct RuleSet::Impl {
  // A rule's own RE2 (for its captures), made once, on first use for a proven rule.
  struct Compiled {
    std::once_flag once;
    std::string error;  // why the rule cannot be used; "" once it compiled
    std::unique_ptr<RE2> regex;
    std::array<int, kFieldCount> group{};  // capture group number per field, 0 if absent
    int groups = 0;
  };
  // One RE2::Set per audience: kernel messages, and each other program's lines.
  struct Audience {
    std::string program;
    std::unique_ptr<RE2::Set> set;
    std::vector<std::size_t> rule_of;   // set index -> rule index
    std::vector<std::string> patterns;  // for the prefilter
    // Rules out most messages from their first bytes before the set runs (see RulePrefilter).
    std::unique_ptr<RulePrefilter> prefilter;
  };

  std::vector<Rule> rules;
  std::unique_ptr<Compiled[]> compiled;  // one per rule; once_flag pins them in place
  std::vector<Audience> audiences;
  const Audience* kernel_audience = nullptr;  // the audience of kernel messages, if any rule has it

  // Rule i's own RE2 and capture groups, compiled on first call. Throws RulesError for a
  // pattern that does not compile or names an unknown capture.
  const Compiled& ready(std::size_t i) const {
    Compiled& c = compiled[i];
    // compile() reports a faulty rule in c.error: unwinding out of call_once is not safe on
    // every C library, and the fault must be reported on every call, not only the first.
    std::call_once(c.once, [&] { compile(i, c); });
    if (!c.error.empty()) throw RulesError(c.error);
    return c;
  }

  void compile(std::size_t i, Compiled& c) const {
    const Rule& rule = rules[i];
    auto regex = std::make_unique<RE2>(rule.pattern, quiet_options());
    if (!regex->ok()) {
      c.error = where(rule) + ": bad pattern: " + regex->error();
      return;
    }
    for (auto& [name, number] : regex->NamedCapturingGroups()) {
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

  static RE2::Options quiet_options() {
    RE2::Options options;
    options.set_log_errors(false);  // RE2::Quiet: we report the error ourselves, with the rule name
    return options;
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
  const RE2::Options options = Impl::quiet_options();
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
      impl_->audiences.push_back(
          {rule.program, std::make_unique<RE2::Set>(options, RE2::ANCHOR_START), {}, {}, {}});
      audience = &impl_->audiences.back();
    }
    std::string error;
    if (audience->set->Add(rule.pattern, &error) < 0) throw RulesError(where + ": " + error);
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
    const auto& c = impl_->ready(static_cast<std::size_t>(from - impl_->rules.begin()));
    if (c.group[static_cast<std::size_t>(Field::kHctl)] == 0) {
      throw RulesError(where + ": device_from rule '" + rule.device_from + "' has no hctl capture");
    }
  }
  for (auto& a : impl_->audiences) {
    if (!a.set->Compile()) throw RulesError("rules: the pattern set is too large to compile");
    a.prefilter = std::make_unique<RulePrefilter>(a.patterns);
  }
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

std::optional<RuleMatch> RuleSet::match(const Record& record) const {
  return match(record.message, record.program, record.kernel);
}

std::optional<RuleMatch> RuleSet::match(std::string_view message, std::string_view program,
                                        bool kernel) const {
  const Impl::Audience* audience = impl_->audience(program, kernel);
  if (!audience) return std::nullopt;
  if (!audience->prefilter->may_match(message)) return std::nullopt;
  thread_local std::vector<int> hits;
  hits.clear();
  if (!audience->set->Match(message, &hits)) return std::nullopt;
  std::sort(hits.begin(), hits.end());
  std::array<re2::StringPiece, 32> groups;
  for (int hit : hits) {
    std::size_t index = audience->rule_of[static_cast<std::size_t>(hit)];
    const Impl::Compiled& c = impl_->ready(index);
    int n = std::min<int>(c.groups + 1, static_cast<int>(groups.size()));
    if (!c.regex->Match(message, 0, message.size(), RE2::ANCHOR_START, groups.data(), n)) continue;
    RuleMatch result;
    result.rule = index;
    for (std::size_t f = 0; f < kFieldCount; ++f) {
      int g = c.group[f];
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
  return std::nullopt;
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
