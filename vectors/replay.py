"""Replay vector files through any runner and say, per file, what passed and what did not.

The comparison is the format's rule (``FORMAT.md``), which is the differential
comparator's: registers, EFLAGS outside ``undefined_flags``, every mapped byte outside
``undefined_dest``, and the exception must match.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, List, Optional

from ground.case import Case, EngineCrashed, Outcome, Runner
from ground.compare import compare
from vectors.files import Entry, VectorFileError, scan_vectors


def differences(case: Case, expected: Outcome, actual: Outcome) -> List[str]:
    """Human-readable differences between two outcomes of ``case``; empty when they agree.
    The comparator is the differential tester's, so a vector passes exactly when the run
    would not count as a divergence."""
    if "unimplemented" in actual.notes:
        return [f"unimplemented: {actual.notes['unimplemented']}"]
    return [d.render("expected", "got") for d in compare(case, expected, actual)]


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
    """One file's vectors: how many passed, which failed, and which lines are not vectors
    at all (malformed: a set-up error, never counted as passed or failed)."""

    path: Path
    passed: int = 0
    failures: List[Failure] = field(default_factory=list)
    malformed: List[VectorFileError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)


def reproducer(engine: str, entry: Entry) -> str:
    """A shell command that replays just this vector."""
    return (f"x86lab vectors run --engine {engine} {shlex.quote(str(entry.path))} "
            f"--name {shlex.quote(entry.case.name)}")


def replay_file(path: Path, runner: Runner, engine: str,
                only: Optional[str] = None) -> FileResult:
    """Run every well-formed vector of one file (or only the one named ``only``); the
    malformed lines are listed in the result and the others still run."""
    result = FileResult(path)
    for entry in scan_vectors(path):
        if isinstance(entry, VectorFileError):
            result.malformed.append(entry)
            continue
        if only is not None and entry.case.name != only:
            continue
        try:
            problems = differences(entry.case, entry.expected, runner.run(entry.case))
        except EngineCrashed as crash:  # the engine process died: a failure of its own kind
            problems = [f"engine-crashed: {crash}"]
        except Exception as exc:  # a runner crash is this vector's failure, not the run's
            problems = [f"runner raised {type(exc).__name__}: {exc}"]
        if problems:
            result.failures.append(Failure(path, entry.line, entry.case.name, problems,
                                           reproducer(engine, entry)))
        else:
            result.passed += 1
    return result


def replay_files(paths: Iterable[Path], runner: Runner, engine: str,
                 only: Optional[str] = None,
                 progress: Optional[Callable[[], None]] = None) -> List[FileResult]:
    """Replay each file; ``progress`` is called once per file."""
    results = []
    for path in paths:
        results.append(replay_file(path, runner, engine, only))
        if progress is not None:
            progress()
    return results
