"""The bounded matrix CI runs: every suite on the tiny kernel in v86 and QEMU, plus this
CPU, Unicorn and the reference on the vectors. Checks the report's shape and facts that
must hold whatever the engines' bugs and whichever vendor's CPU runs it: every difference
between the real CPU and Unicorn is explained (known with evidence, or where the SDM
leaves the result undefined), QEMU runs the suites to the end, and test-i386 goes on past
an instruction an engine lacks. No assertion rests on one CPU's score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import single_step
from conformance.matrix import Options, run_matrix
from conformance.report import to_json, write_html, write_json
from conformance.suites import APPLICABLE, ENGINES, SUITES

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


def _result(report: dict, engine: str, suite: str) -> dict:
    [result] = [r for r in report["results"] if r["engine"] == engine and r["suite"] == suite]
    return result


def _new(result: dict) -> list:
    return [f"{f['group']}: {f['summary'][:120]}" for f in result["findings"] if f["new"]]


def _every_result_accounted_for(result: dict) -> None:
    """Each compared vector passed, differs only where the SDM leaves it undefined, or is
    in a known group: nothing is NEW and nothing is unaccounted for."""
    assert _new(result) == []
    known = sum(f["count"] for f in result["findings"] if f["kind"] == "known"
                and f["group"] != single_step.GROUP)
    assert result["passed"] + result["counts"].get("undefined", 0) + known == \
        result["total"], result["counts"]


def test_every_difference_between_the_cpu_and_unicorn_is_explained(report: dict) -> None:
    # The agreement corpus is Unicorn's own; the native corpus is its listed bugs.
    _every_result_accounted_for(_result(report, "unicorn", "vectors"))
    native = _result(report, "native", "vectors")
    assert native["oracle"].startswith("this CPU: ") and report["oracle_cpu"]["vendor"]
    assert native["total"] > 0 and _new(native) == []
    assert {f["kind"] for f in native["findings"]} <= {"known", "undefined"}


def test_qemu_runs_every_suite_to_the_end(report: dict) -> None:
    qemu = report["matrix"]["qemu"]
    _every_result_accounted_for(_result(report, "qemu", "vectors"))
    assert _ratio(qemu["shell"]) == 1.0
    test_i386 = _result(report, "qemu", "test-i386")
    assert test_i386["counts"]["never_reached"] == 0 and test_i386["oracle"]
    # Whatever this CPU's vendor: each line QEMU prints differently is known or undefined.
    assert _new(test_i386) == []
    explained = test_i386["counts"]["undefined"] + sum(
        f["count"] for f in test_i386["findings"] if f["kind"] == "known")
    assert test_i386["passed"] + explained == test_i386["total"]


def test_bochs_runs_every_suite_with_every_difference_explained(report: dict) -> None:
    """Bochs (the whole column took 87-97 s here): the shell checks pass, test-i386 runs to
    its end, and each difference is known (known/bochs.toml) or undefined by the SDM."""
    assert _ratio(report["matrix"]["bochs"]["shell"]) == 1.0
    _every_result_accounted_for(_result(report, "bochs", "vectors"))
    test_i386 = _result(report, "bochs", "test-i386")
    assert test_i386["counts"]["never_reached"] == 0 and _new(test_i386) == []
    assert "bochs boot" in report["wall_seconds"]


def test_the_bare_metal_cases_are_a_column_with_every_difference_known(report: dict) -> None:
    """The bare-metal image (differential/bare_metal) on every engine that runs it: each
    case matches the oracles' answer or differs where the engine's own entries say, and
    the reference matches on every case (157/157 on 2026-12-05; v86 51, QEMU 62)."""
    for engine in ("v86", "qemu", "bochs", "reference"):
        _every_result_accounted_for(_result(report, engine, "bare-metal"))
    reference = _result(report, "reference", "bare-metal")
    assert reference["passed"] == reference["total"] > 100


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
    assert vectors["counts"].get("stopped_by_sentinel", 0) > 0.5 * vectors["total"]
    _every_result_accounted_for(vectors)
    [trap] = [f for f in vectors["findings"] if f["group"] == single_step.GROUP]
    assert trap["known"] and not trap["new"]


def test_the_bounded_busybox_selection_yields_verdicts(report: dict) -> None:
    for engine in ("v86", "qemu", "bochs"):
        [busybox] = [r for r in report["results"] if r["engine"] == engine
                     and r["suite"] == "busybox"]
        assert busybox["total"] > 0 and busybox["counts"]["native_pass"] > 0


def test_v86s_missing_fbld_hides_nothing_after_it(report: dict) -> None:
    """v86 refuses FBLD (known/v86.toml): test-i386 records the instruction, steps over it
    and goes on, so every later line is compared (before, 412 lines were never reached)."""
    test_i386 = _result(report, "v86", "test-i386")
    refused = [f for f in test_i386["findings"] if f["group"] == "(instruction refused)"]
    assert any(f["reproducer"]["bytes"].startswith("df ") and "fbld" in f["summary"]
               for f in refused)
    assert all(f["kind"] == "known" for f in refused)
    assert test_i386["counts"]["never_reached"] == 0
    assert test_i386["counts"]["instructions_refused"] == len(refused)


def test_the_selftests_run_whole_and_what_qemu_prints_differently_is_explained(
        report: dict) -> None:
    from conformance import selftests

    qemu = _result(report, "qemu", "selftests")
    assert qemu["oracle"].startswith("this CPU: ")
    assert qemu["total"] + qemu["counts"]["not_built"] == len(selftests.TESTS)
    # Whatever this CPU: each difference is the guest kernel's (known/guest-kernel.toml).
    assert _new(qemu) == []
    for engine in ("v86", "qemu"):
        for finding in _result(report, engine, "selftests")["findings"]:
            assert Path(finding["reproducer"]["binary"]).exists()
            assert finding["reproducer"]["guest_command"].startswith("timeout ")

