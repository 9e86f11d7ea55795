"""Compare a peer program's printed results between the real CPU and an engine.

The program (QEMU's test-i386) prints one result per line, each starting with the name of
what it tested (``addl``, ``fcom``, ``trapno=...``). The machine's own CPU running the same
static binary gives the expected lines. Differences are grouped by that first word; lines
an engine never printed (the program died midway) are counted as never reached, and the
rest of the comparison goes on.
"""

from __future__ import annotations

import bisect
import difflib
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

# Addresses test-i386 prints: EIP= in its exception tests, ESI=/EDI= in its string tests.
ADDRESS_WORD = re.compile(r"(?<=IP=|SI=|DI=)[0-9a-fA-F]{8}\b")


@dataclass
class LineDiff:
    """One result that differs: the test's name, the expected and the engine's line."""

    test: str
    expected: str
    got: str


@dataclass
class OutputComparison:
    total: int
    passed: int
    diffs: List[LineDiff] = field(default_factory=list)
    never_reached: int = 0
    first_unreached: str = ""

    def by_test(self) -> Dict[str, List[LineDiff]]:
        groups: Dict[str, List[LineDiff]] = {}
        for diff in self.diffs:
            groups.setdefault(diff.test, []).append(diff)
        return groups


def symbol_table(binary: Path) -> Tuple[List[int], List[str]]:
    """(sorted addresses, names) of the binary's text and data symbols, from ``nm -n``."""
    out = subprocess.run(["nm", "-n", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    addresses, names = [], []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].lower() in "tdbr":
            addresses.append(int(parts[0], 16))
            names.append(parts[2])
    return addresses, names


def symbolize(text: str, table: Tuple[List[int], List[str]]) -> str:
    """Replace printed addresses that point into the binary with ``<symbol+offset>``: the
    link layout is not what the test checks, and it keeps reports readable."""
    addresses, names = table
    if not addresses:
        return text
    low, high = addresses[0], addresses[-1]

    def name(match: re.Match) -> str:
        value = int(match.group(0), 16)
        if not low <= value < high:
            return match.group(0)
        i = bisect.bisect_right(addresses, value) - 1
        return f"<{names[i]}+{value - addresses[i]:#x}>"

    return ADDRESS_WORD.sub(name, text)


def test_name(line: str) -> str:
    word = line.split(maxsplit=1)[0] if line.strip() else "(blank)"
    return word.split("=", 1)[0].rstrip(":")


def compare_output(expected: str, got: str) -> OutputComparison:
    """Line-level comparison; a shorter output's missing tail is "never reached"."""
    want, have = expected.splitlines(), got.splitlines()
    result = OutputComparison(total=len(want), passed=0)
    matcher = difflib.SequenceMatcher(a=want, b=have, autojunk=False)
    opcodes = matcher.get_opcodes()
    for number, (tag, a0, a1, b0, b1) in enumerate(opcodes):
        if tag == "equal":
            result.passed += a1 - a0
            continue
        if number == len(opcodes) - 1 and b1 - b0 < a1 - a0:
            # The program stopped: its last lines (a crash message, the exit status) stand
            # against the first expected ones; the rest of the expected output never came.
            shown = b1 - b0 if tag == "replace" else 0
            for k in range(shown):
                result.diffs.append(LineDiff(test_name(want[a0 + k]), want[a0 + k], have[b0 + k]))
            result.never_reached += a1 - a0 - shown
            result.first_unreached = want[a0 + shown]
            continue
        for k in range(a1 - a0):
            got_line = have[b0 + k] if b0 + k < b1 else "(missing)"
            result.diffs.append(LineDiff(test_name(want[a0 + k]), want[a0 + k], got_line))
        for k in range(a1 - a0, b1 - b0):
            result.diffs.append(LineDiff(test_name(have[b0 + k]), "(absent)", have[b0 + k]))
    return result
