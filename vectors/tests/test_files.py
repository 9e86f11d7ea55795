"""Vector files: written deterministically, read back exactly, corruption reported by line."""

from __future__ import annotations

import gzip
import json

import pytest

from vectors.files import (
    VectorFileError,
    find_vector_files,
    read_header,
    read_vectors,
    write_vectors,
)
from vectors.format import make_header
from vectors.tests.nop_runner import nop_pair


def _write(path, count=3):
    pairs = [nop_pair(f"nop {i}", eip=0x100 + i, final_eip=0x101 + i) for i in range(count)]
    write_vectors(path, make_header(form="NOP", mode="prot32"), pairs)
    return pairs


def test_written_file_reads_back_and_is_deterministic(tmp_path):
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    pairs = _write(first)
    _write(second)
    assert first.read_bytes() == second.read_bytes()
    assert [(e.case, e.expected) for e in read_vectors(first)] == pairs
    assert read_header(first)["form"] == "NOP"


def test_folders_expand_to_their_vector_files(tmp_path):
    _write(tmp_path / "m" / "x.jsonl.gz")
    (tmp_path / "m" / "notes.txt").write_text("not a vector file")
    assert find_vector_files([tmp_path]) == [tmp_path / "m" / "x.jsonl.gz"]


def test_json_array_files_without_header_are_read(tmp_path):
    source = tmp_path / "a.jsonl.gz"
    _write(source)
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()[1:]
    other = tmp_path / "theirs.json"
    other.write_text("[" + ",".join(lines) + "]")
    assert len(list(read_vectors(other))) == 3
    assert read_header(other) is None


def test_truncated_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    _write(tmp_path / "good.jsonl.gz")
    lines = gzip.decompress((tmp_path / "good.jsonl.gz").read_bytes()).decode().splitlines()
    lines[2] = lines[2][:40]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(VectorFileError, match=r"bad\.jsonl:3: not JSON"):
        list(read_vectors(path))


def test_bad_field_names_file_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    record = {"name": "x", "mode": "prot32", "bytes": [144],
              "initial": {"regs": {}, "pages": [0]}, "final": {"regs": {}, "ram": [[9000, 1]]}}
    path.write_text(json.dumps(make_header()) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(VectorFileError, match=r"bad\.jsonl:2: final\.ram address 0x2328"):
        list(read_vectors(path))


def test_not_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(b"plain text, not gzip")
    with pytest.raises(VectorFileError, match="x.jsonl.gz: cannot read"):
        list(read_vectors(path))


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(make_header() | {"version": 99}) + "\n")
    with pytest.raises(VectorFileError, match=r"x\.jsonl:1: header version 99"):
        list(read_vectors(path))


def test_truncated_gzip_names_the_line_where_it_ends(tmp_path):
    source = tmp_path / "a.jsonl.gz"
    _write(source, count=200)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(VectorFileError, match=r"cut\.jsonl\.gz:\d+: (the file ends early|not "
                       r"JSON)"):
        list(read_vectors(cut))
