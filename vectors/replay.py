"""Replay vector files through any runner and say, per file, what passed and what did not.

The comparison is the format's own rule (``FORMAT.md``): every register listed in
``final.regs`` must match, EFLAGS only outside ``undefined_flags``; every byte of every
mapped page must match; the exception (or its absence) must match.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, List, Optional

from differential.case import Case, Outcome, Runner
from vectors.files import Entry, read_vectors


def differences(case: Case, expected: Outcome, actual: Outcome) -> List[str]:
    """Human-readable differences between two outcomes of ``case``; empty when they agree."""
    found = []
    if expected.exception != actual.exception:
        def label(outcome: Outcome) -> str:
            return outcome.exception.label() if outcome.exception else "no exception"
        found.append(f"exception: expected {label(expected)}, got {label(actual)}")
    for name, want in expected.regs.items():
        got = actual.regs.get(name)
        mask = ~case.undefined_flags if name == "eflags" else -1
        if got is None or (got ^ want) & mask:
            shown = "missing" if got is None else f"{got:#x}"
            found.append(f"{name}: expected {want:#x}, got {shown}")
    for base, want_page in expected.memory.items():
        got_page = actual.memory.get(base, case.memory.get(base))
        if got_page != want_page:
            diffs = [i for i in range(len(want_page))
                     if got_page is None or want_page[i] != got_page[i]]
            first = diffs[0]
            got_byte = "missing" if got_page is None else f"{got_page[first]:#04x}"
            found.append(f"memory {base + first:#x}: expected {want_page[first]:#04x}, got "
                         f"{got_byte} ({len(diffs)} byte(s) differ in page {base:#x})")
    return found


@dataclass
class Failure:
    """One vector that did not replay, with what differed and a command that repeats it."""

    path: Path
    line: int
    name: str
    problems: List[str]
    reproducer: str


@dataclass
class FileResult:
    path: Path
    passed: int = 0
    failures: List[Failure] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)


def reproducer(engine: str, entry: Entry) -> str:
    """A shell command that replays just this vector."""
    return (f"x86lab vectors run --engine {engine} {shlex.quote(str(entry.path))} "
            f"--name {shlex.quote(entry.case.name)}")


def replay_file(path: Path, runner: Runner, engine: str,
                only: Optional[str] = None,
                progress: Optional[Callable[[], None]] = None) -> FileResult:
    """Run every vector of one file (or only the one named ``only``)."""
    result = FileResult(path)
    for entry in read_vectors(path):
        if only is not None and entry.case.name != only:
            continue
        try:
            problems = differences(entry.case, entry.expected, runner.run(entry.case))
        except Exception as exc:  # a runner crash is this vector's failure, not the run's
            problems = [f"runner raised {type(exc).__name__}: {exc}"]
        if problems:
            result.failures.append(Failure(path, entry.line, entry.case.name, problems,
                                           reproducer(engine, entry)))
        else:
            result.passed += 1
        if progress is not None:
            progress()
    return result


def replay_files(paths: Iterable[Path], runner: Runner, engine: str,
                 only: Optional[str] = None) -> List[FileResult]:
    return [replay_file(path, runner, engine, only) for path in paths]
