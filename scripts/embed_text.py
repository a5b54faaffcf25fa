#!/usr/bin/env python3
"""Writes a C++ source that defines `extern const char* const NAME` holding a file's text.

Used by the build to put rules/default.json into the binary, so the shipped rules and the
built-in ones are the same bytes.
"""
import sys


def main() -> int:
    if len(sys.argv) != 4:
        print("usage: embed_text.py INPUT OUTPUT SYMBOL", file=sys.stderr)
        return 2
    source, target, symbol = sys.argv[1:]
    with open(source, "rb") as f:
        data = f.read()
    # Split into chunks: string literals have length limits on some compilers.
    chunks = [data[i:i + 2000] for i in range(0, len(data), 2000)] or [b""]
    with open(target, "w", encoding="ascii") as out:
        out.write("// Generated from %s by scripts/embed_text.py. Do not edit.\n" % source.split("/")[-1])
        out.write("namespace diskfault {\nextern const char* const %s;\n" % symbol)
        out.write("const char* const %s =\n" % symbol)
        for chunk in chunks:
            out.write('    "' + "".join("\\x%02x" % b for b in chunk) + '"\n')
        out.write(";\n}  // namespace diskfault\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
