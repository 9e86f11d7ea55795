"""The stand-alone consumer example runs, passes good vectors and flags a wrong one."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from vectors.files import write_vectors
from vectors.format import make_header
from vectors.tests.nop_runner import nop_pair

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "consume.py"
CF, DF = 0x1, 0x400


def _flag_pair(name: str, opcode: int, before: int, after: int):
    """A one-byte flag instruction; the expected EFLAGS come from the SDM's definition."""
    case, outcome = nop_pair(name)
    page = bytearray(case.memory[0])
    page[case.regs["eip"]] = opcode
    memory = {0: bytes(page)}
    case = replace(case, code=bytes([opcode]), memory=memory,
                   regs={**case.regs, "eflags": before})
    return case, replace(outcome, memory=memory, regs={**outcome.regs, "eflags": after})


def test_consumer_needs_only_the_standard_library():
    tree = ast.parse(EXAMPLE.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names)


def _run(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLE), *map(str, paths)],
                          capture_output=True, text=True, timeout=60)


def test_consumer_replays_vectors_it_understands(tmp_path):
    pairs = [nop_pair("nop"),
             _flag_pair("stc", 0xF9, 0x2, 0x2 | CF), _flag_pair("clc", 0xF8, 0x3, 0x2),
             _flag_pair("cmc", 0xF5, 0x3, 0x2), _flag_pair("std", 0xFD, 0x2, 0x2 | DF)]
    write_vectors(tmp_path / "flags.jsonl.gz", make_header(), pairs)
    done = _run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed 5, failed 0, skipped 0" in done.stdout


def test_consumer_reports_a_wrong_expectation(tmp_path):
    write_vectors(tmp_path / "bad.jsonl.gz", make_header(),
                  [_flag_pair("stc claims CF clear", 0xF9, 0x2, 0x2)])
    done = _run(tmp_path / "bad.jsonl.gz")
    assert done.returncode == 1
    assert "FAIL" in done.stdout and "stc claims CF clear" in done.stdout
