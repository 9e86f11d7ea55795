"""``x86lab conformance`` from the command line: usage errors, outputs, exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from x86lab.cli import main

CORPUS_FILE = Path(__file__).resolve().parents[2] / "vectors/corpus/prot32/ADD_Ev_Gv.jsonl.gz"


@pytest.mark.parametrize("flag, value", [("--engines", "pcem"), ("--suites", "ltp"),
                                         ("--limit", "0")], ids=["engine", "suite", "limit"])
def test_bad_arguments_exit_2(tmp_path: Path, flag: str, value: str,
                              capsys: pytest.CaptureFixture) -> None:
    status = main(["conformance", flag, value, "--json", str(tmp_path / "a.json"),
                   "--html", str(tmp_path / "a.html")])
    assert status == 2
    assert value in capsys.readouterr().err


def test_runner_engines_on_one_file_write_a_wellformed_report(tmp_path: Path) -> None:
    status = main(["conformance", "--engines", "unicorn,reference", "--suites",
                   "vectors,test-i386", "--vectors", str(CORPUS_FILE),
                   "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert status == 0 and report["new_differences"] == 0
    assert report["matrix"]["unicorn"]["test-i386"] == "n/a"
    passed, total = map(int, report["matrix"]["reference"]["vectors"].split("/"))
    assert passed == total > 0
    assert "<table>" in (tmp_path / "r.html").read_text()
