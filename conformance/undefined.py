"""Results the SDM leaves undefined, told apart from wrong ones, line by line.

A program suite's expected output comes from this machine's CPU. Where the SDM leaves a
result undefined, another CPU (Intel against AMD) or an engine may print something else
and both are right: such lines are neither NEW nor a pass; they are reported in their own
class, "undefined by the SDM; this CPU and the engine differ". ``known/undefined.toml``
names the test lines and a condition from ``CONDITIONS`` (a function of the expected line
and the engine's),
with the SDM's words as evidence. Vectors need no entries: they carry
``undefined_flags``/``undefined_dest`` per vector.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Callable, Dict, List, Sequence, Tuple

from conformance.program_output import LineDiff
from differential.known import KnownDifference

# test-i386's shift lines: "shldw      A=12345678 B=21ad3d34 C=00000012 R=... CC=0080"
_COUNT = re.compile(r"\bC=([0-9a-fA-F]{8})\b")
_WIDTH = {"w": 16, "l": 32}


def shift_count_above_operand_size(line: str) -> bool:
    """SHLD/SHRD (test-i386 ``shld``/``shrd`` + ``w``/``l``): the count, masked to 5 bits,
    exceeds the operand size. SDM Vol. 2B, SHLD/SHRD: "If the count is greater than the
    operand size, the result is undefined" (and so are the flags)."""
    words = line.split()
    if not words or not re.fullmatch(r"sh[lr]d[wl]", words[0]):
        return False
    count = _COUNT.search(line)
    return count is not None and int(count.group(1), 16) & 31 > _WIDTH[words[0][-1]]


_CC = re.compile(r"\bCC=([0-9a-fA-F]{4})\b")
OF, AF, CF = 0x800, 0x010, 0x001


def only_flags_differ(mask: int) -> Callable[[str, str], bool]:
    """A condition: the engine's line equals the expected one except for flags in
    ``mask`` within CC (the flags the SDM leaves undefined for that instruction)."""

    def condition(expected: str, got: str) -> bool:
        want, have = _CC.search(expected), _CC.search(got)
        if want is None or have is None or _CC.sub("", expected) != _CC.sub("", got):
            return False
        return (int(want.group(1), 16) ^ int(have.group(1), 16)) & ~mask == 0

    return condition


CONDITIONS: Dict[str, Callable[[str, str], bool]] = {
    "shift count above the operand size":
        lambda expected, got: shift_count_above_operand_size(expected),
    "only OF, AF and CF differ": only_flags_differ(OF | AF | CF),
}
"""Condition name -> test of (expected line, engine's line)."""


def split_undefined(diffs: Sequence[LineDiff], entries: Sequence[KnownDifference],
                    suite: str, cpu: str = "",
                    ) -> Tuple[List[LineDiff], Dict[str, Tuple[str, List[LineDiff]]]]:
    """(the differing lines that stay differences, {test name: (evidence, lines)} of those
    an entry's condition declares undefined)."""
    kept: List[LineDiff] = []
    undefined: Dict[str, Tuple[str, List[LineDiff]]] = {}
    for diff in diffs:
        entry = next((e for e in entries if e.suite == suite and e.condition and
                      any(fnmatch.fnmatchcase(diff.test, g) for g in e.groups) and
                      e.applies_here(cpu) and CONDITIONS[e.condition](diff.expected, diff.got)),
                     None)
        if entry is None:
            kept.append(diff)
        else:
            undefined.setdefault(diff.test, (entry.evidence, []))[1].append(diff)
    return kept, undefined
