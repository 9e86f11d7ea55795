"""The bare-metal image on QEMU, Bochs and v86 (slow: each boots an emulator; about 45 s
for all four here): every case runs to its end on every engine (v86 dies only where its
known entry says), the SDM expectations of test_bare_metal and test_bare_metal_tasks hold
on Bochs too, and every
difference between the engines is one the known files explain (what ``python -m
differential.bare_metal`` exits 1 on)."""

from __future__ import annotations

import fnmatch
import shutil
from typing import Dict, List

import pytest

from differential.bare_metal.cases import all_cases
from differential.bare_metal.compare import CaseResult, judge, known_entries, run_cases
from differential.bare_metal.engines import run_engine
from differential.tests.test_bare_metal import SDM_EXPECTATIONS
from differential.tests.test_bare_metal_tasks import SDM_EXPECTATIONS as TASK_EXPECTATIONS

pytestmark = pytest.mark.slow
pytest.importorskip("keystone")
ENGINES = ("qemu", "bochs", "reference", "v86")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Dict[str, List[CaseResult]]:
    for tool in ("qemu-system-i386", "bochs", "node"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: scripts/setup.sh installs it")
    cases = all_cases()
    return {engine: run_cases(engine, cases, run_engine,
                              tmp_path_factory.mktemp(engine), progress=lambda text: None)
            for engine in ENGINES}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_case_runs_to_its_end(results, engine):
    """Only the triple fault ends the machine (and QEMU where an entry of its own says
    the outcome differs: its #TS in place of #SS, VM kept across a 16-bit TSS)."""
    ended = {r.name: r.outcome for r in results[engine] if r.outcome != "done"}
    expected = {"triple-fault/empty-idt": "shutdown"}
    if engine == "qemu":
        groups = [group for entry in known_entries("qemu") if entry.fields == ("outcome",)
                  for group in entry.groups]
        expected.update({r.name: "shutdown" for r in results[engine]
                         if any(fnmatch.fnmatchcase(r.name, group) for group in groups)})
    if engine == "v86":  # its CPU panics where conformance/known/v86.toml lists
        panics = next(e for e in known_entries("v86") if e.id == "v86-bare-panics")
        expected = {r.name: "crash" for r in results[engine]  # its groups are globs
                    if any(fnmatch.fnmatchcase(r.name, group) for group in panics.groups)}
    assert ended == expected


@pytest.mark.parametrize("name", sorted(SDM_EXPECTATIONS) + sorted(TASK_EXPECTATIONS))
def test_bochs_reaches_the_sdm_state(results, name):
    got = next(r for r in results["bochs"] if r.name == name)
    assert got.outcome == "done"
    expected = SDM_EXPECTATIONS.get(name) or TASK_EXPECTATIONS[name]
    for field, value in expected.items():
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


@pytest.mark.parametrize("engine", ["qemu", "v86"])
def test_the_known_entries_are_still_needed(results, engine):
    """An entry that no case needs any more (the engine fixed, or the case changed) is
    stale."""
    known = {engine: known_entries(engine) for engine in ENGINES}
    undefined = known_entries("undefined")
    used = set()
    for i, case in enumerate(all_cases()):
        verdict = judge(case.name, {e: results[e][i] for e in ENGINES}, known, undefined)
        for _, _, _, label in verdict.differences:
            for part in label.split("; "):
                if part.startswith(f"{engine}: "):
                    used.update(part[len(engine) + 2:].split(", "))
    assert {e.id for e in known[engine]} == used
