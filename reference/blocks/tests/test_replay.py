"""Replaying the block maker's requests (``reference.blocks.replay``): what a PC records
with ``--record-blocks`` is what the maker was asked, and it replays into the same
blocks, or says which it could not make."""

from __future__ import annotations

import io
import json
import marshal
from pathlib import Path

import pytest

from reference import benchmark as programs
from reference.blocks import compiler, replay
from reference.blocks.background import Maker
from reference.blocks.cache import BlockCache
from reference.blocks.tests.machines import CODE, machine


def recorded(tmp_path: Path) -> Path:
    """A record of the one request the instruction-mix program's first block makes."""
    path = tmp_path / "blocks.rec"
    cpu = machine(programs.PROGRAMS["instruction-mix"].code(50), 3, "flat")
    cpu.block_cache = BlockCache(tmp_path / "cache")
    with open(path, "wb") as out:
        cpu.block_maker = maker = Maker(cpu.block_cache, out)
        try:
            assert compiler.compile_block(cpu, CODE, CODE) is compiler.PENDING
        finally:
            maker.close()
    return path


def test_a_recorded_request_replays_into_its_block(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    path = recorded(tmp_path)
    with open(path, "rb") as source:
        requests = replay.read_requests(source)
    assert len(requests) == 1 and requests[0][1] == CODE & ~0xFFF
    key, *rest = requests[0]
    with open(path, "ab") as out:  # the same page asked for under another key
        replay.write_request(out, marshal.dumps(("0" * len(key), *rest)))
    assert replay.main([str(path), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["requests"] == 2 and figures["failed"] == 1
    assert figures["cpu_seconds"] > 0 and figures["snippets"] <= figures["byte_strings"]
    assert replay.main([str(path), "--limit", "1"]) == 0
    assert capsys.readouterr().out.startswith("1 blocks (0 answered with no code)")


def test_a_record_cut_short_ends_at_its_last_whole_request(tmp_path: Path) -> None:
    whole = recorded(tmp_path).read_bytes()
    assert len(replay.read_requests(io.BytesIO(whole + whole[:100]))) == 1
    assert replay.read_requests(io.BytesIO(whole[:-1])) == []


def test_bytes_that_are_no_record_are_refused(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "not.rec"
    out = io.BytesIO()
    replay.write_request(out, marshal.dumps(("a", 1)))
    path.write_bytes(out.getvalue())
    assert replay.main([str(path)]) == 2
    assert "not a block request" in capsys.readouterr().err
    assert replay.main([str(tmp_path / "absent.rec")]) == 2
