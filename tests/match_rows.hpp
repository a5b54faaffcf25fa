// The matcher's matches as lines of text: how the tests and the fuzzer hold its fast lane to its
// full path.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "matcher.hpp"
#include "source.hpp"

namespace diskfault::test {

// Every match the matcher yields for the log at `path` read as `format` in blocks of `block`
// bytes (copied or in place, as `mode` says), one row each: type, rule, line, time, text and
// captures.
inline std::vector<std::string> match_rows(const std::string& path, LogFormat format,
                                           std::size_t block, const RuleSet& rules,
                                           MatchOptions options, Want want,
                                           ReadMode mode = ReadMode::kAuto) {
  Source source = open_source(path);
  ReverseLineReader reader(source.fd.get(), source.size, source.name, block, mode);
  auto matcher = match_lines(reader, format, rules, options);
  std::vector<std::string> rows;
  while (Match* m = matcher.send(want)) {
    std::string row = std::to_string(static_cast<int>(m->type)) + "|" +
                      (m->rule ? m->rule->name : "-") + "|" + std::to_string(m->from_end) + "|" +
                      std::string(m->time) + "|" + std::string(m->text);
    for (std::string_view capture : m->captures) row += "|" + std::string(capture);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace diskfault::test
