"""The bare-metal image on QEMU and Bochs (slow: each boots an emulator; about 16 s for
all three here): every case runs to its end on every engine, the SDM expectations of
test_bare_metal hold on Bochs too, and every difference between the engines is one the
known files explain (what ``python -m differential.bare_metal`` exits 1 on)."""

from __future__ import annotations

import shutil
from typing import Dict, List

import pytest

from differential.bare_metal.cases import all_cases
from differential.bare_metal.compare import CaseResult, judge, known_entries, run_cases
from differential.bare_metal.engines import run_engine
from differential.tests.test_bare_metal import SDM_EXPECTATIONS

pytestmark = pytest.mark.slow
pytest.importorskip("keystone")
ENGINES = ("qemu", "bochs", "reference")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Dict[str, List[CaseResult]]:
    for tool in ("qemu-system-i386", "bochs"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: scripts/setup.sh installs it")
    cases = all_cases()
    return {engine: run_cases(engine, cases, run_engine,
                              tmp_path_factory.mktemp(engine), progress=lambda text: None)
            for engine in ENGINES}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_case_runs_to_its_end(results, engine):
    """Only the triple fault ends the machine (and QEMU's known #TS in place of #SS)."""
    ended = {r.name: r.outcome for r in results[engine] if r.outcome != "done"}
    expected = {"triple-fault/empty-idt": "shutdown"}
    if engine == "qemu":
        expected["task/ss-ss0-not-present"] = "shutdown"
    assert ended == expected


@pytest.mark.parametrize("name", sorted(SDM_EXPECTATIONS))
def test_bochs_reaches_the_sdm_state(results, name):
    got = next(r for r in results["bochs"] if r.name == name)
    assert got.outcome == "done"
    for field, value in SDM_EXPECTATIONS[name].items():
        assert got.fields[field] == value, field


def test_every_difference_is_known(results):
    known = {engine: known_entries(engine) for engine in ENGINES}
    undefined = known_entries("undefined")
    cases = all_cases()
    new = []
    for i, case in enumerate(cases):
        verdict = judge(case.name, {e: results[e][i] for e in ENGINES}, known, undefined)
        if verdict.status == "new":
            new.append((case.name, verdict.differences))
    assert new == []


def test_the_known_qemu_entries_are_still_needed(results):
    """An entry that no case needs any more (QEMU fixed, or the case changed) is stale."""
    known = {engine: known_entries(engine) for engine in ENGINES}
    undefined = known_entries("undefined")
    used = set()
    for i, case in enumerate(all_cases()):
        verdict = judge(case.name, {e: results[e][i] for e in ENGINES}, known, undefined)
        for _, _, _, label in verdict.differences:
            for part in label.split("; "):
                if part.startswith("qemu: "):
                    used.update(part[len("qemu: "):].split(", "))
    assert {e.id for e in known["qemu"]} == used
