"""Spotting trouble in a console log: panics, oopses, BUG/WARNING splats, segfaults.

Any of these fails a boot even when the shell prompt appears, because a kernel that warned
on the way up may be mis-emulated in a way a later check cannot see. The finding carries
the surrounding lines so the error message shows what happened, not just that it did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List

FAILURE_PATTERNS = (
    "Kernel panic",
    "Oops",
    "BUG:",
    "WARNING:",
    "Call Trace",
    "segfault at",
    "Segmentation fault",
    "general protection fault",
    "invalid opcode:",
)
_FAILURE_RE = re.compile("|".join(re.escape(p) for p in FAILURE_PATTERNS))
_TIMESTAMP_RE = re.compile(r"^\[\s*\d+\.\d+\]\s*")


@dataclass(frozen=True)
class Finding:
    """One failure pattern on one console line, with a few lines of context."""

    pattern: str
    line: str
    excerpt: str

    @property
    def key(self) -> str:
        """The line without its timestamp: stable across runs, so baselines can list it."""
        return _TIMESTAMP_RE.sub("", self.line).strip()


def console_text(log: bytes) -> str:
    """Console bytes as text lines (CR LF -> LF, undecodable bytes replaced)."""
    return log.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")


def scan(log: bytes, context: int = 3) -> List[Finding]:
    """Every failure pattern in the log, first occurrence per line."""
    lines = console_text(log).split("\n")
    findings = []
    for index, line in enumerate(lines):
        match = _FAILURE_RE.search(line)
        if match:
            excerpt = "\n".join(lines[max(0, index - context): index + context + 1])
            findings.append(Finding(match.group(0), line.strip(), excerpt))
    return findings


def last_lines(log: bytes, count: int = 15) -> str:
    """The console's last lines, for error messages about hangs."""
    return "\n".join(console_text(log).rstrip("\n").split("\n")[-count:])
