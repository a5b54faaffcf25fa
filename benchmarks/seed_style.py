#!/usr/bin/env python3
# The seed's algorithm in plain Python, as a speed and memory reference row for scripts/bench.
"""Reads the whole log into a list, walks it backwards with re.match, and follows one chain of
clues at a time: an XFS error names a disk, a line of that disk names its bus address, and the
address's seed-style "(SERIAL=...)" line states the serial. Written from scratch after the
algorithm described in issue 6, with patterns adapted to real kernel wording and the dmesg
prefix. It is a reference for time and memory, not a diagnosis: it sees one chain at a time and
skips everything between an error and the clues it then looks for."""

import re
import sys

PREFIX = r"(?:\[[ \d.]+\] )?"
ERROR = PREFIX + r"XFS \((sd[a-z]+)\d*\): (?:metadata I/O error|[Ll]og I/O [Ee]rror)"


def clues(path, pattern):
    """Yields the first group of each line matching the pattern last sent in, newest first."""
    with open(path, errors="replace") as f:
        lines = f.readlines()
    for line in reversed(lines):
        m = re.match(pattern, line)
        if m:
            pattern = yield m.group(1)


def serials(path):
    finder = clues(path, ERROR)
    try:
        disk = next(finder)
        while True:
            bus = finder.send(PREFIX + r"sd (\S+): \[%s\]" % re.escape(disk))
            serial = finder.send(PREFIX + r"sd %s \(SERIAL=([^)]*)\)" % re.escape(bus))
            yield disk, bus, serial
            disk = finder.send(ERROR)
    except StopIteration:
        return


if __name__ == "__main__":
    for disk, bus, serial in serials(sys.argv[1]):
        print("%s\t%s\t%s" % (serial, bus, disk))
