"""The bounded matrix CI runs: every suite on the tiny kernel in v86 and QEMU, plus this
CPU, Unicorn and the reference on the vectors. Checks the report's shape and facts that
must hold whatever the engines' bugs: the real CPU agrees with Unicorn on nearly every
vector it can express, and QEMU runs the suites to the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import single_step
from conformance.findings import APPLICABLE, ENGINES, SUITES
from conformance.matrix import Options, run_matrix
from conformance.report import to_json, write_html, write_json

pytestmark = [pytest.mark.slow, pytest.mark.boot, pytest.mark.timeout(1500)]


def _ratio(cell: str) -> float:
    passed, total = map(int, cell.split("/"))
    return passed / total if total else 0.0


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("conformance")
    options = Options(engines=ENGINES, suites=SUITES, kernel="tiny", limit=1,
                      repro_dir=folder / "repro")
    result = run_matrix(options)
    write_json(result, folder / "report.json")
    write_html(result, folder / "report.html")
    assert "<table>" in (folder / "report.html").read_text()
    data = json.loads((folder / "report.json").read_text())
    assert data == json.loads(json.dumps(to_json(result)))
    return data


def test_every_cell_is_filled_and_non_applicable_ones_say_so(report: dict) -> None:
    for engine in ENGINES:
        for suite in SUITES:
            cell = report["matrix"][engine][suite]
            if suite in APPLICABLE[engine]:
                assert cell != "n/a" and cell != "error", (engine, suite, report["results"])
            else:
                assert cell == "n/a"


def test_the_cpu_agrees_with_unicorn_on_nearly_every_expressible_vector(report: dict) -> None:
    assert _ratio(report["matrix"]["unicorn"]["vectors"]) == 1.0  # its own corpus
    assert _ratio(report["matrix"]["native"]["vectors"]) > 0.99


def test_qemu_runs_every_suite_to_the_end(report: dict) -> None:
    qemu = report["matrix"]["qemu"]
    assert _ratio(qemu["vectors"]) > 0.95
    assert _ratio(qemu["test-i386"]) > 0.99
    assert _ratio(qemu["shell"]) == 1.0
    [test_i386] = [r for r in report["results"] if r["engine"] == "qemu"
                   and r["suite"] == "test-i386"]
    assert test_i386["counts"]["never_reached"] == 0


def test_every_vector_difference_carries_a_reproducer(report: dict) -> None:
    for result in report["results"]:
        for finding in result["findings"]:
            if result["suite"] == "vectors" and finding["group"] != single_step.GROUP:
                assert Path(finding["reproducer"]["file"]).exists()
                assert finding["reproducer"]["bytes"]
    assert set(report["wall_seconds"]) >= {"native vectors", "qemu boot", "v86 boot"}


def test_v86_runs_the_vectors_through_sentinels_and_its_tf_gap_is_known(report: dict) -> None:
    """v86 ignores TF (known/v86.toml); with sentinel INT3s its vectors still compare."""
    [vectors] = [r for r in report["results"] if r["engine"] == "v86"
                 and r["suite"] == "vectors"]
    assert vectors["counts"].get("stopped_by_sentinel", 0) > 0.9 * vectors["total"]
    assert _ratio(vectors["cell"]) > 0.9
    [trap] = [f for f in vectors["findings"] if f["group"] == single_step.GROUP]
    assert trap["known"] and not trap["new"]


def test_the_bounded_busybox_selection_yields_verdicts(report: dict) -> None:
    for engine in ("v86", "qemu"):
        [busybox] = [r for r in report["results"] if r["engine"] == engine
                     and r["suite"] == "busybox"]
        assert busybox["total"] > 0 and busybox["counts"]["native_pass"] > 0


def test_v86s_missing_fbld_is_named_as_a_missing_instruction(report: dict) -> None:
    """test-i386 dies with SIGILL at FBLD on v86 (known/v86.toml): the report says plainly
    that the engine lacks an instruction, and counts the lines never reached."""
    [test_i386] = [r for r in report["results"] if r["engine"] == "v86"
                   and r["suite"] == "test-i386"]
    [dead] = [f for f in test_i386["findings"] if f["group"] == "(never reached)"]
    assert "lacks an instruction this CPU executes" in dead["summary"]
    assert dead["count"] == test_i386["counts"]["never_reached"] > 0 and not dead["new"]
