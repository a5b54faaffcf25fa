// A floor under diskfault's run on a small log: a fresh process of the same build (linked the same
// way, its heap made resident as diskfault's is) that compiles, with RE2, the built-in rules the
// log's lines match, exactly as RuleSet compiles them, and does nothing else: no reading, no
// matching, no correlation, no report, no command line. RE2 compiles at run time and keeps no
// compiled program across processes, and a rule is compiled the first time a line might match it,
// so a run on a log pays at least this; with no rule named, what is left is the start of a process
// of this size. BENCHMARKS.md holds the 5 ms bar for a 200 KB log up against it.
//
// Usage: compile_floor --needed LOG   prints the names of the built-in rules that match a line of
//                                     LOG (the first that matches each line, as diskfault's
//                                     matcher takes it), one a line, in the rules' order; slow,
//                                     and not what is timed
//        compile_floor [RULE...]      compiles the named built-in rules; prints how many
// A benchmark, not a tool: exit status 2 on a name it does not know or a log it cannot open.
#include <re2/re2.h>

#include <cstdio>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "default_rules.hpp"
#include "diagnose.hpp"
#include "heap_prefault.hpp"
#include "line_format.hpp"
#include "reverse_line_reader.hpp"
#include "rules.hpp"
#include "source.hpp"

namespace {

using namespace diskfault;

int fail(const std::string& what) {
  std::fprintf(stderr, "compile_floor: %s\n", what.c_str());
  return 2;
}

// The log read from its end as diskfault reads it, with its format told as diskfault tells it.
int print_needed(const std::string& path) {
  const Source source = open_source(path);
  const LogFormat format = detect_source_format(source.fd.get(), source.size, source.name);
  ReverseLineReader reader(source.fd.get(), source.size, source.name);
  RuleSet rules(default_rules());
  std::set<std::size_t> matched;
  while (const auto line = reader.next()) {
    const Record record = parse_line(format, line->text);
    if (record.kind != RecordKind::kMessage) continue;
    if (auto m = rules.match(record)) matched.insert(m->rule);
  }
  std::string out;
  for (std::size_t i : matched) out += rules.rules()[i].name + "\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // As diskfault's main does first (BENCHMARKS.md, item 29): the floor is diskfault's own start.
  prefault_heap(std::size_t{512} << 10);
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "--needed") {
    if (args.size() != 2) return fail("usage: compile_floor --needed LOG");
    try {
      return print_needed(std::string(args[1]));
    } catch (const std::exception& e) {
      return fail(e.what());
    }
  }
  std::vector<CompiledPattern> compiled;
  compiled.reserve(args.size());
  for (std::string_view name : args) {
    const RuleText* text = nullptr;
    for (const RuleText& t : kDefaultRuleTexts) {
      if (t.name == name) text = &t;
    }
    if (text == nullptr) return fail("no built-in rule named '" + std::string(name) + "'");
    compiled.push_back(compile_pattern(std::string(text->pattern)));
    if (!compiled.back().regex->ok()) return fail(std::string(name) + ": does not compile");
  }
  std::printf("%zu rules compiled\n", compiled.size());
  return 0;
}
