"""The vectors suite: the committed corpus on every engine, compared with the vectors'
expected outcomes (on which Unicorn and the reference agreed) under the comparator's
undefined-flag mask, plus the flags user mode cannot observe (``stepper.comparable_case``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from conformance.stepper import comparable_case
from differential.encoding import split_prefixes
from differential.runners.native_runner import StepResult
from ground.case import Case, Outcome
from ground.compare import Difference, compare, undefined_differences
from vectors.files import Entry, find_vector_files, read_vectors

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
CORPUS = VECTORS / "corpus"  # Unicorn and the reference agreed
# Where they disagreed and this CPU decided (differential/native_vectors.py): the forms of
# Unicorn's known bugs, on which every other engine is measured too.
NATIVE_CORPUS = VECTORS / "corpus-native"
CORPORA = (CORPUS, NATIVE_CORPUS)
CS_PREFIX, GP_VECTOR = 0x2E, 13
StepAll = Callable[[Sequence[Case]], List[StepResult]]


@dataclass
class VectorResult:
    """One vector on one engine: ``status`` pass, fail, undefined (differs only where the
    SDM leaves the outcome undefined), inexpressible or crashed."""

    entry: Entry
    status: str
    reason: str = ""
    differences: List[Difference] = field(default_factory=list)
    outcome: Optional[Outcome] = None
    stop: str = ""  # what stopped it: tf, sentinel or exception (stepper engines)


def load_entries(limit: Optional[int] = None, modes: Sequence[str] = ("prot32", "real16"),
                 corpora: Sequence[Path] = CORPORA) -> List[Entry]:
    """The corpora's vectors, at most ``limit`` per form file (the first ones:
    deterministic)."""
    entries: List[Entry] = []
    for mode in modes:
        folders = [corpus / mode for corpus in corpora if (corpus / mode).is_dir()]
        for path in find_vector_files(folders) if folders else []:
            for number, entry in enumerate(read_vectors(path)):
                if limit is not None and number >= limit:
                    break
                entries.append(entry)
    return entries


def judge(entry: Entry, result: StepResult) -> VectorResult:
    """Compare one engine's result with the vector's expected outcome."""
    if result.status != "ran" or result.outcome is None:
        return VectorResult(entry, result.status, result.reason)
    got, expected = result.outcome, entry.expected
    if expected.exception is not None and expected.exception.kind == "unmapped" and \
            (got.exception is None or got.exception.kind != "unmapped"):
        # The access hit memory this engine has there (the stepper's own pages).
        return VectorResult(entry, "inexpressible", "touches memory outside the vector's "
                            "pages that this process maps", outcome=got)
    if _cs_write(entry, got):
        return VectorResult(entry, "inexpressible", "writes through CS (user code segments "
                            "are read-only)", outcome=got)
    comparable = comparable_case(entry.case)
    differences = compare(comparable, expected, got)
    if not differences:
        # Agreement on everything the SDM defines; where it leaves a part undefined and
        # the outcomes differ there, the vector is "undefined", not a pass.
        differences = undefined_differences(
            entry.case, expected, got, comparable.undefined_flags & ~entry.case.undefined_flags)
        status = "undefined" if differences else "pass"
    else:
        status = "fail"
    return VectorResult(entry, status, differences=differences, outcome=got,
                        stop=result.stop)


def _cs_write(entry: Entry, got: Outcome) -> bool:
    """#GP(0) on an instruction with a CS override that the vector's flat world allows."""
    prefixes, _ = split_prefixes(entry.case.code)
    return CS_PREFIX in prefixes and entry.expected.exception is None and \
        got.exception is not None and got.exception.vector == GP_VECTOR


def run_suite(entries: Sequence[Entry], step_all: StepAll) -> List[VectorResult]:
    """Run every entry through ``step_all`` (one batch) and judge each result."""
    results = step_all([entry.case for entry in entries])
    return [judge(entry, result) for entry, result in zip(entries, results)]


def runner_step_all(runner_name: str) -> StepAll:
    """A ``StepAll`` over a differential runner (unicorn, reference): every mode runs."""
    from vectors.engines import make_runner

    runner = make_runner(runner_name)

    def step_all(cases: Sequence[Case]) -> List[StepResult]:
        from ground.case import EngineCrashed

        run_many = getattr(runner, "run_many", None)
        answers = run_many(list(cases)) if run_many else [runner.run(c) for c in cases]
        return [StepResult("crashed", None, f"killed-the-engine: {answer.death.signal}")
                if isinstance(answer, EngineCrashed) else StepResult("ran", answer)
                for answer in answers]

    return step_all


def tally(results: Sequence[VectorResult]) -> Dict[str, int]:
    counts = {"pass": 0, "fail": 0, "undefined": 0, "inexpressible": 0, "crashed": 0}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts
