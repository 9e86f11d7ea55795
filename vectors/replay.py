"""Replay vector files through any runner and say, per file, what passed and what did not.

The comparison is the format's rule (``FORMAT.md``), which is the differential
comparator's: registers, EFLAGS outside ``undefined_flags``, every mapped byte outside
``undefined_dest``, and the exception must match. A version-2 vector (one with a system
part) runs through ``vectors.system_run`` instead of the engine's version-1 runner, and
its stated system keys must match too; where the engine cannot take its state, the
vector is skipped with that reason (counted, never passed). Given the engine's
known-differences entries (``differential/known.py``), a failing vector whose every
difference one entry explains is counted as ``known`` with that entry's id, apart from
the failures (never a pass).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Tuple

from ground.case import Case, EngineCrashed, Outcome, Runner
from ground.compare import Difference, compare
from vectors.files import Entry, VectorFileError, scan_vectors
from vectors.system_run import Inexpressible
from vectors.system_state import compare_states


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
    form: str = ""


@dataclass
class Known:
    """A vector that failed exactly as a known-differences entry says."""

    path: Path
    line: int
    name: str
    entry: str
    problems: List[str]
    reproducer: str
    form: str = ""


@dataclass
class Skip:
    """A vector this engine cannot be given (a version-2 state it cannot express)."""

    path: Path
    line: int
    name: str
    reason: str
    form: str = ""


@dataclass
class FileResult:
    """One file's vectors: how many passed, which failed, and which lines are not vectors
    at all (malformed: a set-up error, never counted as passed or failed)."""

    path: Path
    passed: int = 0
    failures: List[Failure] = field(default_factory=list)
    malformed: List[VectorFileError] = field(default_factory=list)
    skipped: List[Skip] = field(default_factory=list)
    passed_forms: List[str] = field(default_factory=list)  # the form of each pass
    known: List[Known] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)


def reproducer(engine: str, entry: Entry) -> str:
    """A shell command that replays just this vector."""
    return (f"x86lab vectors run --engine {engine} {shlex.quote(str(entry.path))} "
            f"--name {shlex.quote(entry.case.name)}")


def replay_file(path: Path, runner: Runner, engine: str,
                only: Optional[str] = None, known: Optional[Explain] = None) -> FileResult:
    """Run every well-formed vector of one file (or only the one named ``only``); the
    malformed lines are listed in the result and the others still run. ``known``: the
    engine's known-differences entries (``KnownDifference``), which turn a failure they
    explain into a known one."""
    result = FileResult(path)
    for entry in scan_vectors(path):
        if isinstance(entry, VectorFileError):
            result.malformed.append(entry)
            continue
        if only is not None and entry.case.name != only:
            continue
        found: List[Difference] = []
        notes: dict = {}
        try:
            if entry.system is not None:
                found, notes = _system_found(entry, engine)
            else:
                actual = runner.run(entry.case)
                notes = dict(actual.notes)
                found = [] if "unimplemented" in actual.notes else \
                    compare(entry.case, entry.expected, actual)
            problems = _rendered(found, notes)
        except Inexpressible as why:
            result.skipped.append(Skip(path, entry.line, entry.case.name, str(why),
                                       entry.case.form))
            continue
        except EngineCrashed as crash:  # the engine process died: a failure of its own kind
            problems = [f"engine-crashed: {crash}"]
        except Exception as exc:  # a runner crash is this vector's failure, not the run's
            problems = [f"runner raised {type(exc).__name__}: {exc}"]
        explained = known(entry.case, found, notes) if found and known is not None else ""
        if problems and explained:
            result.known.append(Known(path, entry.line, entry.case.name, explained, problems,
                                      reproducer(engine, entry), entry.case.form))
        elif problems:
            result.failures.append(Failure(path, entry.line, entry.case.name, problems,
                                           reproducer(engine, entry), entry.case.form))
        else:
            result.passed += 1
            result.passed_forms.append(entry.case.form)
    return result


def system_differences(entry: Entry, engine: str) -> List[str]:
    """A version-2 vector on ``engine``: the version-1 comparison of registers, memory
    and exception, then every stated system key (``Inexpressible`` when the engine
    cannot be given the vector's state)."""
    return _rendered(*_system_found(entry, engine))


def _system_found(entry: Entry, engine: str) -> Tuple[List[Difference], dict]:
    """The differences (expected on the left) of a version-2 vector, and the engine's
    notes."""
    from vectors.system_run import UNOBSERVED, run_system

    assert entry.system is not None
    actual, state = run_system(engine, entry.case, entry.system)
    if "unimplemented" in actual.notes:
        return [], dict(actual.notes)
    found = compare(entry.case, entry.expected, actual)
    found += compare_states(entry.system.final, state, UNOBSERVED.get(engine, ()),
                            entry.system.undefined_fsw)
    return found, dict(actual.notes)


def _rendered(found: List[Difference], notes: dict) -> List[str]:
    if "unimplemented" in notes:
        return [f"unimplemented: {notes['unimplemented']}"]
    return [d.render("expected", "got") for d in found]


Explain = Callable[[Case, List[Difference], dict], str]
"""The caller's known-differences matcher (``differential.known.vector_explainer``): the
id of the entry that explains every difference of a failed vector (expected, got), or
"". The replayer takes it as it takes any runner: it knows no entry format itself."""


def replay_files(paths: Iterable[Path], runner: Runner, engine: str,
                 only: Optional[str] = None,
                 progress: Optional[Callable[[], None]] = None,
                 known: Optional[Explain] = None) -> List[FileResult]:
    """Replay each file; ``progress`` is called once per file."""
    results = []
    for path in paths:
        results.append(replay_file(path, runner, engine, only, known))
        if progress is not None:
            progress()
    return results
