#!/usr/bin/env python3
"""Writes a C++ source holding the built-in rules of a rules file, as a table of strings.

The build runs it on rules/default.json, so the shipped rules and the built-in ones are the same
rules, and the binary starts without parsing JSON. Only what matching needs goes in: samples
and near misses stay in the file, where the test suite and `diskfault rules --check` read them.
The test suite loads the file as a rules file, with every check, and requires the table to hold
the same rules.
"""
import json
import sys

FIELDS = ("name", "yields", "kind", "pattern", "program", "device_from")


def cxx_string(text: str) -> str:
    # Every byte as a hex escape: no text in a rule can end the literal or form a trigraph.
    return '"' + "".join("\\x%02x" % b for b in text.encode("utf-8")) + '"'


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: embed_rules.py RULES.json OUTPUT.cpp", file=sys.stderr)
        return 2
    source, target = sys.argv[1:]
    try:
        with open(source, encoding="utf-8") as f:
            rules = json.load(f)["rules"]
        rows = []
        if not isinstance(rules, list) or not rules:
            raise ValueError("\"rules\" must be a list of at least one rule")
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                raise ValueError("rule #%d is not an object" % (index + 1))
            for field in FIELDS:
                required = field in ("name", "yields", "pattern")
                if (required or field in rule) and not isinstance(rule.get(field), str):
                    raise ValueError("rule #%d: \"%s\" must be a string" % (index + 1, field))
            rows.append("    {" + ", ".join(cxx_string(rule.get(f, "")) for f in FIELDS) + "},\n")
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("embed_rules.py: %s: %s" % (source, e), file=sys.stderr)
        return 1
    with open(target, "w", encoding="ascii") as out:
        out.write("// Generated from %s by scripts/embed_rules.py. Do not edit.\n" % source.split("/")[-1])
        out.write('#include "default_rules.hpp"\n\nnamespace diskfault {\n\n')
        out.write("static const RuleText kTable[] = {\n")
        out.writelines(rows)
        out.write("};\n\nconst std::span<const RuleText> kDefaultRuleTexts(kTable);\n\n")
        out.write("}  // namespace diskfault\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
