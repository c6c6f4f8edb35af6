#!/usr/bin/python3
"""Writes models/src/python_case_tables.h: what Python's str.lower() needs beyond the code.

sacreBLEU's `lowercase` option is Python's str.lower(), and scores must not depend on which
letters we chose to know, so the tables are read off Python itself rather than written by
hand. Run by hand from anywhere, with the Python whose Unicode version the tables should
follow (Debian 12's python3 is 3.11, Unicode 14.0.0):
    /usr/bin/python3 scripts/make-python-case-tables.py
and commit the header it writes.

Three tables, each sorted by code point for a binary search:
- lowercase runs (first, last, stride, offset): every code point c of first, first+stride,
  ..., last lowers to the one code point c + offset. Most of Unicode's case pairs come in
  such runs, so 1,400 mappings fit in under 200 rows. The one mapping to two code points
  (U+0130 to "i" + U+0307) is not a run; python_text.cpp writes it out.
- case-ignorable and cased ranges (first, last): the properties that decide whether a
  capital sigma ends a word and lowers to the final form. CPython does not expose them, so
  they are measured through str.lower() itself (`properties` below).
"""

import pathlib
import sys
import unicodedata

CAPITAL_SIGMA = "\u03a3"
FINAL_SIGMA = "\u03c2"


def code_points():
    return (cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)


def lowercase_runs():
    singles = []
    for cp in code_points():
        lowered = chr(cp).lower()
        if lowered != chr(cp) and len(lowered) == 1:
            singles.append((cp, ord(lowered) - cp))
    runs = []
    i = 0
    while i < len(singles):
        first, offset = singles[i]
        stride = 1
        if i + 1 < len(singles) and singles[i + 1][1] == offset and singles[i + 1][0] - first in (1, 2):
            stride = singles[i + 1][0] - first
        j = i
        while j + 1 < len(singles) and singles[j + 1][1] == offset and singles[j + 1][0] - singles[j][0] == stride:
            j += 1
        runs.append((first, singles[j][0], stride, offset))
        i = j + 1
    return runs


def ranges(predicate):
    result, start = [], None
    for cp in range(0x110001):
        inside = cp < 0x110000 and not 0xD800 <= cp <= 0xDFFF and predicate(chr(cp))
        if inside and start is None:
            start = cp
        if not inside and start is not None:
            result.append((start, cp - 1))
            start = None
    return result


def properties():
    # CPython lowers a capital sigma to the final form when a cased letter comes before it,
    # with only case-ignorable code points between, and no cased letter after it likewise.
    # x + sigma: final exactly when x is cased and not case-ignorable (x itself is skipped
    # when ignorable, and then nothing cased precedes).
    # "A" + x + sigma: final when x is case-ignorable (skipped, "A" is cased) or cased.
    def cased(x):
        return (x + CAPITAL_SIGMA).lower()[-1] == FINAL_SIGMA

    def case_ignorable(x):
        return ("A" + x + CAPITAL_SIGMA).lower()[-1] == FINAL_SIGMA and not cased(x)

    return ranges(case_ignorable), ranges(cased)


def main():
    out = pathlib.Path(__file__).resolve().parent.parent / "models" / "src" / "python_case_tables.h"
    runs = lowercase_runs()
    ignorable, cased = properties()
    if any(later[0] <= earlier[1] for earlier, later in zip(runs, runs[1:])):
        sys.exit("two lowercase runs overlap: python_text.cpp's binary search needs disjoint runs")
    multi = [cp for cp in code_points() if len(chr(cp).lower()) > 1]
    if multi != [0x130]:
        sys.exit(f"python_text.cpp writes out U+0130 alone, but this Python lowers {multi} to several code points")
    lines = [
        "#pragma once",
        "// Written by scripts/make-python-case-tables.py from Python "
        f"{sys.version.split()[0]} (Unicode {unicodedata.unidata_version}); do not edit.",
        "// Read by python_text.cpp, which says what the tables mean.",
        "",
        "#include <array>",
        "",
        "namespace xgrad::models::python_case {",
        "",
        "struct LowercaseRun {",
        "  char32_t first, last, stride;",
        "  int offset;",
        "};",
        "struct Range {",
        "  char32_t first, last;",
        "};",
        "",
        f"inline constexpr std::array<LowercaseRun, {len(runs)}> lowercase_runs{{{{",
    ]
    lines += [f"    {{0x{a:X}, 0x{b:X}, {s}, {d}}}," for a, b, s, d in runs]
    lines += ["}};", ""]
    for name, table in (("case_ignorable", ignorable), ("cased", cased)):
        lines.append(f"inline constexpr std::array<Range, {len(table)}> {name}{{{{")
        lines += [f"    {{0x{a:X}, 0x{b:X}}}," for a, b in table]
        lines += ["}};", ""]
    lines += ["}  // namespace xgrad::models::python_case", ""]
    out.write_text("\n".join(lines))
    print(f"{out}: {len(runs)} lowercase runs, {len(ignorable)} case-ignorable and {len(cased)} cased ranges")


if __name__ == "__main__":
    main()
