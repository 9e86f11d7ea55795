"""The vectors suite end to end without a boot: this CPU against the corpus, and a
deliberately broken engine that must show up as a finding with a reproducer."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import pytest

from conformance.native import run_native
from conformance.stepper import StepResult
from conformance.vector_findings import vector_suite_result
from conformance.vector_suite import load_entries, run_suite, runner_step_all
from differential.case import Case, Outcome
from vectors.files import read_vectors


def test_this_cpu_agrees_with_the_vectors_on_nearly_all_it_can_express(
        stepper_available: None) -> None:
    results = run_suite(load_entries(limit=2, modes=("prot32",)), run_native)
    compared = [r for r in results if r.status in ("pass", "fail", "crashed")]
    passed = sum(r.status == "pass" for r in compared)
    assert len(compared) > 300
    assert passed / len(compared) > 0.99, [r.differences[:2] for r in compared
                                           if r.status != "pass"][:5]


def _flip_eax(cases: Sequence[Case]) -> List[StepResult]:
    good = runner_step_all("unicorn")(cases)
    flipped = []
    for result in good:
        regs = dict(result.outcome.regs)
        regs["eax"] ^= 0x80000000
        flipped.append(StepResult("ran", Outcome(regs, result.outcome.memory,
                                                 result.outcome.exception)))
    return flipped


def test_a_broken_engine_yields_findings_with_replayable_reproducers(tmp_path: Path) -> None:
    entries = [e for e in load_entries(limit=1, modes=("prot32",)) if e.case.form in
               ("ADD_Ev_Gv", "SUB_Gv_Ev")]
    results = run_suite(entries, _flip_eax)
    suite = vector_suite_result("broken", results, 0.0, tmp_path, "tiny")
    assert {f.group for f in suite.findings} == {"ADD_Ev_Gv", "SUB_Gv_Ev"}
    finding = suite.findings[0]
    assert "eax" in finding.summary and finding.reproducer["bytes"]
    [replayed] = list(read_vectors(Path(finding.reproducer["file"])))
    assert replayed.case.code.hex(" ") == finding.reproducer["bytes"]
    assert "--vectors" in finding.reproducer["command"]


@pytest.mark.parametrize("engine", ["unicorn", "reference"])
def test_the_runners_pass_their_own_corpus(engine: str) -> None:
    """The vectors are where Unicorn and the reference agreed: both must pass them all."""
    results = run_suite(load_entries(limit=1), runner_step_all(engine))
    assert results and all(r.status == "pass" for r in results)
