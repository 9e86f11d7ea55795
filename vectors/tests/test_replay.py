"""Replaying vectors: counts per file, failures with a reproducer, exit status 1."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace

import pytest

from vectors import engines
from vectors.files import write_vectors
from vectors.format import make_header
from vectors.tests.nop_runner import nop_pair
from x86lab.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main


@pytest.fixture(autouse=True)
def nop_engine(monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "nop", ("vectors.tests.nop_runner", "NopRunner", {}))


def _file(path, pairs):
    write_vectors(path, make_header(form="NOP", mode="prot32"), pairs)
    return str(path)


def test_green_file_passes(tmp_path, capsys):
    path = _file(tmp_path / "ok.jsonl.gz", [nop_pair("a"), nop_pair("b", 0x200, 0x201)])
    assert main(["vectors", "run", "--engine", "nop", path]) == EXIT_OK
    assert "2 passed, 0 failed" in capsys.readouterr().out


def test_failure_is_reported_with_a_reproducer_that_replays_it(tmp_path, capsys):
    wrong = nop_pair("claims eip+2", final_eip=0x102)
    path = _file(tmp_path / "bad.jsonl.gz", [nop_pair("fine"), wrong])
    assert main(["vectors", "run", "--engine", "nop", str(tmp_path)]) == EXIT_FAILURE
    out = capsys.readouterr().out
    assert "eip: expected=0x102 got=0x101" in out
    line = next(text for text in out.splitlines() if "reproduce:" in text)
    argv = shlex.split(line.split("reproduce:", 1)[1])
    assert argv[:2] == ["x86lab", "vectors"] and path in argv
    assert main(argv[1:] + ["--json"]) == EXIT_FAILURE
    report = json.loads(capsys.readouterr().out)
    assert (report["passed"], report["failed"]) == (0, 1)
    assert report["files"][0]["failures"][0]["name"] == "claims eip+2"


def test_runner_crash_is_a_failure_not_a_traceback(tmp_path, capsys):
    case, outcome = nop_pair("not a nop")
    page = bytearray(case.memory[0])
    page[case.regs["eip"]] = 0xF4
    case = replace(case, code=b"\xf4", memory={0: bytes(page)})
    outcome = replace(outcome, memory=case.memory)
    path = _file(tmp_path / "hlt.jsonl.gz", [(case, outcome)])
    assert main(["vectors", "run", "--engine", "nop", path, "--json"]) == EXIT_FAILURE
    problems = json.loads(capsys.readouterr().out)["files"][0]["failures"][0]["problems"]
    assert problems[0].startswith("runner raised NotImplementedError")


def test_corrupt_file_is_a_usage_error_naming_the_line(tmp_path, capsys):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(make_header()) + "\n{not json\n")
    assert main(["vectors", "run", "--engine", "nop", str(path)]) == EXIT_USAGE
    assert "x.jsonl:2: not JSON" in capsys.readouterr().err


def test_unknown_engine_is_a_usage_error(tmp_path, capsys):
    path = _file(tmp_path / "ok.jsonl.gz", [nop_pair("a")])
    assert main(["vectors", "run", "--engine", "bochs", path]) == EXIT_USAGE
    assert "unknown engine 'bochs'" in capsys.readouterr().err
