"""``build_report`` plumbing end to end with the local stand-in engine (no kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import report
from harness.checks import CheckResult
from harness.report import collect


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Boot the host shell instead of an image and fake one failing check.

    The real checks would judge the host (x86_64, its RAM), which proves nothing here.
    """
    class Image:
        kernel, initrd, cmdline, manifest = Path("/dev/null"), None, "", {"key": "stand-in"}

    monkeypatch.setattr(collect, "find_image", lambda kernel: Image())
    monkeypatch.setattr(collect, "run_checks", lambda console, memory, seed: [
        CheckResult("machine", False, 0.1, "uname -m: got 'x86_64'"),
        CheckResult("echo", console.run("echo hi").output == "hi\n", 0.1)])


def test_report_records_stages_checks_and_regressions(stand_in: None, tmp_path: Path) -> None:
    built = report.build_report(["local"], ["tiny"], tmp_path / "consoles", baseline_path=None)
    report.write_report(built, tmp_path / "r.json", tmp_path / "r.html")
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    assert run["boot"] == "ok" and set(run["marks"]) == {"kernel", "init", "prompt"}
    assert [c["passed"] for c in run["checks"]] == [False, True]
    assert [(r["kind"], r["detail"]) for r in built["regressions"]] == [
        ("check", "machine: uname -m: got 'x86_64'")]
    assert (tmp_path / "consoles" / "local-tiny.log").read_bytes().startswith(b"Linux version")
    assert "<svg" in (tmp_path / "r.html").read_text()


def test_update_baseline_then_compare_finds_only_the_failing_check(
        stand_in: None, tmp_path: Path) -> None:
    first = report.build_report(["local"], ["tiny"], tmp_path, baseline_path=None)
    report.update_baseline(first, tmp_path / "baseline.json")
    again = report.build_report(["local"], ["tiny"], tmp_path,
                                baseline_path=tmp_path / "baseline.json")
    assert again["baseline"] == str(tmp_path / "baseline.json")
    assert [r["kind"] for r in again["regressions"]] == ["check"]
