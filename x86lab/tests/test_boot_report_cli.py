"""``x86lab boot`` / ``x86lab report`` reject bad input with exit 2 before booting."""

from __future__ import annotations

import pytest

from x86lab.cli import EXIT_USAGE, main


@pytest.mark.parametrize("argv", [
    ["report", "--engines", "pcem", "--json", "r.json"],
    ["report", "--kernels", "", "--json", "r.json"],
    ["report"],  # no output named
    ["report", "--json", "r.json", "--tolerance", "-1"],
    ["boot", "--engine", "qemu", "--kernel", "tiny", "--memory", "4"],
], ids=["bad-engine", "no-kernels", "no-output", "negative-tolerance", "tiny-memory"])
def test_usage_errors_exit_2(argv: list, capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("x86lab: error: ")


def test_boot_engine_choice_is_checked_by_the_parser(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["boot", "--engine", "pcem", "--kernel", "tiny"])
    assert exit_info.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


def test_fail_on_regression_exits_1_and_writes_both_files(
        monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture) -> None:
    import harness.report as report

    canned = {"created": "now", "baseline": None, "span_ratios": {}, "runs": [],
              "reference": {"combo": None, "seconds": None},
              "regressions": [{"combo": "v86-tiny", "kind": "warning", "detail": "WARNING: x"}]}
    monkeypatch.setattr(report, "build_report", lambda *args, **kwargs: canned)
    argv = ["report", "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")]
    assert main(argv) == 0
    assert main([*argv, "--fail-on-regression"]) == 1
    assert "regression: v86-tiny warning: WARNING: x" in capsys.readouterr().out
    assert (tmp_path / "r.json").exists() and (tmp_path / "r.html").exists()
