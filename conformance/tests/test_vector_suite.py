"""The vectors suite end to end without a boot: this CPU against the corpus, and a
deliberately broken engine that must show up as a finding with a reproducer."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import pytest

from conformance.native import run_native
from conformance.vector_findings import vector_suite_result
from conformance.vector_suite import CORPUS, load_entries, run_suite, runner_step_all
from differential.runners.native_runner import StepResult
from ground.case import Case, Outcome
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
    """The vectors are where Unicorn and the reference agreed on everything the SDM
    defines: both pass them all. The expected values of undefined parts are Unicorn's, so
    the reference may differ there (status "undefined"), Unicorn never."""
    results = run_suite(load_entries(limit=1, corpora=(CORPUS,)), runner_step_all(engine))
    allowed = {"pass"} if engine == "unicorn" else {"pass", "undefined"}
    assert results and {r.status for r in results} <= allowed
    assert all(r.differences for r in results if r.status == "undefined")


def test_a_difference_only_where_the_sdm_leaves_it_undefined_is_its_own_class(
        tmp_path: Path) -> None:
    """SHL by 2 leaves OF undefined: a differing OF is "undefined" (never a pass, never
    new); a differing TF (user mode cannot observe it) is ignored; a differing CF fails."""
    from dataclasses import replace

    from conformance.tests.conftest import make_case
    from conformance.vector_suite import judge
    from vectors.files import Entry

    case = replace(make_case(bytes.fromhex("c1e002"), form="SHL_Ev_Ib"), undefined_flags=0x800)
    expected = Outcome({**case.regs, "eflags": 0x202}, case.memory)
    entry = Entry(tmp_path / "v.jsonl", 1, case, expected)

    def outcome(eflags: int) -> StepResult:
        return StepResult("ran", Outcome({**case.regs, "eflags": eflags}, case.memory))

    assert judge(entry, outcome(0x202)).status == "pass"
    assert judge(entry, outcome(0x302)).status == "pass"  # TF
    undefined = judge(entry, outcome(0xA02))
    assert undefined.status == "undefined"
    assert [d.field for d in undefined.differences] == ["eflags.OF"]
    assert judge(entry, outcome(0xA03)).status == "fail"  # CF is defined
    [finding] = vector_suite_result("v86", [undefined], 0.1, tmp_path, "tiny").findings
    assert finding.kind == "undefined" and "eflags.OF" in finding.undefined
