// The built-in rules as the build embeds them from rules/default.json (scripts/embed_rules.py).
#pragma once

#include <span>
#include <string_view>

namespace diskfault {

// One rule's fields as written in the file; "" for a field it leaves out.
struct RuleText {
  std::string_view name, yields, kind, pattern, program, device_from;
};

extern const std::span<const RuleText> kDefaultRuleTexts;

}  // namespace diskfault
