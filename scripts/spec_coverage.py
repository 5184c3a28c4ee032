#!/usr/bin/env python3
"""Protocol coverage: which tests check which normative statement.

Reads the numbered statements of MQTT 3.1.1 and 5.0 (spec/*.tsv: the
project's copy of ../shared/spec) and every citation in the tests:

  C:      /* MQTT 5.0 [MQTT-3.3.1-4]: ... */ , /* MQTT 3.1.1 and 5.0 [MQTT-...] */,
          /* MQTT 3.1.1 [MQTT-2.3.1-1], 5.0 [MQTT-2.2.1-3] */
  Python: @pytest.mark.spec("5.0", "MQTT-3.3.1-4") or comments/docstrings as in C

A citation belongs to the test function it is in or right above. The version
of an id is the nearest "3.1.1" or "5.0" written before it on the same
line (or comment); "3.1.1 and 5.0" gives both.

  spec_coverage.py --write docs/coverage.md   write the table
  spec_coverage.py --check                    exit 1 if a statement cited in
                                              spec/coverage-baseline.txt lost
                                              every test, or a test cites an
                                              id that does not exist
  spec_coverage.py --update-baseline          record what is covered now
"""
import argparse
import pathlib
import re
import sys
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec"
BASELINE = SPEC / "coverage-baseline.txt"
VERSIONS = {"3.1.1": "mqtt-v3.1.1-normative.tsv", "5.0": "mqtt-v5.0-normative.tsv"}
ID = r"MQTT-[0-9]+(?:\.[0-9]+)*-[0-9]+"
MARK = re.compile(r"""spec\(\s*["'](3\.1\.1|5\.0)["']\s*,\s*["'](""" + ID + r""")["']\s*\)""")
CITE = re.compile(r"\[(" + ID + r")\]")
VERSION_WORD = re.compile(r"3\.1\.1|5\.0")
C_TEST = re.compile(r"^\s*static\s+void\s+(test_\w+)\s*\(", re.M)
PY_TEST = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)\s*\(", re.M)


def statements():
    out = {}
    for v, f in VERSIONS.items():
        for line in (SPEC / f).read_text(encoding="utf-8").splitlines():
            if line.strip():
                sid, _section, text = line.split("\t", 2)
                out[(v, sid)] = text
    return out


def test_files():
    for pattern in ("tests/c/*.c", "tests/c/*.h", "tests/python/*.py"):
        yield from sorted(ROOT.glob(pattern))


def c_ranges(text):
    """(name, start, end) of each C test function, by brace matching."""
    out = []
    for m in C_TEST.finditer(text):
        i = text.find("{", m.end())
        depth, j = 0, i
        while 0 <= j < len(text):
            ch = text[j]
            if text.startswith("/*", j):
                j = text.find("*/", j) + 2
                continue
            if ch == '"' or ch == "'":
                k = j + 1
                while k < len(text) and text[k] != ch:
                    k += 2 if text[k] == "\\" else 1
                j = k + 1
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out.append((m.group(1), m.start(), j))
    return out


def py_ranges(text):
    """(name, start, end) of each Python test function, by indentation."""
    out = []
    for m in PY_TEST.finditer(text):
        indent = len(m.group(0)) - len(m.group(0).lstrip())
        # include decorators just above
        start = m.start()
        end = len(text)
        pos = text.find("\n", m.end())
        while pos != -1:
            nxt = text.find("\n", pos + 1)
            line = text[pos + 1:nxt if nxt != -1 else len(text)]
            if line.strip() and len(line) - len(line.lstrip()) <= indent and \
                    not line.lstrip().startswith((")", "]", "}")):
                end = pos
                break
            pos = nxt
        out.append((m.group(1), start, end))
    return out


def owner(ranges, text, pos):
    """The test a citation at pos belongs to: the one it is in, else the
    first test defined after the comment it sits in (within a few lines)."""
    for name, start, end in ranges:
        if start <= pos <= end:
            return name
    for name, start, _ in ranges:
        if start > pos:
            gap = text[pos:start]
            # only comments, decorators and blank lines between
            if text.count("\n", pos, start) <= 12 and not re.search(r"[;{}]\s*\n(?!\s*(/\*|\*|//|#|@))", gap):
                return name
            break
    return "(shared table or helper)"


def citations():
    cites = defaultdict(set)  # (version, id) -> {"file::test"}
    unknown_version = []
    for path in test_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        is_py = path.suffix == ".py"
        ranges = py_ranges(text) if is_py else c_ranges(text)
        rel = path.relative_to(ROOT)
        for m in MARK.finditer(text):
            cites[(m.group(1), m.group(2))].add(f"{rel}::{owner(ranges, text, m.start())}")
        for m in CITE.finditer(text):
            # The version written nearest before the id: on its line, else
            # up the enclosing comment or table (at most 40 lines).
            start = m.start()
            for _ in range(40):
                start = text.rfind("\n", 0, start - 1) if start > 0 else -1
                if start < 0 or VERSION_WORD.search(text, start + 1, m.start()):
                    break
            window = text[max(start, 0):m.start()]
            words = list(VERSION_WORD.finditer(window))
            if not words:
                unknown_version.append(f"{rel}: [{m.group(1)}]")
                continue
            last = words[-1]
            versions = {last.group(0)}
            tail = window[max(0, last.start() - 12):last.end() + 12]
            if re.search(r"3\.1\.1\s*(and|/|,)\s*5\.0|5\.0\s*(and|/|,)\s*3\.1\.1", tail):
                versions = {"3.1.1", "5.0"}
            for v in versions:
                cites[(v, m.group(1))].add(f"{rel}::{owner(ranges, text, m.start())}")
    return cites, unknown_version


def write_table(path, stmts, cites):
    lines = ["# Protocol coverage", "",
             "Generated by `scripts/spec_coverage.py --write docs/coverage.md` from",
             "`spec/*.tsv` and the citations in `tests/`. A statement is covered when at",
             "least one test cites it with its version; \"not covered\" lists what no test",
             "checks yet (most are server-internal or client-behaviour rules that another",
             "test exercises without citing, or rules mqlite does not claim yet).", ""]
    for v in VERSIONS:
        ids = [k for k in stmts if k[0] == v]
        covered = [k for k in ids if cites.get(k)]
        lines += [f"## MQTT {v}: {len(covered)} of {len(ids)} statements cited by tests", "",
                  "| statement | tests |", "|---|---|"]
        for k in sorted(ids, key=lambda k: [int(x) for x in re.findall(r"\d+", k[1])]):
            tests = sorted(cites.get(k, ()))
            cell = "<br>".join(f"`{t}`" for t in tests[:6]) or "not covered"
            if len(tests) > 6:
                cell += f"<br>… and {len(tests) - 6} more"
            lines.append(f"| {k[1]} | {cell} |")
        lines.append("")
    pathlib.Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def totals(stmts, cites):
    out = {}
    for v in VERSIONS:
        ids = [k for k in stmts if k[0] == v]
        out[v] = (sum(1 for k in ids if cites.get(k)), len(ids))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--write", metavar="FILE")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--update-baseline", action="store_true")
    a = ap.parse_args()
    stmts = statements()
    cites, unknown_version = citations()
    bogus = sorted(f"{v} {i} in {sorted(t)[0]}" for (v, i), t in cites.items()
                   if (v, i) not in stmts)
    for v, (c, n) in totals(stmts, cites).items():
        print(f"MQTT {v}: {c} of {n} normative statements cited by tests")
    if a.write:
        write_table(a.write, stmts, cites)
    covered = sorted(f"{v} {i}" for (v, i) in cites if (v, i) in stmts)
    if a.update_baseline:
        BASELINE.write_text("# statements cited by tests; --check fails if one loses its tests\n"
                            + "\n".join(covered) + "\n")
    status = 0
    if a.check:
        if bogus:
            print("tests cite ids that do not exist in that version:\n  " + "\n  ".join(bogus))
            status = 1
        if unknown_version:
            print("citations without a version (write 'MQTT 3.1.1' or 'MQTT 5.0' before the id):\n  "
                  + "\n  ".join(unknown_version[:50]))
            status = 1
        base = [l for l in BASELINE.read_text().splitlines() if l and not l.startswith("#")] \
            if BASELINE.exists() else []
        lost = sorted(set(base) - set(covered))
        if lost:
            print("statements that lost every test:\n  " + "\n  ".join(lost))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
