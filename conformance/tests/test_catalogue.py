"""The engine catalogue and the suite interface: every declared path resolves, the matrix's
axes come from the declarations, and an engine or suite added by declaration alone gets
its cells (run, or n/a by capability) without the matrix knowing its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.findings import SuiteResult
from conformance.matrix import Options, run_matrix
from conformance.suite import Suite
from conformance.suites import APPLICABLE, BY_SUITE, ENGINES, SUITES
from ground.cache import REPO_ROOT
from ground.engines import (
    BOOTS_IMAGE,
    BY_NAME,
    CATALOGUE,
    COUNTS_INSTRUCTIONS,
    GUEST_VECTORS,
    STEPS_CASES,
    EngineEntry,
    engines,
    load,
)


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.name)
def test_every_declared_path_names_real_code(entry: EngineEntry) -> None:
    for path in (entry.boots, entry.runner, entry.batch):
        if path:
            assert callable(load(path)), path


def test_declared_known_files_exist_for_the_engines_that_have_differences() -> None:
    for name in ("v86", "qemu", "bochs", "native", "unicorn"):
        assert (REPO_ROOT / BY_NAME[name].known_file).is_file(), name


def test_the_matrix_axes_follow_the_declared_capabilities() -> None:
    assert SUITES[0] == "vectors" and set(SUITES) >= {"test-i386", "busybox", "shell"}
    assert set(engines(BOOTS_IMAGE)) <= set(ENGINES)
    for name in ENGINES:
        entry = BY_NAME[name]
        assert ("vectors" in APPLICABLE[name]) == \
            (entry.can(GUEST_VECTORS) or entry.can(STEPS_CASES))
        for suite in ("test-i386", "busybox", "shell"):
            assert (suite in APPLICABLE[name]) == entry.can(BOOTS_IMAGE), (name, suite)
    assert "local" not in ENGINES and "unicorn-memhooks" not in ENGINES


def test_an_unknown_capability_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown capabilities"):
        EngineEntry("x", "typo", frozenset({"boots_images"}))


class _CountingSuite(Suite):
    """A suite declared like any other: it counts the engines it ran on."""

    name = "counting"
    rank = 99
    needs = (STEPS_CASES,)

    def prepare(self, engines) -> None:
        self.prepared_for = [e.name for e in engines]

    def run_here(self, engine: EngineEntry) -> SuiteResult:
        return SuiteResult(engine.name, self.name, "ran", 1, 1)

    def finish(self, results) -> None:
        for result in results:
            if result.suite == self.name and result.status == "ran":
                result.note = "finished"


def test_a_new_engine_and_suite_by_declaration_alone(monkeypatch, tmp_path: Path) -> None:
    stepper = EngineEntry("toy", "a stepper declared in a test", frozenset({STEPS_CASES}),
                          runner="differential.runners.reference_runner:ReferenceRunner")
    counter = EngineEntry("meter", "steps nothing, boots nothing",
                          frozenset({COUNTS_INSTRUCTIONS}))
    monkeypatch.setitem(BY_NAME, "toy", stepper)
    monkeypatch.setitem(BY_NAME, "meter", counter)
    monkeypatch.setitem(BY_SUITE, "counting", _CountingSuite)
    options = Options(engines=["toy", "meter"], suites=["counting", "shell"],
                      repro_dir=tmp_path)
    report = run_matrix(options)
    cells = {(r.engine, r.suite): (r.cell(), r.note) for r in report.results}
    assert cells == {("toy", "counting"): ("1/1", "finished"), ("toy", "shell"): ("n/a", ""),
                     ("meter", "counting"): ("n/a", ""), ("meter", "shell"): ("n/a", "")}
    assert "toy counting" in report.wall_seconds
