"""Random, truncated and mutated vector files through `x86lab vectors run` (Hypothesis):
the command always ends with 0, 1 or 2 and never with a traceback, and it passes a file
only when every vector in it really is a NOP that advances EIP by one (the SDM's NOP,
checked here without the code under test).

`--hypothesis-show-statistics` shows how many files each test threw and, per exit code,
how many ended so (the events)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from vectors import engines
from vectors.files import SUFFIXES
from vectors.format import make_header, to_record
from vectors.tests.nop_runner import nop_pair
from x86lab.cli import main

pytestmark = pytest.mark.timeout(300)  # a hang fails the test instead of stalling CI

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=8)


def _nop_records(count: int) -> List[dict]:
    return [to_record(*nop_pair(f"nop {i}", eip=0x100 + i, final_eip=0x101 + i))
            for i in range(count)]


def _paths(record: Any, prefix: Tuple = ()) -> List[Tuple]:
    """Every key path inside a record (dicts only), to pick one to mutate."""
    found = [prefix] if prefix else []
    if isinstance(record, dict):
        for key, value in record.items():
            found += _paths(value, prefix + (key,))
    return found


@st.composite
def mutated_lines(draw: st.DrawFn) -> str:
    """A header and NOP vectors, one field of one line deleted or replaced at random."""
    lines: List[Any] = [draw(st.sampled_from([make_header(), {"format": "x86lab-vectors"}]))]
    lines += _nop_records(draw(st.integers(1, 3)))
    target = lines[draw(st.integers(0, len(lines) - 1))]
    path = draw(st.sampled_from(_paths(target)))
    parent = target
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return "".join(json.dumps(line) + "\n" for line in lines)


def _valid_text(array: bool, count: int = 3, last_step: int = 1) -> str:
    """A well-formed file's text (a JSON array for .json names, else a header and lines);
    ``last_step`` other than 1 makes the last vector claim a wrong final EIP."""
    steps = [1] * (count - 1) + [last_step] if count else []
    records = [to_record(*nop_pair(f"nop {i}", eip=0x100 + i, final_eip=0x100 + i + step))
               for i, step in enumerate(steps)]
    if array:
        return json.dumps(records)
    return "".join(json.dumps(line) + "\n" for line in [make_header()] + records)


def texts(array: bool) -> st.SearchStrategy[str]:
    """Well-formed files (passing, or failing on a wrong final EIP), the same cut short
    anywhere, one field mutated, random JSON lines, random text."""
    whole = _valid_text(array)
    return st.one_of(
        st.builds(_valid_text, st.just(array), st.integers(0, 3), st.sampled_from([1, 1, 2])),
        st.integers(0, len(whole)).map(lambda cut: whole[:cut]),
        mutated_lines(),
        st.lists(json_values.map(json.dumps), max_size=4).map("\n".join),
        st.text(max_size=200),
    )


@st.composite
def vector_files(draw: st.DrawFn) -> Tuple[str, bytes]:
    """(file name, bytes): text from ``texts`` (gzipped for .gz names, and perhaps cut
    short), or raw random bytes."""
    suffix = draw(st.sampled_from(SUFFIXES))
    if draw(st.integers(0, 4)) == 0:
        return "v" + suffix, draw(st.binary(max_size=300))
    data = draw(texts(suffix in (".json", ".json.gz"))).encode("utf-8", "surrogatepass")
    if suffix.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
        if draw(st.booleans()):
            data = data[:draw(st.integers(0, len(data)))]
    return "v" + suffix, data


def _really_nops(name: str, data: bytes) -> bool:
    """The oracle: every vector in the file is a NOP whose claimed final state is the SDM's
    (only EIP changes, by one). Read with json alone, not with the code under test."""
    text = gzip.decompress(data).decode() if name.endswith(".gz") else data.decode()
    objects = json.loads(text) if name.endswith((".json", ".json.gz")) else \
        [json.loads(line) for line in text.splitlines() if line.strip()]
    vectors = [o for o in objects if "format" not in o]
    for vector in vectors:
        before, after = vector["initial"]["regs"], vector["final"]["regs"]
        if vector["bytes"] != [0x90] or after != {**before, "eip": before["eip"] + 1}:
            return False
        if vector["final"].get("exception") is not None or vector["final"].get("ram"):
            return False
    return bool(vectors)


@pytest.fixture(scope="module", autouse=True)
def nop_engine():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(engines.ENGINES, "nop", ("vectors.tests.nop_runner", "NopRunner", {}))
        yield


def _run_cli(*args: object) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["vectors", "run", "--engine", "nop", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@given(vector_files())
def test_any_file_ends_cleanly_and_passes_only_real_nops(file):
    name, data = file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        code, out, err = _run_cli(path)
    event(f"exit {code}")
    assert code in (0, 1, 2)
    assert "Traceback" not in out + err
    if code == 2:
        assert err.startswith("x86lab: error: ") and len(err.splitlines()) == 1
    if code == 0:
        assert _really_nops(name, data), out


@given(st.lists(vector_files(), min_size=1, max_size=4))
def test_a_folder_of_any_files_runs_every_good_one(files):
    """Each file counts as it would alone (one bad file stops no other), and the folder's
    exit follows the documented rule: 2 if anything is malformed, else 1 if a vector failed
    or none was replayed, else 0."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, (name, data) in enumerate(files):
            paths.append(Path(folder) / f"{index}{name}")
            paths[-1].write_bytes(data)
        code, out, _ = _run_cli(Path(folder), "--json")
        alone = [json.loads(_run_cli(path, "--json")[1]) for path in paths]
    event(f"exit {code}")
    report = json.loads(out)
    totals = {key: sum(one[key] for one in alone) for key in ("passed", "failed", "malformed")}
    assert {key: report[key] for key in totals} == totals
    assert code == (2 if totals["malformed"] else
                    1 if totals["failed"] or not totals["passed"] else 0)
