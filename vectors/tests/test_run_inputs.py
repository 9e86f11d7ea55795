"""`x86lab vectors run` on input that is not what it claims: nothing replayed is never a
pass, a malformed file is a set-up error (exit 2) named by file and line, and one bad file
in a folder does not stop the others from running."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from vectors import engines
from vectors.files import write_vectors
from vectors.format import make_header, to_record
from vectors.tests.nop_runner import nop_pair
from x86lab.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main


@pytest.fixture(autouse=True)
def nop_engine(monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "nop", ("vectors.tests.nop_runner", "NopRunner", {}))


def _run(*argv):
    return main(["vectors", "run", "--engine", "nop", *map(str, argv)])


def _good_file(path):
    write_vectors(path, make_header(form="NOP", mode="prot32"), [nop_pair("a")])
    return path


def _lines(path, *objects):
    path.write_text("".join(json.dumps(obj) + "\n" for obj in objects))
    return path


def _nop_record(**changes):
    record = to_record(*nop_pair("nop"))
    record.update(changes)
    return record


def test_empty_folder_replays_nothing_and_says_so(tmp_path, capsys):
    assert _run(tmp_path) == EXIT_FAILURE
    assert f"no vectors: no vector files (*.jsonl.gz, *.jsonl, *.json.gz, *.json) under " \
        f"{tmp_path}" in capsys.readouterr().out


def test_unknown_name_replays_nothing_and_says_so(tmp_path, capsys):
    assert _run(_good_file(tmp_path / "ok.jsonl.gz"), "--name", "nosuch") == EXIT_FAILURE
    out = capsys.readouterr().out
    assert "no vectors" in out and "nosuch" in out


def test_empty_json_array_replays_nothing(tmp_path, capsys):
    (tmp_path / "theirs.json").write_text("[]")
    assert _run(tmp_path / "theirs.json") == EXIT_FAILURE
    assert "no vectors" in capsys.readouterr().out


def test_json_output_of_an_empty_run_fails_too(tmp_path, capsys):
    assert _run(tmp_path, "--json") == EXIT_FAILURE
    assert json.loads(capsys.readouterr().out)["passed"] == 0


def test_empty_jsonl_file_is_malformed(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert _run(tmp_path / "empty.jsonl") == EXIT_USAGE
    assert "empty.jsonl: no header line" in capsys.readouterr().out


def test_jsonl_file_without_header_is_malformed(tmp_path, capsys):
    path = _lines(tmp_path / "bare.jsonl", _nop_record())
    assert _run(path) == EXIT_USAGE
    assert "bare.jsonl:1: no header line" in capsys.readouterr().out


@pytest.mark.parametrize("version, message", [
    (0, "is below 1"), (-7, "is below 1"), ("1", "should be an integer"), (True, "should be an "
    "integer"), (None, "should be an integer"), (3, "is newer than this reader")],
    ids=["zero", "negative", "string", "bool", "missing", "newer"])
def test_header_version_must_be_a_known_integer(tmp_path, capsys, version, message):
    header = make_header()
    if version is None:
        del header["version"]
    else:
        header["version"] = version
    path = _lines(tmp_path / "v.jsonl", header, _nop_record())
    assert _run(path) == EXIT_USAGE
    assert f"v.jsonl:1: header version {version!r} {message}" in capsys.readouterr().out


def test_header_that_is_not_an_object_is_malformed(tmp_path, capsys):
    path = _lines(tmp_path / "h.jsonl", ["x86lab-vectors", 1], _nop_record())
    assert _run(path) == EXIT_USAGE
    assert "h.jsonl:1: no header line" in capsys.readouterr().out


def test_bytes_that_differ_from_memory_make_a_malformed_vector(tmp_path, capsys):
    path = _lines(tmp_path / "lie.jsonl", make_header(), _nop_record(bytes=[0xF4]))
    assert _run(path) == EXIT_USAGE
    out = capsys.readouterr().out
    assert "lie.jsonl:2: bytes [f4] differ from the memory at cs_base + eip (0x100): [90]" in out
    assert "runner raised" not in out


def test_vector_missing_a_register_is_malformed_not_a_failure(tmp_path, capsys):
    record = _nop_record()
    del record["initial"]["regs"]["eax"]
    path = _lines(tmp_path / "noeax.jsonl", make_header(), record)
    assert _run(path) == EXIT_USAGE
    out = capsys.readouterr().out
    assert "noeax.jsonl:2: missing register initial.regs.eax" in out
    assert "runner raised" not in out and "KeyError" not in out


def test_bad_file_in_a_folder_is_listed_and_the_others_still_run(tmp_path, capsys):
    _good_file(tmp_path / "a.jsonl.gz")
    (tmp_path / "b.jsonl").write_text(json.dumps(make_header()) + "\n{not json\n")
    _good_file(tmp_path / "c.jsonl.gz")
    assert _run(tmp_path, "--json") == EXIT_USAGE
    report = json.loads(capsys.readouterr().out)
    assert (report["passed"], report["malformed"]) == (2, 1)
    bad = [f for f in report["files"] if f["malformed"]]
    assert [f["path"] for f in bad] == [str(tmp_path / "b.jsonl")]
    assert bad[0]["malformed"][0]["line"] == 2


def test_good_vectors_of_a_file_with_a_bad_line_still_run(tmp_path, capsys):
    bad = _nop_record(name="bad")
    del bad["final"]["regs"]["eip"]
    path = _lines(tmp_path / "mixed.jsonl", make_header(), _nop_record(name="x"), bad,
                  _nop_record(name="y"))
    assert _run(path) == EXIT_USAGE
    out = capsys.readouterr().out
    assert "2 passed, 0 failed, 1 malformed" in out
    assert "mixed.jsonl:3: missing register final.regs.eip" in out


def test_malformed_input_outranks_failures(tmp_path, capsys):
    """Exit 2 when a file is malformed even if vectors also failed: the run did not test
    all it was given, and the input must be fixed first (both are still reported)."""
    wrong = nop_pair("claims eip+2", final_eip=0x102)
    write_vectors(tmp_path / "fail.jsonl.gz", make_header(), [wrong])
    (tmp_path / "empty.jsonl").write_text("")
    assert _run(tmp_path) == EXIT_USAGE
    out = capsys.readouterr().out
    assert "0 passed, 1 failed, 1 malformed" in out
    assert "FAIL" in out


def test_instruction_cut_by_an_unmapped_page_is_well_formed(tmp_path, capsys):
    """The corpus holds such vectors: the fetch of the second byte ends in 'unmapped'."""
    case, outcome = nop_pair("cut")
    page = bytearray(case.memory[0])
    page[0xFFF] = 0x66
    case = replace(case, code=b"\x66\x90", memory={0: bytes(page)},
                   regs={**case.regs, "eip": 0xFFF})
    record = to_record(case, replace(outcome, regs=dict(case.regs), memory=case.memory))
    path = _lines(tmp_path / "cut.jsonl", make_header(), record)
    assert _run(path) == EXIT_FAILURE   # the NOP runner knows only 90: a failure, not malformed
    out = capsys.readouterr().out
    assert "0 passed, 1 failed, 0 malformed" in out
    assert "runner raised NotImplementedError" in out


def test_green_run_still_exits_zero(tmp_path, capsys):
    assert _run(_good_file(tmp_path / "ok.jsonl.gz")) == EXIT_OK
    assert "1 passed, 0 failed" in capsys.readouterr().out
