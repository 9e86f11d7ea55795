"""The check the bare-metal family tests share: the reference runs a family's cases, and
each ends in the state the test wrote from the SDM (``expectations``: case name ->
{field: value}), with every case of the families given one."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Sequence

from differential.bare_metal import cases as families
from differential.bare_metal import layout as bm
from differential.bare_metal.compare import CaseResult, run_cases
from differential.bare_metal.engines import run_reference


def reference_results(names: Sequence[str], folder: Path) -> Dict[str, CaseResult]:
    """The reference's result for every case of the families ``names``."""
    chosen = families.all_cases(tuple(names))
    results = run_cases("reference", chosen, lambda engine, image: run_reference(image),
                        folder, progress=lambda text: None)
    return {r.name: r for r in results}


def every_case_has_a_state(names: Sequence[str], expectations: Dict[str, dict]) -> None:
    assert {case.name for case in families.all_cases(tuple(names))} == set(expectations)


def reaches_the_sdm_state(got: CaseResult, expected: Dict[str, int]) -> None:
    assert got.outcome == "done"
    assert got.fields["results.marker"] == bm.RECORDED
    for field, value in expected.items():
        assert got.fields[field] == value, field
